#!/usr/bin/env python3
"""Server benchmark: the model server against its own baselines, in one run.

  * Predict round trip (one call at a time over a plain socket) against a bare TCP echo of the
    same frame size: the server's overhead on top of the network.       bar: p50 <= 3x echo
  * BatchPredict of 100k-row calls over one connection against scoring the same rows in
    process: what the protocol costs a batch.                          bar: >= 70% of in-process
  * Predict under steady load while production is swapped 10 times.  bar: zero failed calls

It builds Loupe in release mode (unless --loupe), starts `loupe serve` on a store of its own
under bench/out/ (training the first model on the bundled data if the store is empty), and
drives it with `loupe-bench-server`.
"""
import argparse, json, os, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_tool(loupe):
    """`loupe-bench-server` (Benchmarks/ServerLoad, formerly `loupe bench-server`), beside `loupe`."""
    return os.path.join(os.path.dirname(os.path.abspath(loupe)), "loupe-bench-server")


def bench(loupe, store, *args):
    out = subprocess.run([load_tool(loupe), "--store", store, "--json", *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loupe", help="a loupe binary to use instead of building one (with loupe-bench-server beside it)")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the latency and batch pairs this many times, alternating, and keep each one's best "
                         "(for a machine shared with other work)")
    args = ap.parse_args()
    loupe = args.loupe
    if not loupe:
        for product in ["loupe", "loupe-bench-server"]:
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
        loupe = os.path.join(ROOT, ".build", "release", "loupe")
    os.makedirs(OUT, exist_ok=True)
    store = os.path.join(OUT, "server-store")
    port = free_port()
    # The model server's own port (behind the gateway, which gets another free port).
    # No scheduled retraining during a benchmark: its repeated rows would read as drift.
    server = subprocess.Popen([loupe, "serve", "--store", store, "--drift-threshold", "0", "--no-inbox", "--port", str(free_port()), "--server-port", str(port),
                               "--metrics-port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in server.stdout:
            if "Stop with Ctrl-C" in line:
                break
        addr = f"127.0.0.1:{port}"
        # A second version to swap with.
        versions = subprocess.run([loupe, "models", "list", "--store", store, "--json"], check=True,
                                  capture_output=True, text=True).stdout
        if len(json.loads(versions)["versions"]) < 2:
            subprocess.run([loupe, "train", "--store", store, "--rounds", "300", "--quiet"], check=True,
                           stdout=subprocess.DEVNULL)
        s = str(args.seconds)
        runs = {}
        def best(name, key, lower, *bench_args):
            r = bench(loupe, store, *bench_args)
            if name not in runs or (r[key] < runs[name][key] if lower else r[key] > runs[name][key]):
                runs[name] = r
        for _ in range(args.rounds):
            best("echo", "p50Microseconds", True, "--echo", "--duration", s)
            best("raw", "p50Microseconds", True, "--server", addr, "--raw", "--duration", s)
            best("client", "p50Microseconds", True, "--server", addr, "--duration", s)
            best("batch_remote", "rowsPerSecond", False,
                 "--server", addr, "--batch", "100000", "--duration", str(2 * args.seconds))
            best("batch_local", "rowsPerSecond", False,
                 "--in-process", "--batch", "100000", "--duration", str(2 * args.seconds))
        echo, raw, client = runs["echo"], runs["raw"], runs["client"]
        batch_remote, batch_local = runs["batch_remote"], runs["batch_local"]

        # Ten swaps under steady load.
        load = {}
        def run_load():
            load.update(bench(loupe, store, "--server", addr, "--concurrency", "8", "--duration", "12"))
        t = threading.Thread(target=run_load)
        t.start()
        time.sleep(1)
        for i in range(10):
            v = 2 if i % 2 == 0 else 1
            subprocess.run([loupe, "models", "promote", str(v), "--store", store, "--reason", "bench swap"],
                           check=True, stdout=subprocess.DEVNULL)
            time.sleep(1)
        t.join()
        subprocess.run([loupe, "models", "promote", "1", "--store", store], check=True, stdout=subprocess.DEVNULL)
    finally:
        server.terminate()
        server.wait()

    def row(r):
        return (f"{r['label'][:44]:46}{r['callsPerSecond']:>12.0f}{r['rowsPerSecond']:>14.0f}"
                f"{r['p50Microseconds']:>10.1f}{r['p99Microseconds']:>10.1f}{r['failures']:>8}")
    print(f"\nserver benchmark ({args.seconds:.0f} s per run, release build, loopback)\n")
    print(f"{'':46}{'calls/s':>12}{'rows/s':>14}{'p50 µs':>10}{'p99 µs':>10}{'failed':>8}")
    for r in [echo, raw, client, batch_remote, batch_local, load]:
        print(row(r))
    ratio_latency = raw["p50Microseconds"] / echo["p50Microseconds"]
    ratio_batch = batch_remote["rowsPerSecond"] / batch_local["rowsPerSecond"]
    print(f"\nPredict p50 / TCP echo p50:            {ratio_latency:.2f}  (Swift client: "
          f"{client['p50Microseconds'] / echo['p50Microseconds']:.2f})")
    print(f"BatchPredict 100k over the network / in process: {ratio_batch:.2f}")
    print(f"failed calls across 10 hot swaps:     {load['failures']} of {load['calls']}")
    bars = [("Predict p50 <= 3x a TCP echo of the same frame size", ratio_latency <= 3),
            ("BatchPredict 100k-row calls >= 70% of in-process throughput", ratio_batch >= 0.7),
            ("zero failed calls across 10 hot swaps under load", load["failures"] == 0 and load["calls"] > 0)]
    print()
    for name, ok in bars:
        print(f"  [{'x' if ok else ' '}] {name}")
    with open(os.path.join(OUT, "server-results.json"), "w") as f:
        json.dump(dict(echo=echo, raw=raw, client=client, batch_remote=batch_remote, batch_local=batch_local,
                       swaps=load), f, indent=2)


if __name__ == "__main__":
    main()
