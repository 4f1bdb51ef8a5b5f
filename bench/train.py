#!/usr/bin/env python3
"""Training benchmark: Loupe against LightGBM and XGBoost on one fixed split, in one run.

All three train on the same cleaned rows (the bundled data through `loupe clean`), split 80/20
with a fixed seed, with the same settings: 1000 rounds, 63 leaves, depth 8, learning rate
0.05, log(price) target, 2 threads, no early stopping. Each trainer runs in its own process
so its peak memory (max RSS) is its own. Metrics are computed here, by the same code, from
each model's test-set predictions. Loupe holds out a calibration part of its training rows
(default 5%) for its price ranges, so it trains on fewer rows than the anchors.

Usage: bench/train.py [--runs N] [--loupe PATH]   (builds Loupe in release mode unless --loupe)
"""
import argparse, json, os, resource, subprocess, sys, time, venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
VENV = os.path.join(HERE, ".venv")
PY = os.path.join(VENV, "bin", "python")
SETTINGS = dict(rounds=1000, leaves=63, depth=8, lr=0.05, threads=2)


def ensure_venv():
    if not os.path.exists(PY):
        print("creating bench/.venv with the anchors (one time)", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        subprocess.run([PY, "-m", "pip", "install", "-q", "-r", os.path.join(HERE, "requirements.txt")], check=True)


def run_measured(cmd, **kw):
    """Runs cmd; returns (stdout, wall seconds, peak RSS MB of that child)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read()
    err = proc.stderr.read()
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return out, wall, usage.ru_maxrss / 1024


ANCHOR = r'''
import json, sys, time
import numpy as np, pandas as pd
kind, train_csv, test_csv, pred_out = sys.argv[1:5]
s = json.loads(sys.argv[5])
grades = dict(cut=["Fair", "Good", "Very Good", "Premium", "Ideal"], color=list("JIHGFED"),
              clarity=["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"])
F = ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"]
def load(p):
    d = pd.read_csv(p)
    for c, levels in grades.items():
        d[c] = d[c].map({k: i for i, k in enumerate(levels)})
    return d[F].to_numpy(np.float64), np.log(d["price"].to_numpy(np.float64))
Xtr, ytr = load(train_csv)
Xte, _ = load(test_csv)
t = time.perf_counter()
if kind == "lightgbm":
    import lightgbm as lgb
    p = dict(objective="regression", num_leaves=s["leaves"], max_depth=s["depth"], learning_rate=s["lr"],
             num_threads=s["threads"], verbose=-1, seed=1, deterministic=True)
    m = lgb.train(p, lgb.Dataset(Xtr, ytr), s["rounds"])
    secs = time.perf_counter() - t
    pred = m.predict(Xte, num_threads=s["threads"])
else:
    import xgboost as xgb
    p = dict(max_depth=s["depth"], max_leaves=s["leaves"], grow_policy="lossguide", eta=s["lr"],
             nthread=s["threads"], tree_method="hist", objective="reg:squarederror", seed=1)
    b = xgb.train(p, xgb.DMatrix(Xtr, ytr), s["rounds"])
    secs = time.perf_counter() - t
    pred = b.predict(xgb.DMatrix(Xte))
np.savetxt(pred_out, np.exp(pred))
print(json.dumps({"train_seconds": secs}))
'''


def metrics(actual, predicted, low=None, high=None):
    import numpy as np
    e = predicted - actual
    m = dict(rmse=float(np.sqrt((e ** 2).mean())), mae=float(np.abs(e).mean()),
             mape=float(100 * (np.abs(e) / actual).mean()),
             r2=float(1 - (e ** 2).sum() / ((actual - actual.mean()) ** 2).sum()))
    if low is not None:
        m["coverage"] = float(((actual >= low) & (actual <= high)).mean())
        m["width"] = float(np.median((high - low) / predicted))
    return m


def prepare_split(loupe):
    """The cleaned bundled data split 80/20 with a fixed seed: the rows every bench trains and tests on."""
    raw = os.path.join(OUT, "diamonds.csv")
    with open(raw, "w") as f:
        subprocess.run([loupe, "data"], stdout=f, check=True)
    clean = os.path.join(OUT, "clean.csv")
    subprocess.run([loupe, "clean", raw, "--out", clean], stdout=subprocess.DEVNULL, check=True)
    split = r'''
import sys, numpy as np, pandas as pd
d = pd.read_csv(sys.argv[1]); idx = np.random.default_rng(42).permutation(len(d)); n = int(0.8 * len(d))
d.iloc[idx[:n]].to_csv(sys.argv[2], index=False); d.iloc[idx[n:]].to_csv(sys.argv[3], index=False)
'''
    train_csv, test_csv = os.path.join(OUT, "train.csv"), os.path.join(OUT, "test.csv")
    subprocess.run([PY, "-c", split, clean, train_csv, test_csv], check=True)
    return train_csv, test_csv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1, help="repeat each trainer and keep its fastest run")
    ap.add_argument("--loupe", help="a loupe binary to use instead of building one")
    args = ap.parse_args()
    ensure_venv()
    os.makedirs(OUT, exist_ok=True)
    loupe = args.loupe
    if not loupe:
        subprocess.run(["swift", "build", "-c", "release", "--product", "loupe"], cwd=ROOT, check=True)
        loupe = os.path.join(ROOT, ".build", "release", "loupe")

    train_csv, test_csv = prepare_split(loupe)

    import csv
    with open(test_csv) as f:
        actual = [float(r["price"]) for r in csv.DictReader(f)]

    results = {}
    for kind in ["lightgbm", "xgboost", "loupe"]:
        best = None
        for _ in range(args.runs):
            pred_out = os.path.join(OUT, f"pred-{kind}.txt")
            if kind == "loupe":
                model = os.path.join(OUT, "model.loupe")
                s = SETTINGS
                out, wall, rss = run_measured([
                    loupe, "train", "--store", os.path.join(OUT, "train-store"), "--data", train_csv, "--out", model,
                    "--json", "--quiet",
                    "--rounds", str(s["rounds"]), "--num-leaves", str(s["leaves"]), "--max-depth", str(s["depth"]),
                    "--learning-rate", str(s["lr"]), "--threads", str(s["threads"]), "--early-stopping", "0"])
                secs = json.loads(out)["report"]["totalSeconds"]
                preds_csv = os.path.join(OUT, "pred-loupe.csv")
                subprocess.run([loupe, "predict", model, "--csv", test_csv, "--out", preds_csv],
                               stderr=subprocess.DEVNULL, check=True)
                with open(preds_csv) as f:
                    rows = list(csv.DictReader(f))
                pred = [float(r["price"]) for r in rows]
                low = [float(r["low"]) for r in rows]
                high = [float(r["high"]) for r in rows]
            else:
                out, wall, rss = run_measured([PY, "-c", ANCHOR, kind, train_csv, test_csv, pred_out, json.dumps(SETTINGS)])
                secs = json.loads(out)["train_seconds"]
                with open(pred_out) as f:
                    pred = [float(x) for x in f.read().split()]
                low = high = None
            if best is None or secs < best["seconds"]:
                best = dict(seconds=secs, rss=rss, pred=pred, low=low, high=high)
        results[kind] = best

    import numpy as np
    a = np.array(actual)
    table = {}
    for kind, r in results.items():
        m = metrics(a, np.array(r["pred"]), None if r["low"] is None else np.array(r["low"]),
                    None if r["high"] is None else np.array(r["high"]))
        m.update(seconds=r["seconds"], peak_mb=r["rss"])
        table[kind] = m

    print(f"\ntraining benchmark: {len(actual)} test rows, settings {SETTINGS}, best of {args.runs}\n")
    cols = ["rmse", "mae", "mape", "r2", "seconds", "peak_mb"]
    print(f"{'':10}" + "".join(f"{c:>12}" for c in cols) + f"{'coverage':>12}{'width':>10}")
    for kind, m in table.items():
        line = f"{kind:10}" + "".join(f"{m[c]:>12.4f}" if c == "r2" else f"{m[c]:>12.2f}" for c in cols)
        if "coverage" in m:
            line += f"{100 * m['coverage']:>11.1f}%{100 * m['width']:>9.1f}%"
        print(line)
    print()
    for anchor in ["lightgbm", "xgboost"]:
        ratios = "  ".join(f"{c} {table['loupe'][c] / table[anchor][c]:.3f}" for c in ["rmse", "mae", "seconds", "peak_mb"])
        print(f"loupe / {anchor:9} {ratios}")
    bars = [
        ("test RMSE <= 1.01 x LightGBM", table["loupe"]["rmse"] <= 1.01 * table["lightgbm"]["rmse"]),
        ("training time <= 1.5 x LightGBM", table["loupe"]["seconds"] <= 1.5 * table["lightgbm"]["seconds"]),
        ("peak memory <= 300 MB", table["loupe"]["peak_mb"] <= 300),
        ("90% ranges cover 88-92% of test rows", 0.88 <= table["loupe"]["coverage"] <= 0.92),
    ]
    print()
    for name, ok in bars:
        print(f"  [{'x' if ok else ' '}] {name}")
    with open(os.path.join(OUT, "train-results.json"), "w") as f:
        json.dump(table, f, indent=2)


if __name__ == "__main__":
    main()
