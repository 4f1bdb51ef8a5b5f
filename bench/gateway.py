#!/usr/bin/env python3
"""Gateway benchmark: the same calls through the gateway and straight to the model server, in one run.

  * BatchPredict of 100k-row calls, throughput through the gateway / direct.   bar: >= 0.85
  * Predict round trip p50 (one call at a time over a plain socket), gateway / direct.
                                                                               bar: <= 1.3
  * Overload: a token limited to RATE calls/s with a burst of BURST, hammered for --overload-seconds
    (default 60) by 16 callers; accepted calls against burst + rate x time.    bar: within 1%

It builds Loupe in release mode (unless --loupe), starts `loupe serve` (gateway in front of its
model server, one process; calls handed over in process, or with --via-loopback over loopback TCP
as a separate `loupe gateway` would) on a store under bench/out/, makes tokens with `loupe token create`, and
drives both ports with `loupe-bench-server`: the gateway with a token, the model server with the
store's secret (as local tools do).
"""
import argparse, json, os, re, socket, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
TOKEN = re.compile(r"(loupe_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}_[0-9A-Za-z]{6})")


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


def token(loupe, store, *args):
    out = subprocess.run([loupe, "token", "create", "--store", store, *args],
                         check=True, capture_output=True, text=True).stdout
    return TOKEN.search(out).group(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loupe", help="a loupe binary to use instead of building one (with loupe-bench-server beside it)")
    ap.add_argument("--seconds", type=float, default=5, help="seconds per latency and throughput run")
    ap.add_argument("--overload-seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=500, help="calls/s of the overload test's token")
    ap.add_argument("--burst", type=float, default=100, help="burst of the overload test's token")
    ap.add_argument("--via-loopback", action="store_true",
                    help="the gateway reaches its model server over loopback TCP (as `loupe gateway` does) "
                         "instead of in process")
    args = ap.parse_args()
    loupe = args.loupe
    if not loupe:
        for product in ["loupe", "loupe-bench-server"]:
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
        loupe = os.path.join(ROOT, ".build", "release", "loupe")
    os.makedirs(OUT, exist_ok=True)
    store = os.path.join(OUT, "gateway-store")
    port, server_port = free_port(), free_port()
    # No scheduled retraining during a benchmark: its repeated rows would read as drift.
    serve = subprocess.Popen([loupe, "serve", "--store", store, "--drift-threshold", "0", "--no-inbox", "--port", str(port), "--server-port", str(server_port),
                              "--metrics-port", "0"] + (["--gateway-via-loopback"] if args.via_loopback else []),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in serve.stdout:
            if "Stop with Ctrl-C" in line:
                break
        gateway, direct = f"127.0.0.1:{port}", f"127.0.0.1:{server_port}"
        fast = token(loupe, store, "--name", "bench", "--scope", "predict", "--calls-per-second", "0",
                     "--rows-per-second", "0")
        limited = token(loupe, store, "--name", "bench-overload", "--scope", "predict", "--calls-per-second",
                        str(args.rate), "--call-burst", str(args.burst), "--rows-per-second", "0")
        s = str(args.seconds)
        runs = {}
        # Alternate direct and gateway runs, so drift on a shared machine hits both alike.
        runs["predict_direct"] = bench(loupe, store, "--server", direct, "--raw", "--duration", s)
        runs["predict_gateway"] = bench(loupe, store, "--server", gateway, "--token", fast, "--raw", "--duration", s)
        runs["batch_direct"] = bench(loupe, store, "--server", direct, "--batch", "100000", "--duration", str(2 * args.seconds))
        runs["batch_gateway"] = bench(loupe, store, "--server", gateway, "--token", fast, "--batch", "100000",
                                      "--duration", str(2 * args.seconds))
        runs["overload"] = bench(loupe, store, "--server", gateway, "--token", limited, "--concurrency", "16",
                                 "--duration", str(args.overload_seconds))
    finally:
        serve.terminate()
        serve.wait()

    def row(name, r):
        return (f"{name:34}{r['callsPerSecond']:>12.0f}{r['rowsPerSecond']:>14.0f}"
                f"{r['p50Microseconds']:>10.1f}{r['p99Microseconds']:>10.1f}{r['calls']:>10}{r['failures']:>10}")
    mode = "gateway -> model server over loopback TCP" if args.via_loopback else "gateway -> model server in process"
    print(f"\ngateway benchmark ({mode}; release build, loopback, one run; {args.seconds:.0f} s runs)\n")
    print(f"{'':34}{'calls/s':>12}{'rows/s':>14}{'p50 µs':>10}{'p99 µs':>10}{'ok':>10}{'refused':>10}")
    for name in ["predict_direct", "predict_gateway", "batch_direct", "batch_gateway", "overload"]:
        print(row(name, runs[name]))
    batch_ratio = runs["batch_gateway"]["rowsPerSecond"] / runs["batch_direct"]["rowsPerSecond"]
    p50_ratio = runs["predict_gateway"]["p50Microseconds"] / runs["predict_direct"]["p50Microseconds"]
    o = runs["overload"]
    allowed = args.burst + args.rate * o["seconds"]
    deviation = (o["calls"] - allowed) / allowed
    print(f"\nBatchPredict 100k throughput, gateway / direct:   {batch_ratio:.3f}")
    print(f"Predict p50, gateway / direct:                    {p50_ratio:.3f}  "
          f"({runs['predict_gateway']['p50Microseconds']:.1f} µs vs {runs['predict_direct']['p50Microseconds']:.1f} µs)")
    print(f"overload: {o['calls']} accepted in {o['seconds']:.2f} s against burst + rate x time = {allowed:.0f} "
          f"({100 * deviation:+.2f}%), {o['failures']} refused")
    bars = [("BatchPredict throughput through the gateway >= 85% of direct", batch_ratio >= 0.85),
            ("Predict p50 through the gateway <= 1.3x direct", p50_ratio <= 1.3),
            (f"accepted calls over a {args.overload_seconds:.0f} s overload within 1% of burst + rate x time",
             abs(deviation) <= 0.01)]
    print()
    for name, ok in bars:
        print(f"  [{'x' if ok else ' '}] {name}")
    with open(os.path.join(OUT, "gateway-results.json"), "w") as f:
        json.dump(dict(runs=runs, batch_ratio=batch_ratio, p50_ratio=p50_ratio, overload_allowed=allowed,
                       overload_deviation=deviation), f, indent=2)


if __name__ == "__main__":
    main()
