#!/usr/bin/env python3
"""C event-loop benchmark: libloupe's non-blocking mode over 8 connections from one poll() loop,
against the blocking client over one connection and the Swift client over 8, in one run.

  * score_csv_async scores a CSV of 1M diamonds (the bundled data, tiled) over --connections
    connections from one thread's poll() loop: BatchPredict of --batch rows, --depth calls in
    flight on each connection.
  * score_csv scores the same CSV with the blocking client over one connection, --blocking-depth
    calls pipelined (what a partner without an event loop gets).
  * The Swift client (`loupe-bench-server`) makes the same calls over --connections connections
    with --depth in flight on each, for as long as score_csv_async took (skipped with a note if
    the tool is not beside the loupe binary).

For each run it also reads the server process's CPU time (/proc/PID/stat) and prints how many of
the machine's cores the server kept busy: the point of the event-loop client is that one client
thread keeps every server core working.

                           bars: event loop rows/s >= blocking rows/s (default model)
                                 event loop rows/s >= 90% of the Swift client's (both servers)

Two servers, as in c_client.py: the model `loupe serve` trains by default (scoring is the work),
and a small model (30 rounds, 15 leaves: what the clients themselves cost shows). Against each,
after a warm-up, the clients run in the order blocking, event loop, Swift, Swift, event loop,
blocking, so that a drift in the machine's load falls on all alike; each client's rows/s is its
rows over its seconds across its two runs.

A C client run that takes longer than --run-timeout (120 s) fails the bench: a client waiting
with nothing in flight would otherwise sit out the server's 300 s idle timeout and finish with
no failed call, visible only as a slow run (issue 24).

Only a release server gives meaningful numbers: pass --loupe with a release binary (built with
`swift build -c release --product loupe --product loupe-bench-server`), or let the script build
one. A debug server's numbers measure the debug build, not the clients: do not record them.
Standard library only.
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from c_client import CLIENT, OUT, ROOT, load_tool, serve, tiled_csv  # noqa: E402


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def compare(loupe, tools, csv, store, training, args):
    """blocking, event loop, Swift, Swift, event loop, blocking against one server."""
    server, addr, token = serve(loupe, store, training)
    env = dict(os.environ, LOUPE_TOKEN=token)
    swift_tool = load_tool(loupe)
    have_swift = os.path.exists(swift_tool) and not args.no_swift

    def measured(run):
        before = cpu_seconds(server.pid)
        r = run()
        after = cpu_seconds(server.pid)
        r["server_cores"] = (after - before) / r["seconds"] if before is not None and after is not None else None
        return r

    def blocking():
        out = subprocess.run([tools["score_csv"], "-a", addr, "-b", str(args.batch), "-d", str(args.blocking_depth),
                              "--json", csv], check=True, capture_output=True, text=True, env=env,
                             timeout=args.run_timeout).stdout
        r = json.loads(out)
        return dict(rows=r["rows"], seconds=r["seconds"], failed=r["failed_calls"])

    def event_loop():
        out = subprocess.run([tools["score_csv_async"], "-a", addr, "-c", str(args.connections), "-b", str(args.batch),
                              "-d", str(args.depth), "--json", csv], check=True, capture_output=True, text=True,
                             env=env, timeout=args.run_timeout).stdout
        r = json.loads(out)
        return dict(rows=r["rows"], seconds=r["seconds"], failed=r["failed_calls"] + r["retried_calls"])

    def swift(seconds):
        out = subprocess.run([swift_tool, "--store", store, "--server", addr, "--json", "--duration", f"{seconds:.2f}",
                              "--batch", str(args.batch), "--connections", str(args.connections),
                              "--concurrency", str(args.depth)],
                             check=True, capture_output=True, text=True, env=env).stdout
        r = json.loads(out)
        return dict(rows=r["calls"] * args.batch, seconds=r["seconds"], failed=r["failures"])

    runs = dict(blocking=[], event_loop=[], swift=[])
    try:
        event_loop()  # warm-up: connections, the model's first calls
        runs["blocking"].append(measured(blocking))
        runs["event_loop"].append(measured(event_loop))
        if have_swift:
            seconds = runs["event_loop"][0]["seconds"]
            runs["swift"].append(measured(lambda: swift(seconds)))
            runs["swift"].append(measured(lambda: swift(seconds)))
        runs["event_loop"].append(measured(event_loop))
        runs["blocking"].append(measured(blocking))
    except subprocess.TimeoutExpired as e:
        # A client that waits with nothing in flight sits until the server's 300 s idle
        # timeout and then finishes "fine": fail loudly instead (issue 24).
        sys.exit(f"{os.path.basename(e.cmd[0])} ran past --run-timeout ({args.run_timeout:.0f} s): a stall")
    finally:
        server.terminate()
        server.wait()

    def total(rs):
        if not rs:
            return None
        rows, seconds = sum(r["rows"] for r in rs), sum(r["seconds"] for r in rs)
        cores = [r["server_cores"] for r in rs if r["server_cores"] is not None]
        return dict(runs=rs, rows=rows, seconds=seconds, rows_per_second=rows / seconds,
                    failed=sum(r["failed"] for r in rs),
                    server_cores=sum(cores) / len(cores) if cores else None)
    return {k: total(v) for k, v in runs.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loupe", help="a release loupe binary (with loupe-bench-server beside it) instead of building one")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000, help="rows per BatchPredict call")
    ap.add_argument("--connections", type=int, default=8, help="connections of the event-loop and Swift clients")
    ap.add_argument("--depth", type=int, default=2, help="calls in flight on each of those connections")
    ap.add_argument("--blocking-depth", type=int, default=8, help="calls pipelined on the blocking client's connection")
    ap.add_argument("--servers", choices=["both", "default", "small"], default="both")
    ap.add_argument("--no-swift", action="store_true", help="skip the Swift client")
    ap.add_argument("--run-timeout", type=float, default=120,
                    help="seconds a C client run may take before it counts as a stall (the bench fails)")
    args = ap.parse_args()
    loupe = args.loupe
    if not loupe:
        for product in ["loupe", "loupe-bench-server"]:
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
        loupe = os.path.join(ROOT, ".build", "release", "loupe")
    subprocess.run(["make", "-s", "-C", CLIENT, "build/score_csv", "build/score_csv_async"], check=True)
    tools = {name: os.path.join(CLIENT, "build", name) for name in ["score_csv", "score_csv_async"]}
    os.makedirs(OUT, exist_ok=True)
    csv = tiled_csv(loupe, args.rows)
    servers = [("the default model (loupe serve's own training)", "c-client-store", []),
               ("a small model (30 rounds, 15 leaves)", "c-client-store-small", ["--rounds", "30", "--num-leaves", "15"])]
    if args.servers != "both":
        servers = [servers[0] if args.servers == "default" else servers[1]]
    cores = os.cpu_count()
    print(f"\nC event-loop benchmark: BatchPredict, {args.batch} rows a call, loopback, through the gateway; "
          f"{os.path.basename(csv)}; {cores} cores; runs in the order blocking, event loop, Swift, Swift, event loop, blocking\n")
    print(f"{'':60}{'rows':>10}{'seconds':>9}{'rows/s':>12}{'server cores':>14}")
    results, ok, judged = {}, True, set()
    for label, store, training in servers:
        r = compare(loupe, tools, csv, os.path.join(OUT, store), training, args)
        results[store] = r
        print(f"server with {label}:")
        names = [("blocking", f"  blocking score_csv, 1 connection, {args.blocking_depth} in flight"),
                 ("event_loop", f"  event loop score_csv_async, {args.connections} connections x {args.depth}"),
                 ("swift", f"  Swift client, {args.connections} connections x {args.depth}")]
        for key, name in names:
            t = r[key]
            if t is None:
                print(f"{name:60}(skipped: no loupe-bench-server beside {loupe}, or --no-swift)")
                continue
            runs = " + ".join(f"{x['rows'] / x['seconds']:.0f}" for x in t["runs"])
            busy = f"{t['server_cores']:.2f}" if t["server_cores"] is not None else "?"
            print(f"{name:60}{t['rows']:>10}{t['seconds']:>9.2f}{t['rows_per_second']:>12.0f}{busy:>14}   ({runs})")
        el, bl, sw = r["event_loop"], r["blocking"], r["swift"]
        line = f"  event loop / blocking: {el['rows_per_second'] / bl['rows_per_second']:.2f}"
        if sw:
            line += f"   event loop / Swift: {el['rows_per_second'] / sw['rows_per_second']:.2f}"
            ok = ok and el["rows_per_second"] >= 0.9 * sw["rows_per_second"]
            judged.add("swift")
        if store == "c-client-store":
            ok = ok and el["rows_per_second"] >= bl["rows_per_second"]
            judged.add("blocking")
        failed = el["failed"] + bl["failed"] + (sw["failed"] if sw else 0)
        ok = ok and failed == 0
        print(line + f"   (failed or retried calls: {failed})\n")
    missing = [what for key, what in [("blocking", "the default model's server"), ("swift", "the Swift client")]
               if key not in judged]
    print(f"  [{'x' if ok else ' '}] event loop >= blocking client (default model) and >= 90% of the Swift client"
          + (f"   (not judged without {' and '.join(missing)})" if missing else ""))
    with open(os.path.join(OUT, "c-event-loop-results.json"), "w") as f:
        json.dump(dict(results=results, args=vars(args), cores=cores), f, indent=2)


if __name__ == "__main__":
    main()
