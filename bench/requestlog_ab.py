#!/usr/bin/env python3
"""Interleaved A/B of `loupe serve` variants on bench/requestlog.py's paced phase (Predict at
2,000 calls/s, open loop), for trying a request-log setting against the log off and on:

  python3 bench/requestlog_ab.py --rounds 10 off=off on= g10='--log-group-ms 10'
  python3 bench/requestlog_ab.py --steal 10/60 off=off on=     # core 1 taken 10 ms of every 60

Each NAME=ARGS is a server (ARGS added to `loupe serve`; `off` means --no-request-log); the first
is the reference. NAME@PATH runs the loupe binary at PATH (to compare builds: old@/tmp/loupe-old=). Log-on variants each get a copy of bench/out/requestlog-store without its
guestbook and capsule (run bench/requestlog.py once first: it trains that store). Rounds rotate
the order; before every run each log-on server finishes recording. Prints per-round p99s and each
variant's p99 over all its calls against the reference's, the host steal its runs drew, and the
server's CPU and sleeps (voluntary context switches: each a wake-up) per call. --steal runs a SCHED_FIFO spinner on
core 1 (root), a stand-in for a host that takes a vCPU away (the guest sees this one, though).
"""
import argparse, os, re, shutil, statistics, sys, tempfile, time

import requestlog as R


def steal(burst_ms, period_ms):
    os.sched_setaffinity(0, {1})
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    while True:
        t = time.perf_counter()
        while time.perf_counter() - t < burst_ms / 1000:
            pass
        time.sleep((period_ms - burst_ms) / 1000)


LOG_THREADS = ("loupe-appender", "loupe-sqlite", "loupe-catchup")


def pin(server, log_cpu):
    """Pins the server's log threads to `log_cpu` and all its other threads to the other cores."""
    others = set(os.sched_getaffinity(0)) - {log_cpu}
    task = f"/proc/{server.process.pid}/task"
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/comm") as f:
                name = f.read().strip()
            os.sched_setaffinity(int(tid), {log_cpu} if name in LOG_THREADS else others)
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended


def usage(pid):
    """The server's CPU seconds and its threads' voluntary context switches (sleeps: each a wake-up
    later) so far, summed over its threads."""
    cpu, switches, tick = 0.0, 0, os.sysconf("SC_CLK_TCK")
    task = f"/proc/{pid}/task"
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            with open(f"{task}/{tid}/status") as f:
                switches += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", f.read(), re.M).group(1))
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended
    return cpu, switches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+", help="NAME=ARGS for loupe serve ('off' = --no-request-log)")
    ap.add_argument("--loupe", default=os.path.join(R.ROOT, ".build", "release", "loupe"))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--steal", help="BURST/PERIOD in ms: a SCHED_FIFO spinner on core 1")
    ap.add_argument("--pin-log", action="store_true",
                    help="pin the servers' log threads to core 1, their other threads and the client to the other cores "
                         "(with --steal: does serving wait for a log thread that cannot run?)")
    args = ap.parse_args()
    base = os.path.join(R.OUT, "requestlog-store")
    if not os.path.exists(os.path.join(base, "models")):
        sys.exit("no bench store: run python3 bench/requestlog.py once first")
    work = tempfile.mkdtemp(prefix="loupe-ab-")
    names, servers = [], {}
    stealer = None
    try:
        for spec in args.variants:
            name, _, extra = spec.partition("=")
            name, _, binary = name.partition("@")
            names.append(name)
            if extra == "off":
                servers[name] = (R.Server(binary or args.loupe, base, ["--no-request-log"], f"ab-{name}"), False)
            else:
                store = os.path.join(work, name)
                shutil.copytree(base, store, ignore=shutil.ignore_patterns("requests.sqlite*", "capsule"))
                servers[name] = (R.Server(binary or args.loupe, store, extra.split(), f"ab-{name}"), True)
        if args.steal:
            burst, period = (float(x) for x in args.steal.split("/"))
            stealer = R.multiprocessing.Process(target=steal, args=(burst, period), daemon=True)
            stealer.start()
        print("stall meter:", {c: f"{v['stalledPercent']:.1f}%, longest {v['longestMicroseconds'] / 1000:.1f} ms"
                               for c, v in R.stall_meter().items()}, flush=True)
        if args.pin_log:
            os.sched_setaffinity(0, set(os.sched_getaffinity(0)) - {1})  # the bench client too
        runs = {n: [] for n in names}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in (order if r % 2 == 0 else order[::-1]):
                for server, logging in servers.values():
                    if logging:
                        server.wait_until_recorded()
                if args.pin_log:
                    pin(servers[name][0], 1)
                time.sleep(0.5)
                pid = servers[name][0].process.pid
                cpu, switches = usage(pid)
                run = R.bench(args.loupe, base, "--server", servers[name][0].address, "--rate",
                              str(args.rate), "--raw", "--connections", "2", "--duration", str(args.seconds))
                server, logging = servers[name]
                if logging:
                    server.wait_until_recorded()  # its calls' recording counts in its CPU
                cpu_after, switches_after = usage(pid)
                calls = run["callsPerSecond"] * args.seconds
                run["cpuMicrosecondsPerCall"] = 1e6 * (cpu_after - cpu) / calls
                run["wakeUpsPerCall"] = (switches_after - switches) / calls
                runs[name].append(run)
            print(f"round {r + 1} p99 ms (host steal): " + ", ".join(
                f"{n} {runs[n][-1]['p99Microseconds'] / 1000:.2f} ({runs[n][-1]['stealPercent']:.1f}%)" for n in names),
                flush=True)
    finally:
        if stealer:
            stealer.kill()
        for server, _ in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    reference = R.p99_of_all(runs[names[0]])
    for name in names:
        p99 = R.p99_of_all(runs[name])
        steals = [r["stealPercent"] for r in runs[name]]
        print(f"{name:12} p99 of all calls {p99 / 1000:.2f} ms, / {names[0]}: {p99 / reference:.2f};"
              f" host steal median {statistics.median(steals):.2f}%, > {R.QUIET_STEAL}% in {sum(s > R.QUIET_STEAL for s in steals)}"
              f" of {len(steals)} rounds; CPU {statistics.median(r['cpuMicrosecondsPerCall'] for r in runs[name]):.0f} µs"
              f" and {statistics.median(r['wakeUpsPerCall'] for r in runs[name]):.2f} sleeps per call (server, median)")


if __name__ == "__main__":
    main()
