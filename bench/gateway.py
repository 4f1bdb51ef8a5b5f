#!/usr/bin/env python3
"""Gateway benchmark: the same calls through the gateway and straight to the model server, in one run.

  * BatchPredict of 100k-row calls, throughput through the gateway / direct.   bar: >= 0.85
  * The same calls against scoring the same rows in process (`loupe-bench-server --in-process`:
    the served production model's `predictBatch`, no network, no protocol), side by side:
    through `loupe serve`'s gateway / in process, direct to the model server / in process, and
    through a separate `loupe gateway` process over loopback / in process.   bar: >= 0.9
  * Predict round trip p50 (one call at a time over a plain socket), gateway / direct.
                                                                               bar: <= 1.3
  * Overload: a token limited to RATE calls/s with a burst of BURST, hammered for --overload-seconds
    (default 60) by 16 callers; accepted calls against burst + rate x time.    bar: within 1%

It builds Loupe in release mode (unless --loupe), starts `loupe serve` (gateway in front of its
model server, one process; calls handed over in process, or with --via-loopback over loopback TCP
as a separate `loupe gateway` would) on a store under bench/out/, makes tokens with `loupe token create`, and
drives both ports with `loupe-bench-server`: the gateway with a token, the model server with the
store's secret (as local tools do). The BatchPredict runs use a plain blocking socket sending a
frame encoded once (`--raw`), so they measure the server's path and not the Swift client's
encoding; `--batch-connections` of them run at once (default 2: one call's decode and reply
overlap another's scoring, as a partner pipelining calls would). Each batch mode runs
`--batch-rounds` times, interleaved, and its median run counts. `--batch-only` skips the Predict
latency and the overload phases.
"""
import argparse, json, os, re, socket, statistics, subprocess, sys, time

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


