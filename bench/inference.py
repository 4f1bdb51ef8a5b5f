#!/usr/bin/env python3
"""Inference benchmark: Loupe's compiled ensemble against LightGBM and lleaves, in one run.

Models: 1000 trees of 63 leaves, learning rate 0.05, log(price) target, no depth limit, on the
bundled data's clean rows. LightGBM cannot be imported into Loupe yet, so each engine scores
its own model of the same size: Loupe one trained by Loupe (`--loupe-model` takes any Loupe
model file instead: the hook for the imported LightGBM model), LightGBM and lleaves the same
LightGBM model. Rows: the clean rows tiled to each batch size (1, 64, 1k, 100k, 1M), 2 threads.
Every measurement is the best of repeated calls over about `--seconds`; the machine is shared,
so the best call is the one least disturbed.

Usage: bench/inference.py [--seconds S] [--rounds N] [--batches 1,64,...] [--threads 2] [--no-lleaves]
                          [--loupe-bench PATH] [--loupe-model PATH]
"""
import argparse, json, os, subprocess, sys, time, venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
VENV = os.path.join(HERE, ".venv")
PY = os.path.join(VENV, "bin", "python")
# lleaves and the llvmlite it works with go to their own folder (PYTHONPATH), so the shared
# venv of the other benchmarks stays as requirements.txt says.
LLEAVES_DIR = os.path.join(HERE, ".lleaves")
LLEAVES_PINS = ["lleaves==1.3.0", "llvmlite==0.43.0"]
SETTINGS = dict(rounds=1000, leaves=63, lr=0.05)


