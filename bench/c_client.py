#!/usr/bin/env python3
"""C client benchmark: libloupe's score_csv against the Swift client, the same calls, one run.

  * score_csv scores a CSV of 1M diamonds (the bundled data, tiled) over one connection:
    BatchPredict calls of --batch rows, --depth calls in flight (pipelined).
  * The Swift client (`loupe-bench-server`, LoupeClient) makes the same calls (its rows spread
    over the bundled data, as the tiled CSV is): BatchPredict of
    --batch rows, --depth in flight on one connection, for as long as score_csv took.

                                          bar: C rows/s >= 90% of Swift rows/s

Two servers: the model `loupe serve` trains by default (the one partners get; scoring it is
the server's work, so both clients wait on the same server), and a small model (30 rounds,
15 leaves: the server is ~30x faster, so what each client costs shows). Against each, the
clients run in the order C, Swift, Swift, C after a warm-up, so that a drift in the machine's
load (shared with other work) falls on both alike; each client's rows/s is its rows over its
seconds across its two runs.

Both clients are timed from their first call to their last reply; score_csv reads the CSV
into columns before it starts its clock (it prints that time apart). Builds Loupe in release
mode (unless --loupe) and libloupe (-O2), starts `loupe serve` on stores of its own under
bench/out/ (training the model on the bundled data if the store is empty). Standard library
only.
"""
import argparse, json, os, re, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
CLIENT = os.path.join(ROOT, "clients", "c")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiled_csv(loupe, rows):
    """The bundled data repeated to `rows` rows (written once, then reused)."""
    path = os.path.join(OUT, f"diamonds-{rows}.csv")
    if os.path.exists(path):
        return path
    lines = subprocess.run([loupe, "data"], check=True, capture_output=True, text=True).stdout.splitlines()
    header, data = lines[0], [l for l in lines[1:] if l]
    with open(path + ".tmp", "w") as f:
        f.write(header + "\n")
        for i in range(rows):
            f.write(data[i % len(data)] + "\n")
    os.replace(path + ".tmp", path)
    return path


def serve(loupe, store, training):
    """Starts `loupe serve` on a store of its own; returns (process, gateway address, token).
    Both clients call through the gateway, as partners do, with an unlimited partner token."""
    port = free_port()
    # No scheduled retraining during a benchmark: its repeated rows would read as drift.
    server = subprocess.Popen([loupe, "serve", "--store", store, "--drift-threshold", "0", "--no-inbox", "--port", str(port), "--server-port", str(free_port()),
                               "--metrics-port", "0", *training],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in server.stdout:
        if "Stop with Ctrl-C" in line:
            break
    created = subprocess.run([loupe, "token", "create", "--store", store, "--name", "bench-c-client",
                              "--calls-per-second", "0", "--rows-per-second", "0", "--expires-in", "1h"],
                             check=True, capture_output=True, text=True).stdout
    token = re.search(r"loupe_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}", created).group(0)
    return server, f"127.0.0.1:{port}", token


def load_tool(loupe):
    """`loupe-bench-server` (Benchmarks/ServerLoad, formerly `loupe bench-server`), beside `loupe`."""
    return os.path.join(os.path.dirname(os.path.abspath(loupe)), "loupe-bench-server")


def compare(loupe, score_csv, csv, store, training, batch, depth):
    """C, Swift, Swift, C against one server; the totals of each client."""
    server, addr, token = serve(loupe, store, training)
    env = dict(os.environ, LOUPE_TOKEN=token)
    try:
        def swift(seconds):
            out = subprocess.run([load_tool(loupe), "--store", store, "--server", addr, "--json",
                                  "--duration", f"{seconds:.2f}", "--batch", str(batch),
                                  "--concurrency", str(depth)],
                                 check=True, capture_output=True, text=True, env=env).stdout
            r = json.loads(out)
            return dict(rows=r["calls"] * batch, seconds=r["seconds"], failed=r["failures"])

        def c_client():
            out = subprocess.run([score_csv, "-a", addr, "-b", str(batch), "-d", str(depth), "--json", csv],
                                 check=True, capture_output=True, text=True, env=env).stdout
            r = json.loads(out)
            return dict(rows=r["rows"], seconds=r["seconds"], failed=r["failed_calls"],
                        load_seconds=r["load_seconds"], refused=r["refused_rows"])

        swift(2)  # warm-up
        c1 = c_client()
        s1 = swift(c1["seconds"])
        s2 = swift(c1["seconds"])
        c2 = c_client()
    finally:
        server.terminate()
        server.wait()

    def total(runs):
        rows, seconds = sum(r["rows"] for r in runs), sum(r["seconds"] for r in runs)
        return dict(runs=runs, rows=rows, seconds=seconds, rows_per_second=rows / seconds,
                    failed=sum(r["failed"] for r in runs))
    return total([c1, c2]), total([s1, s2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loupe", help="a release loupe binary to use instead of building one (with loupe-bench-server beside it)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000, help="rows per BatchPredict call")
    ap.add_argument("--depth", type=int, default=8, help="calls in flight on the connection")
    args = ap.parse_args()
    loupe = args.loupe
    if not loupe:
        for product in ["loupe", "loupe-bench-server"]:
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
        loupe = os.path.join(ROOT, ".build", "release", "loupe")
    subprocess.run(["make", "-s", "-C", CLIENT, "build/score_csv"], check=True)
    score_csv = os.path.join(CLIENT, "build", "score_csv")
    os.makedirs(OUT, exist_ok=True)
    csv = tiled_csv(loupe, args.rows)
    servers = [("the default model (loupe serve's own training)", "c-client-store", []),
               ("a small model (30 rounds, 15 leaves)", "c-client-store-small",
                ["--rounds", "30", "--num-leaves", "15"])]
    results = {}
    print(f"\nC client benchmark: BatchPredict, {args.batch} rows a call, {args.depth} in flight, one "
          f"connection, release build, loopback; {os.path.basename(csv)}; runs in the order C, Swift, Swift, C\n")
    print(f"{'':56}{'rows':>10}{'seconds':>9}{'rows/s':>12}")
    ok = True
    for label, store, training in servers:
        c, s = compare(loupe, score_csv, csv, os.path.join(OUT, store), training, args.batch, args.depth)
        ratio = c["rows_per_second"] / s["rows_per_second"]
        ok = ok and ratio >= 0.9 and c["failed"] == 0 and s["failed"] == 0
        results[store] = dict(c=c, swift=s, ratio=ratio)
        print(f"server with {label}:")
        for name, r in [("  libloupe score_csv", c), ("  Swift LoupeClient (loupe-bench-server)", s)]:
            runs = " + ".join(f"{x['rows'] / x['seconds']:.0f}" for x in r["runs"])
            print(f"{name:56}{r['rows']:>10}{r['seconds']:>9.2f}{r['rows_per_second']:>12.0f}   ({runs})")
        print(f"  C / Swift: {ratio:.2f}   (failed calls: C {c['failed']}, Swift {s['failed']}; "
              f"score_csv read the CSV in {c['runs'][0]['load_seconds']:.2f} s before its clock started, "
              f"{c['runs'][0]['refused']} rows refused by validation)\n")
    print(f"  [{'x' if ok else ' '}] score_csv over one connection >= 90% of the Swift client's throughput for "
          f"the same calls (both servers)")
    with open(os.path.join(OUT, "c-client-results.json"), "w") as f:
        json.dump(dict(results=results, batch=args.batch, depth=args.depth, rows=args.rows), f, indent=2)


if __name__ == "__main__":
    main()