def cpu_seconds(process):
    """CPU seconds (user + system, every thread) a running process has used so far."""
    if process is None:
        return 0.0
    with open(f"/proc/{process.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


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
    ap.add_argument("--store", default=os.path.join(OUT, "gateway-store"),
                    help="the bench store (made and trained on first use)")
    ap.add_argument("--batch-only", action="store_true",
                    help="only the BatchPredict phase (in process, direct, both gateways): no Predict latency, no overload")
    ap.add_argument("--batch-rounds", type=int, default=3,
                    help="runs of each BatchPredict mode, interleaved; the median run counts")
    ap.add_argument("--batch-connections", type=int, default=2,
                    help="BatchPredict calls in flight (one per blocking connection)")
    ap.add_argument("--no-separate-gateway", action="store_true",
                    help="do not start a separate `loupe gateway` process in front of the model server")
    ap.add_argument("--no-request-log", action="store_true",
                    help="run `loupe serve` with --no-request-log: the gateway's own cost, without recording calls")
    args = ap.parse_args()
    loupe = args.loupe
    if not loupe:
        for product in ["loupe", "loupe-bench-server"]:
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
        loupe = os.path.join(ROOT, ".build", "release", "loupe")
    os.makedirs(OUT, exist_ok=True)
    store = args.store
    port, server_port = free_port(), free_port()
    # No scheduled retraining during a benchmark: its repeated rows would read as drift.
    serve = subprocess.Popen([loupe, "serve", "--store", store, "--drift-threshold", "0", "--no-inbox", "--port", str(port), "--server-port", str(server_port),
                              "--metrics-port", "0"] + (["--gateway-via-loopback"] if args.via_loopback else [])
                             + (["--no-request-log"] if args.no_request_log else []),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    separate = None
    try:
        for line in serve.stdout:
            if "Stop with Ctrl-C" in line:
                break
        gateway, direct = f"127.0.0.1:{port}", f"127.0.0.1:{server_port}"
        fast = token(loupe, store, "--name", "bench", "--scope", "predict", "--calls-per-second", "0",
                     "--rows-per-second", "0")
        limited = token(loupe, store, "--name", "bench-overload", "--scope", "predict", "--calls-per-second",
                        str(args.rate), "--call-burst", str(args.burst), "--rows-per-second", "0")
        if not args.no_separate_gateway:
            # A gateway process of its own in front of the same model server, as `loupe gateway`
            # runs on another machine: every call crosses loopback TCP twice more.
            separate_port = free_port()
            separate = subprocess.Popen([loupe, "gateway", "--store", store, "--backend", direct, "--port",
                                         str(separate_port), "--metrics-port", "0"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for_port(separate_port)
            time.sleep(2.5)  # its first health checks mark the backend healthy
        s = str(args.seconds)
        runs = {}
        if not args.batch_only:
            # Alternate direct and gateway runs, so drift on a shared machine hits both alike.
            runs["predict_direct"] = bench(loupe, store, "--server", direct, "--raw", "--duration", s)
            runs["predict_gateway"] = bench(loupe, store, "--server", gateway, "--token", fast, "--raw", "--duration", s)
        batch_modes = {
            "batch_in_process": ["--in-process"],
            "batch_direct": ["--server", direct, "--raw", "--connections", str(args.batch_connections)],
            "batch_gateway": ["--server", gateway, "--token", fast, "--raw", "--connections", str(args.batch_connections)],
        }
        if separate:
            batch_modes["batch_gateway_process"] = ["--server", f"127.0.0.1:{separate_port}", "--token", fast, "--raw",
                                                    "--connections", str(args.batch_connections)]
        batch_runs = {name: [] for name in batch_modes}
        for _ in range(args.batch_rounds):
            for name, mode_args in batch_modes.items():
                before = cpu_seconds(serve), cpu_seconds(separate)
                r = bench(loupe, store, *mode_args, "--batch", "100000", "--duration", str(2 * args.seconds))
                # CPU per call of every process on the path: on a machine whose cores the
                # scoring fills, rows/s follow it whatever else runs there.
                r["serverCpuSeconds"] = cpu_seconds(serve) - before[0]
                r["gatewayCpuSeconds"] = cpu_seconds(separate) - before[1] if name == "batch_gateway_process" else 0.0
                if name == "batch_in_process":
                    r["serverCpuSeconds"] = 0.0  # the server idles meanwhile
                r.setdefault("cpuSeconds", 0.0)
                r["cpuMsPerCall"] = 1000 * (r["cpuSeconds"] + r["serverCpuSeconds"] + r["gatewayCpuSeconds"]) / max(r["calls"], 1)
                batch_runs[name].append(r)
        for name, results in batch_runs.items():
            runs[name] = sorted(results, key=lambda r: r["rowsPerSecond"])[len(results) // 2]
        if not args.batch_only:
            runs["overload"] = bench(loupe, store, "--server", gateway, "--token", limited, "--concurrency", "16",
                                     "--duration", str(args.overload_seconds))
    finally:
        for process in [separate, serve]:
            if process:
                process.terminate()
                process.wait()

    def row(name, r):
        return (f"{name:34}{r['callsPerSecond']:>12.1f}{r['rowsPerSecond']:>14.0f}"
                f"{r['p50Microseconds']:>10.1f}{r['p99Microseconds']:>10.1f}{r['calls']:>10}{r['failures']:>10}")
    mode = "gateway -> model server over loopback TCP" if args.via_loopback else "gateway -> model server in process"
    print(f"\ngateway benchmark ({mode}; release build, loopback, one run; {args.seconds:.0f} s runs; "
          f"BatchPredict: median of {args.batch_rounds} interleaved runs, {args.batch_connections} call(s) in flight)\n")
    print(f"{'':34}{'calls/s':>12}{'rows/s':>14}{'p50 µs':>10}{'p99 µs':>10}{'ok':>10}{'refused':>10}")
    order = ["predict_direct", "predict_gateway", "batch_in_process", "batch_direct", "batch_gateway",
             "batch_gateway_process", "overload"]
    for name in order:
        if name in runs:
            print(row(name, runs[name]))
    print(f"\n{'BatchPredict 100k, per call':34}{'CPU ms':>10}{'client':>10}{'server':>10}{'gateway':>10}   (median of runs; rows/s of each run)")
    cpu = {}
    for name, results in batch_runs.items():
        cpu[name] = statistics.median(r["cpuMsPerCall"] for r in results)
        r = sorted(results, key=lambda r: r["cpuMsPerCall"])[len(results) // 2]
        calls = max(r["calls"], 1)
        print(f"{name:34}{r['cpuMsPerCall']:>10.1f}{1000 * r['cpuSeconds'] / calls:>10.1f}"
              f"{1000 * r['serverCpuSeconds'] / calls:>10.1f}{1000 * r['gatewayCpuSeconds'] / calls:>10.1f}   "
              + ", ".join(f"{x['rowsPerSecond']:.0f}" for x in results))
    local = runs["batch_in_process"]["rowsPerSecond"]
    ratios = {name: runs[name]["rowsPerSecond"] / local for name in batch_runs if name != "batch_in_process"}
    batch_ratio = runs["batch_gateway"]["rowsPerSecond"] / runs["batch_direct"]["rowsPerSecond"]
    print(f"\nBatchPredict 100k throughput, gateway / direct:               {batch_ratio:.3f}")
    print(f"BatchPredict 100k, direct to the model server / in process:  {ratios['batch_direct']:.3f}")
    print(f"BatchPredict 100k, through `loupe serve`'s gateway / in process: {ratios['batch_gateway']:.3f}")
    if "batch_gateway_process" in ratios:
        print(f"BatchPredict 100k, through a `loupe gateway` process / in process: {ratios['batch_gateway_process']:.3f}")
    cpu_ratios = {name: cpu["batch_in_process"] / cpu[name] for name in ratios}
    print("CPU per call, in process / each path (the rows/s ratio on cores the scoring fills): "
          + ", ".join(f"{name.removeprefix('batch_')} {v:.3f}" for name, v in cpu_ratios.items()))
    bars = [("BatchPredict throughput through the gateway >= 85% of direct", batch_ratio >= 0.85),
            ("BatchPredict throughput through the gateway >= 90% of in-process scoring", ratios["batch_gateway"] >= 0.9),
            # Rows/s on a machine others keep busy follow each run's share of the cores (two
            # calls in flight hold more threads than one in-process caller); CPU per call does not.
            ("...and by CPU per call (the rows/s ratio with the cores full)", cpu_ratios["batch_gateway"] >= 0.9)]
    result = dict(runs=runs, batch_runs=batch_runs, batch_ratio=batch_ratio, batch_vs_in_process=ratios,
                  cpu_ms_per_call=cpu, cpu_in_process_over_path=cpu_ratios)
    if not args.batch_only:
        p50_ratio = runs["predict_gateway"]["p50Microseconds"] / runs["predict_direct"]["p50Microseconds"]
        o = runs["overload"]
        allowed = args.burst + args.rate * o["seconds"]
        deviation = (o["calls"] - allowed) / allowed
        print(f"Predict p50, gateway / direct:                    {p50_ratio:.3f}  "
              f"({runs['predict_gateway']['p50Microseconds']:.1f} µs vs {runs['predict_direct']['p50Microseconds']:.1f} µs)")
        print(f"overload: {o['calls']} accepted in {o['seconds']:.2f} s against burst + rate x time = {allowed:.0f} "
              f"({100 * deviation:+.2f}%), {o['failures']} refused")
        bars += [("Predict p50 through the gateway <= 1.3x direct", p50_ratio <= 1.3),
                 (f"accepted calls over a {args.overload_seconds:.0f} s overload within 1% of burst + rate x time",
                  abs(deviation) <= 0.01)]
        result.update(p50_ratio=p50_ratio, overload_allowed=allowed, overload_deviation=deviation)
    print()
    for name, ok in bars:
        print(f"  [{'x' if ok else ' '}] {name}")
    with open(os.path.join(OUT, "gateway-results.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
