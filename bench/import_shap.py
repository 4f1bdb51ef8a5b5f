#!/usr/bin/env python3
"""Import and reasons benchmark: LightGBM and XGBoost models imported into Loupe, scored and
explained by Loupe beside the libraries themselves, lleaves and TL2cgen, in one run.

Models (trained here on the bundled data's clean rows, log price): LightGBM 1000 trees of 63
leaves (lr 0.05) and XGBoost 1000 trees of depth 8 (eta 0.05, hist). Loupe imports each file
(`loupe-bench-inference --import-lightgbm/--import-xgboost`) and must reproduce the library's
raw scores exactly on every clean row (LightGBM: bit-identical doubles; XGBoost: bit-identical
float32) and its SHAP values (pred_contrib / pred_contribs) within 1e-5 on 1,000 rows.
Rows: the clean rows tiled to each batch (1, 64, 1k, 100k, 1M), 2 threads; rows/s is the best
call over about `--seconds`. TreeSHAP rows/s at 1, 64 and 1k rows (the anchors are slow).

TL2cgen compiles the LightGBM model (gcc -O3, 16 translation units, cached in bench/out);
the XGBoost one only with --tl2cgen-xgboost (its depth-8 trees took gcc over 25 minutes here).

Usage: bench/import_shap.py [--seconds S] [--batches 1,64,...] [--threads 2] [--python PY]
                            [--no-lleaves] [--no-tl2cgen] [--tl2cgen-xgboost] [--loupe-bench PATH]
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path.insert(0, HERE)
import inference  # noqa: E402  (venv and lleaves set-up are shared)

TL2CGEN_DIR = os.path.join(HERE, ".tl2cgen")
TL2CGEN_PINS = ["tl2cgen==1.0.0", "treelite==4.8.1"]

ANCHORS = r'''
import json, os, sys, time
import numpy as np
out, batches, explain_batches, seconds, threads, use_lleaves, tl2cgen_models = sys.argv[1], \
    [int(b) for b in sys.argv[2].split(",")], [int(b) for b in sys.argv[3].split(",")], float(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6] == "1", [m for m in sys.argv[7].split(",") if m]
names = ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"]
X = np.fromfile(os.path.join(out, "features.f64")).reshape(-1, 9)
y = np.fromfile(os.path.join(out, "log_price.f64"))
import lightgbm as lgb, xgboost as xgb
result = {"errors": {}}
lgb_file = os.path.join(out, "import-lightgbm-1000x63.txt")
xgb_file = os.path.join(out, "import-xgboost-1000xd8.json")
if not os.path.exists(lgb_file):
    params = dict(objective="regression", num_leaves=63, max_depth=-1, learning_rate=0.05, num_threads=threads,
                  verbose=-1, seed=1, deterministic=True)
    lgb.train(params, lgb.Dataset(X, y, feature_name=names), 1000).save_model(lgb_file)
if not os.path.exists(xgb_file):
    d = xgb.DMatrix(X, y, feature_names=names)
    xgb.train(dict(objective="reg:squarederror", max_depth=8, eta=0.05, tree_method="hist", nthread=threads, seed=1),
              d, 1000).save_model(xgb_file)
booster = lgb.Booster(model_file=lgb_file)
xbooster = xgb.Booster(model_file=xgb_file)
xbooster.set_param({"nthread": threads})
# What Loupe must reproduce: raw scores on every clean row, SHAP on the first 1,000.
booster.predict(X, raw_score=True, num_threads=threads).tofile(os.path.join(out, "import-lightgbm-raw.f64"))
xbooster.inplace_predict(X, predict_type="margin").astype(np.float32).tofile(os.path.join(out, "import-xgboost-raw.f32"))
booster.predict(X[:1000], pred_contrib=True, num_threads=threads).astype(np.float64).tofile(os.path.join(out, "import-lightgbm-shap.f64"))
xbooster.predict(xgb.DMatrix(X[:1000], feature_names=names), pred_contribs=True).astype(np.float64).tofile(
    os.path.join(out, "import-xgboost-shap.f64"))

def measure(call):
    t = time.perf_counter(); call(); first = time.perf_counter() - t
    best, total, calls = first, 0.0, 0
    while total < seconds or calls < (1 if first > seconds else 3):
        t = time.perf_counter(); call(); s = time.perf_counter() - t
        best, total, calls = min(best, s), total + s, calls + 1
    return best
def tiled(n):
    reps = -(-n // len(X))
    return np.ascontiguousarray(np.tile(X, (reps, 1))[:n])
engines = [("lightgbm", lambda rows: booster.predict(rows, raw_score=True, num_threads=threads)),
           ("xgboost", lambda rows: xbooster.inplace_predict(rows, predict_type="margin"))]
if use_lleaves:
    try:
        import lleaves
        compiled = lleaves.Model(model_file=lgb_file)
        t = time.perf_counter()
        compiled.compile(cache=os.path.join(out, "import-lleaves-1000x63.so"))
        result["lleaves_compile_seconds"] = time.perf_counter() - t
        engines.append(("lleaves", lambda rows: compiled.predict(rows, n_jobs=threads)))
    except Exception as e:
        result["errors"]["lleaves"] = repr(e)[:300]
if tl2cgen_models:
    try:
        import treelite, tl2cgen
        for name, load in [("tl2cgen-lightgbm", lambda: treelite.frontend.load_lightgbm_model(lgb_file)),
                           ("tl2cgen-xgboost", lambda: treelite.frontend.load_xgboost_model(xgb_file))]:
            if name.split("-")[1] not in tl2cgen_models:
                continue
            lib = os.path.join(out, f"import-{name}.so")
            if not os.path.exists(lib):
                t = time.perf_counter()
                tl2cgen.export_lib(load(), toolchain="gcc", libpath=lib, params={"parallel_comp": 16}, nthread=threads)
                result[name + "_compile_seconds"] = time.perf_counter() - t
            predictor = tl2cgen.Predictor(lib, nthread=threads)
            engines.append((name, lambda rows, p=predictor: p.predict(tl2cgen.DMatrix(rows))))
    except Exception as e:
        result["errors"]["tl2cgen"] = repr(e)[:300]
for name, _ in engines:
    result[name] = {}
for batch in batches:
    rows = tiled(batch)
    for name, predict in engines:
        known = [b for b in result[name] if b.isdigit()]
        if known and batch / result[name][max(known, key=int)] > 20:
            result[name]["skipped"] = result[name].get("skipped", []) + [batch]
            continue
        s = measure(lambda: predict(rows))
        result[name][str(batch)] = batch / s
        print(f"{name} batch {batch}: {batch / s:,.0f} rows/s", file=sys.stderr)
one = np.ascontiguousarray(X[:1])
for name, predict in engines:
    result[name]["single_row_seconds"] = measure(lambda: [predict(one) for _ in range(20)]) / 20
# TreeSHAP anchors.
result["lightgbm_shap"], result["xgboost_shap"] = {}, {}
for batch in explain_batches:
    rows = tiled(batch)
    s = measure(lambda: booster.predict(rows, pred_contrib=True, num_threads=threads))
    result["lightgbm_shap"][str(batch)] = batch / s
    dm = xgb.DMatrix(rows, feature_names=names, nthread=threads)
    s = measure(lambda: xbooster.predict(dm, pred_contribs=True))
    result["xgboost_shap"][str(batch)] = batch / s
    print(f"shap batch {batch}: lightgbm {result['lightgbm_shap'][str(batch)]:,.0f}, "
          f"xgboost {result['xgboost_shap'][str(batch)]:,.0f} rows/s", file=sys.stderr)
print(json.dumps(result))
'''


def ensure_tl2cgen(py):
    env = dict(os.environ, PYTHONPATH=TL2CGEN_DIR)
    if subprocess.run([py, "-c", "import tl2cgen, treelite"], env=env, capture_output=True).returncode == 0:
        return None
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--target", TL2CGEN_DIR, "--no-deps"] + TL2CGEN_PINS,
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"pip could not install {' '.join(TL2CGEN_PINS)}: {r.stderr.strip().splitlines()[-1:]}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--batches", default="1,64,1000,100000,1000000")
    ap.add_argument("--explain-batches", default="1,64,1000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--python", help="a Python with lightgbm/xgboost/numpy (default: bench/.venv, made on first use)")
    ap.add_argument("--no-lleaves", action="store_true")
    ap.add_argument("--no-tl2cgen", action="store_true")
    ap.add_argument("--tl2cgen-xgboost", action="store_true",
                    help="also compile the XGBoost model with TL2cgen (gcc -O3 took over 25 minutes on it here)")
    ap.add_argument("--loupe-bench", help="a loupe-bench-inference binary to use instead of building one")
    args = ap.parse_args()
    py = args.python
    if not py:
        inference.ensure_venv()
        py = inference.PY
    inference.PY = py
    os.makedirs(OUT, exist_ok=True)
    bench = args.loupe_bench
    if not bench:
        subprocess.run(["swift", "build", "-c", "release", "--product", "loupe-bench-inference"], cwd=ROOT, check=True)
        bench = os.path.join(ROOT, ".build", "release", "loupe-bench-inference")
    if not os.path.exists(os.path.join(OUT, "features.f64")):
        subprocess.run([bench, "--export", OUT, "--batches", "", "--train-rounds", "1"], check=True)

    lleaves_error = "skipped (--no-lleaves)" if args.no_lleaves else inference.ensure_lleaves()
    tl2cgen_error = "skipped (--no-tl2cgen)" if args.no_tl2cgen else ensure_tl2cgen(py)
    env = dict(os.environ, PYTHONPATH=":".join([inference.LLEAVES_DIR, TL2CGEN_DIR]))
    run = subprocess.run([py, "-c", ANCHORS, OUT, args.batches, args.explain_batches, str(args.seconds),
                          str(args.threads), "0" if lleaves_error else "1",
                          "" if tl2cgen_error else ("lightgbm,xgboost" if args.tl2cgen_xgboost else "lightgbm")],
                         env=env, stdout=subprocess.PIPE, text=True, check=True)
    anchor = json.loads(run.stdout.strip().splitlines()[-1])  # TL2cgen may log to stdout first
    import numpy as np
    X = np.fromfile(os.path.join(OUT, "features.f64")).reshape(-1, 9)

    loupe = {}
    for lib, flag, model in [("lightgbm", "--import-lightgbm", "import-lightgbm-1000x63.txt"),
                             ("xgboost", "--import-xgboost", "import-xgboost-1000xd8.json")]:
        scores, shap = os.path.join(OUT, f"loupe-{lib}-raw.f64"), os.path.join(OUT, f"loupe-{lib}-shap.f64")
        r = subprocess.run([bench, flag, os.path.join(OUT, model), "--rows", os.path.join(OUT, "features.f64"),
                            "--batches", args.batches, "--threads", str(args.threads), "--seconds", str(args.seconds),
                            "--scores-out", scores, "--explain-out", shap, "--explain-batches", args.explain_batches],
                           stdout=subprocess.PIPE, text=True, check=True)
        loupe[lib] = json.loads(r.stdout[r.stdout.index("{"):])
        mine = np.fromfile(scores)
        if lib == "lightgbm":
            theirs = np.fromfile(os.path.join(OUT, "import-lightgbm-raw.f64"))
            loupe[lib]["raw_mismatches"] = int((mine.view(np.uint64) != theirs.view(np.uint64)).sum())
        else:
            theirs = np.fromfile(os.path.join(OUT, "import-xgboost-raw.f32"), dtype=np.float32)
            loupe[lib]["raw_mismatches"] = int((mine.astype(np.float32).view(np.uint32) != theirs.view(np.uint32)).sum())
        a = np.fromfile(shap).reshape(-1, 10)
        b = np.fromfile(os.path.join(OUT, f"import-{lib}-shap.f64")).reshape(-1, 10)
        loupe[lib]["shap_max_difference"] = float(np.abs(a - b).max())
        loupe[lib]["rows"] = len(mine)
    with open(os.path.join(OUT, "import-shap-results.json"), "w") as f:
        json.dump(dict(loupe=loupe, anchors=anchor, lleaves_error=lleaves_error, tl2cgen_error=tl2cgen_error), f, indent=2)

    t = args.threads
    batches = [int(b) for b in args.batches.split(",")]
    def best_rate(lib, batch):
        return max((r["rows_per_second"] for r in loupe[lib]["results"] if r.get("batch") == batch and r["threads"] == t),
                   default=0)
    def single(lib):
        return min((r["single_row_seconds"] for r in loupe[lib]["results"] if "single_row_seconds" in r and r["threads"] == t),
                   default=float("nan"))
    print(f"\nimport + reasons benchmark, {t} threads, rows/s (best call over {args.seconds:g} s), one run")
    for lib in ["lightgbm", "xgboost"]:
        m = loupe[lib]["model"]
        engine = "flat kernels" if m["flat"] else f"reference walk ({m['generic_reason']})"
        print(f"{lib}: {m['trees']} trees, {m['leaves']} leaves, mean depth {m['mean_depth']:.1f}; imported in "
              f"{m['import_seconds']:.2f} s; Loupe scores it with {engine}; raw-score mismatches vs {lib} on "
              f"{loupe[lib]['rows']} rows: {loupe[lib]['raw_mismatches']}; SHAP max |difference| on 1,000 rows: "
              f"{loupe[lib]['shap_max_difference']:.2e}; TreeSHAP tables {loupe[lib]['explain']['table_bytes'] / 1e6:.0f} MB "
              f"built in {loupe[lib]['explain']['build_seconds']:.2f} s")
    for e, err in [("lleaves", lleaves_error), ("tl2cgen", tl2cgen_error or anchor["errors"].get("tl2cgen"))]:
        if err or anchor["errors"].get(e):
            print(f"{e}: not measured: {err or anchor['errors'].get(e)}")
    cols = [("loupe lgbm", lambda b: best_rate("lightgbm", b)), ("lightgbm", lambda b: anchor["lightgbm"].get(str(b))),
            ("lleaves", lambda b: anchor.get("lleaves", {}).get(str(b))),
            ("tl2cgen lgbm", lambda b: anchor.get("tl2cgen-lightgbm", {}).get(str(b))),
            ("loupe xgb", lambda b: best_rate("xgboost", b)), ("xgboost", lambda b: anchor["xgboost"].get(str(b))),
            ("tl2cgen xgb", lambda b: anchor.get("tl2cgen-xgboost", {}).get(str(b)))]
    print("\n" + f"{'batch':>9}" + "".join(f"{c:>14}" for c, _ in cols) + f"{'lgbm/lleaves':>14}{'xgb/xgboost':>13}")
    for b in batches:
        line = f"{b:>9}"
        for _, get in cols:
            v = get(b)
            line += f"{v:>14,.0f}" if v else f"{'-':>14}"
        ll, xg = anchor.get("lleaves", {}).get(str(b)), anchor["xgboost"].get(str(b))
        line += f"{best_rate('lightgbm', b) / ll:>13.1f}x" if ll else f"{'-':>14}"
        line += f"{best_rate('xgboost', b) / xg:>12.1f}x" if xg else f"{'-':>13}"
        print(line)
    print("\nsingle-row call (one feature vector):")
    print(f"  loupe (lightgbm model) {1e6 * single('lightgbm'):9.2f} us")
    print(f"  loupe (xgboost model)  {1e6 * single('xgboost'):9.2f} us")
    for name in ["lightgbm", "lleaves", "tl2cgen-lightgbm", "xgboost", "tl2cgen-xgboost"]:
        if "single_row_seconds" in anchor.get(name, {}):
            print(f"  {name:<22} {1e6 * anchor[name]['single_row_seconds']:9.2f} us")
    print("\nTreeSHAP rows/s:")
    print(f"{'batch':>9}{'loupe lgbm':>14}{'pred_contrib':>14}{'ratio':>8}{'loupe xgb':>14}{'pred_contribs':>15}{'ratio':>8}")
    for b in args.explain_batches.split(","):
        ll, lx = loupe["lightgbm"]["explain"]["rows_per_second"][b], loupe["xgboost"]["explain"]["rows_per_second"][b]
        al, ax = anchor["lightgbm_shap"][b], anchor["xgboost_shap"][b]
        print(f"{b:>9}{ll:>14,.0f}{al:>14,.0f}{ll / al:>7.1f}x{lx:>14,.0f}{ax:>15,.0f}{lx / ax:>7.1f}x")
    print("\nbars:")
    if "1000000" in anchor.get("lleaves", {}):
        r = best_rate("lightgbm", 1_000_000) / anchor["lleaves"]["1000000"]
        print(f"  [{'x' if r >= 6 else ' '}] 1M-row batch >= 6x lleaves on the LightGBM model (issue 25): {r:.1f}x")
    if "single_row_seconds" in anchor.get("lleaves", {}):
        r = anchor["lleaves"]["single_row_seconds"] / single("lightgbm")
        print(f"  [{'x' if r > 1 else ' '}] single row faster than lleaves' single-row call: {r:.1f}x")
    top = args.explain_batches.split(",")[-1]
    r = loupe["lightgbm"]["explain"]["rows_per_second"][top] / anchor["lightgbm_shap"][top]
    print(f"  [{'x' if r >= 30 else ' '}] TreeSHAP >= 30x LightGBM pred_contrib ({top} rows, issue 25): {r:.1f}x")
    exact = loupe["lightgbm"]["raw_mismatches"] == 0 and loupe["xgboost"]["raw_mismatches"] == 0
    print(f"  [{'x' if exact else ' '}] raw scores bit-identical to LightGBM (double) and XGBoost (float32) on every row")
    close = max(loupe[l]["shap_max_difference"] for l in loupe) <= 1e-5
    print(f"  [{'x' if close else ' '}] SHAP within 1e-5 of pred_contrib / pred_contribs")


if __name__ == "__main__":
    main()