def ensure_venv():
    if not os.path.exists(PY):
        print("creating bench/.venv with the anchors (one time)", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        subprocess.run([PY, "-m", "pip", "install", "-q", "-r", os.path.join(HERE, "requirements.txt")], check=True)


def ensure_lleaves():
    """Installs lleaves into bench/.lleaves if needed; returns an error string if it cannot."""
    env = dict(os.environ, PYTHONPATH=LLEAVES_DIR)
    if subprocess.run([PY, "-c", "import lleaves"], env=env, capture_output=True).returncode == 0:
        return None
    r = subprocess.run([PY, "-m", "pip", "install", "-q", "--target", LLEAVES_DIR, "--no-deps"] + LLEAVES_PINS,
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"pip could not install {' '.join(LLEAVES_PINS)}: {r.stderr.strip().splitlines()[-1:]}"
    if subprocess.run([PY, "-c", "import lleaves"], env=env, capture_output=True).returncode != 0:
        return "lleaves installed but does not import"
    return None


ANCHORS = r'''
import json, os, sys, time
import numpy as np
out, settings, batches, seconds, threads, use_lleaves = sys.argv[1], json.loads(sys.argv[2]), \
    [int(b) for b in sys.argv[3].split(",")], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
X = np.fromfile(os.path.join(out, "features.f64")).reshape(-1, 9)
y = np.fromfile(os.path.join(out, "log_price.f64"))
import lightgbm as lgb
model_file = os.path.join(out, "lightgbm-1000x63.txt")
params = dict(objective="regression", num_leaves=settings["leaves"], max_depth=-1, learning_rate=settings["lr"],
              num_threads=threads, verbose=-1, seed=1, deterministic=True)
t = time.perf_counter()
if os.path.exists(model_file) and sys.argv[7] == "reuse":
    booster = lgb.Booster(model_file=model_file)
else:
    booster = lgb.train(params, lgb.Dataset(X, y), settings["rounds"])
    booster.save_model(model_file)
    lleaves_cache = os.path.join(out, "lleaves-1000x63.so")
    if os.path.exists(lleaves_cache):
        os.remove(lleaves_cache)
train_seconds = time.perf_counter() - t
def measure(call):
    # A warm-up call, then calls until `seconds` have passed: at least 3, or 1 when one call
    # already takes longer than that.
    t = time.perf_counter(); call(); first = time.perf_counter() - t
    best, total, calls = first, 0.0, 0
    while total < seconds or calls < (1 if first > seconds else 3):
        t = time.perf_counter(); call(); s = time.perf_counter() - t
        best, total, calls = min(best, s), total + s, calls + 1
    return best
def tiled(n):
    reps = -(-n // len(X))
    return np.ascontiguousarray(np.tile(X, (reps, 1))[:n])
result = {"lightgbm": {}, "lleaves": {}, "train_seconds": train_seconds}
engines = [("lightgbm", lambda rows: booster.predict(rows, num_threads=threads))]
if use_lleaves:
    import lleaves
    t = time.perf_counter()
    compiled = lleaves.Model(model_file=model_file)
    compiled.compile(cache=os.path.join(out, "lleaves-1000x63.so"))
    result["lleaves_compile_seconds"] = time.perf_counter() - t
    engines.append(("lleaves", lambda rows: compiled.predict(rows, n_jobs=threads)))
    same = np.abs(compiled.predict(X[:2000], n_jobs=threads) - booster.predict(X[:2000])).max()
    result["lleaves_max_abs_difference_to_lightgbm"] = float(same)
for batch in batches:
    rows = tiled(batch)
    for name, predict in engines:
        # Skip a batch whose calls would take minutes (LightGBM's own predict on 1M rows).
        known = [b for b in result[name] if b.isdigit()]
        if known and batch / result[name][max(known, key=int)] > 20:
            result[name]["skipped"] = result[name].get("skipped", []) + [batch]
            print(f"{name} batch {batch}: skipped (over 20 s per call)", file=sys.stderr)
            continue
        s = measure(lambda: predict(rows))
        result[name][str(batch)] = batch / s
        print(f"{name} batch {batch}: {batch / s:,.0f} rows/s", file=sys.stderr)
# Single-row calls: one feature vector per call, as a service would score one request.
one = np.ascontiguousarray(X[:1])
for name, predict in engines:
    result[name]["single_row_seconds"] = measure(lambda: [predict(one) for _ in range(20)]) / 20
print(json.dumps(result))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0, help="time spent on each measurement")
    ap.add_argument("--batches", default="1,64,1000,100000,1000000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-lleaves", action="store_true")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure everything this many times, alternating engines, and keep each best "
                         "(the machine is shared: alternating gives every engine the quiet moments)")
    ap.add_argument("--loupe-bench", help="a loupe-bench-inference binary to use instead of building one")
    ap.add_argument("--loupe-model", help="a Loupe model file to score instead of training one "
                    "(the hook for the LightGBM model once Loupe imports it)")
    args = ap.parse_args()
    ensure_venv()
    os.makedirs(OUT, exist_ok=True)
    bench = args.loupe_bench
    if not bench:
        subprocess.run(["swift", "build", "-c", "release", "--product", "loupe-bench-inference"], cwd=ROOT, check=True)
        bench = os.path.join(ROOT, ".build", "release", "loupe-bench-inference")

    # Loupe's model (or the one given) and the clean rows, exported for the anchors.
    model = args.loupe_model or os.path.join(OUT, "loupe-1000x63.loupe")
    prepare = [bench, "--export", OUT, "--batches", "", "--threads", str(args.threads)]
    if args.loupe_model:
        prepare += ["--model", model]
    else:
        prepare += ["--train-rounds", str(SETTINGS["rounds"]), "--num-leaves", str(SETTINGS["leaves"]),
                    "--max-depth", "0", "--save", model]
    subprocess.run(prepare, check=True)

    lleaves_error = "skipped (--no-lleaves)" if args.no_lleaves else ensure_lleaves()
    env = dict(os.environ, PYTHONPATH=LLEAVES_DIR)
    anchor, loupe = None, None
    for round in range(args.rounds):
        anchors = subprocess.run(
            [PY, "-c", ANCHORS, OUT, json.dumps(SETTINGS), args.batches, str(args.seconds), str(args.threads),
             "0" if lleaves_error else "1", "train" if round == 0 else "reuse"],
            env=env, stdout=subprocess.PIPE, text=True, check=True)
        a = json.loads(anchors.stdout)
        if anchor is None:
            anchor = a
        else:
            for engine in ["lightgbm", "lleaves"]:
                for key, value in a[engine].items():
                    if key.isdigit():
                        anchor[engine][key] = max(anchor[engine].get(key, 0), value)
                    elif key == "single_row_seconds":
                        anchor[engine][key] = min(anchor[engine][key], value)
        loupe_run = subprocess.run(
            [bench, "--model", model, "--rows", os.path.join(OUT, "features.f64"), "--batches", args.batches,
             "--threads", str(args.threads), "--seconds", str(args.seconds)] + ([] if round == 0 else ["--no-check"]),
            stdout=subprocess.PIPE, text=True, check=True)
        l = json.loads(loupe_run.stdout)
        if loupe is None:
            loupe = l
        else:
            for old, new in zip(loupe["results"], l["results"]):
                for key in ["rows_per_second", "cpu_rows_per_second"]:
                    if key in new:
                        old[key] = max(old[key], new[key])
                if "single_row_seconds" in new:
                    old["single_row_seconds"] = min(old["single_row_seconds"], new["single_row_seconds"])
    with open(os.path.join(OUT, "inference-results.json"), "w") as f:
        json.dump(dict(loupe=loupe, anchors=anchor, lleaves_error=lleaves_error), f, indent=2)

    batches = [int(b) for b in args.batches.split(",")]
    t = args.threads
    rate = {}
    for r in loupe["results"]:
        if "batch" in r and r["threads"] == t:
            rate[(r["path"], r["batch"])] = r["rows_per_second"]
    paths = loupe["available_paths"]
    m = loupe["model"]
    print(f"\ninference benchmark: {m['trees']} trees, {m['leaves']} leaves (mean depth {m['mean_depth']:.1f}, "
          f"max {m['max_depth']}, mean path {m['mean_path']:.1f} tests), layout per path below, {t} threads; "
          f"rows/s, best call over {args.seconds:g} s, best of {args.rounds} alternating round(s)")
    print(f"exactness: Loupe's kernels vs its reference predictor on {loupe['rows_checked']} rows, "
          f"mismatches {loupe['mismatches']}")
    if lleaves_error:
        print(f"lleaves: not measured: {lleaves_error}")
    head = "".join(f"{'loupe ' + p:>16}" for p in paths) + f"{'lightgbm':>12}{'lleaves':>12}"
    print(f"\n{'batch':>9}{head}{'best/lgbm':>11}{'best/lleaves':>13}")
    for b in batches:
        best = max(rate.get((p, b), 0) for p in paths)
        lg = anchor["lightgbm"].get(str(b))
        ll = anchor["lleaves"].get(str(b))
        line = f"{b:>9}" + "".join(f"{rate.get((p, b), 0):>16,.0f}" for p in paths)
        line += f"{lg:>12,.0f}" if lg else f"{'skipped':>12}"
        line += f"{ll:>12,.0f}" if ll else f"{'-':>12}"
        line += f"{best / lg:>10.1f}x" if lg else f"{'-':>11}"
        line += f"{best / ll:>12.1f}x" if ll else f"{'-':>13}"
        print(line)
    if anchor["lightgbm"].get("skipped"):
        print("  (skipped: batches whose LightGBM calls would take over 20 s each, from its rate on the largest measured)")
    print("\nsingle-row call (one feature vector):")
    for r in loupe["results"]:
        if "single_row_seconds" in r and r["threads"] == t:
            print(f"  loupe {r['path']:<8} ({r['layout']}) {1e6 * r['single_row_seconds']:8.2f} us")
    for name in ["lightgbm", "lleaves"]:
        if "single_row_seconds" in anchor.get(name, {}):
            print(f"  {name:<23} {1e6 * anchor[name]['single_row_seconds']:8.2f} us")
    if "1000000" in anchor["lleaves"] and (loupe["best_path"], 1_000_000) in rate:
        ratio = rate[(loupe["best_path"], 1_000_000)] / anchor["lleaves"]["1000000"]
        print(f"\n  [{'x' if ratio >= 2 else ' '}] 1M-row batch >= 2x lleaves (goal 4x): {ratio:.1f}x")


if __name__ == "__main__":
    main()
