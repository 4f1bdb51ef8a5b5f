#!/usr/bin/env python3
"""Tuning benchmark: `loupe tune` against Optuna (TPE, 60 trials) tuning LightGBM, in one run.

Both search the same space on the same rows (the cleaned bundled data, split 80/20 with a
fixed seed, as bench/train.py does): learning rate, num_leaves, max_depth, min_data_in_leaf,
feature and row sampling, lambda_l2, min_gain_to_split, max_bin, with early stopping on 20%
of the training rows and 2 threads. Each then trains its final model with the best parameters
on all training rows and is scored on the test rows. Printed: test RMSE and wall time of each
and the ratios; the bars (issue 25) are Loupe's test RMSE <= $500 and <= Optuna's, in <= 1/5 of
Optuna's wall time.

Usage: bench/tune.py [--loupe PATH] [--optuna-trials 60] [--loupe-budget ...]
"""
import argparse, json, os, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
sys.path.insert(0, HERE)
import train as trainbench  # the venv and the split

OPTUNA = r'''
import json, sys, time
import numpy as np, pandas as pd, lightgbm as lgb, optuna
train_csv, test_csv, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
grades = dict(cut=["Fair", "Good", "Very Good", "Premium", "Ideal"], color=list("JIHGFED"),
              clarity=["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"])
F = ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"]
def load(p):
    d = pd.read_csv(p)
    for c, levels in grades.items():
        d[c] = d[c].map({k: i for i, k in enumerate(levels)})
    return d[F].to_numpy(np.float64), d["price"].to_numpy(np.float64)
X, y = load(train_csv)
Xte, yte = load(test_csv)
rng = np.random.default_rng(7); idx = rng.permutation(len(X)); n = int(0.8 * len(X))
Xtr, ytr, Xva, yva = X[idx[:n]], y[idx[:n]], X[idx[n:]], y[idx[n:]]
start = time.perf_counter()
def objective(trial):
    p = dict(objective="regression", verbose=-1, num_threads=2, seed=1,
             learning_rate=trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
             num_leaves=trial.suggest_int("num_leaves", 15, 255, log=True),
             max_depth=trial.suggest_categorical("max_depth", [-1, 6, 8, 10, 12]),
             min_data_in_leaf=trial.suggest_int("min_data_in_leaf", 3, 100, log=True),
             feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
             bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0), bagging_freq=1,
             lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 10, log=True),
             min_gain_to_split=trial.suggest_float("min_gain_to_split", 1e-8, 1e-2, log=True))
    max_bin = trial.suggest_categorical("max_bin", [63, 127, 255])
    dtr = lgb.Dataset(Xtr, np.log(ytr), params={"max_bin": max_bin, "verbose": -1})
    dva = lgb.Dataset(Xva, np.log(yva), reference=dtr)
    m = lgb.train(p, dtr, 3000, valid_sets=[dva], callbacks=[lgb.early_stopping(50, verbose=False)])
    trial.set_user_attr("best_iteration", m.best_iteration)
    pred = np.exp(m.predict(Xva, num_iteration=m.best_iteration))
    return float(np.sqrt(((pred - yva) ** 2).mean()))
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=1))
study.optimize(objective, n_trials=trials)
best = study.best_trial
p = dict(objective="regression", verbose=-1, num_threads=2, seed=1, bagging_freq=1,
         **{k: v for k, v in best.params.items() if k != "max_bin"})
final = lgb.train(p, lgb.Dataset(X, np.log(y), params={"max_bin": best.params["max_bin"], "verbose": -1}),
                  int(best.user_attrs["best_iteration"] * 1.25))
seconds = time.perf_counter() - start
pred = np.exp(final.predict(Xte))
print(json.dumps(dict(seconds=seconds, validation_rmse=best.value,
                      test_rmse=float(np.sqrt(((pred - yte) ** 2).mean())), params=best.params)))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loupe")
    ap.add_argument("--optuna-trials", type=int, default=60)
    ap.add_argument("--loupe-budget", action="append", default=[], help="passed to loupe tune --budget")
    args = ap.parse_args()
    trainbench.ensure_venv()
    if not os.path.exists(os.path.join(trainbench.VENV, "lib")) or subprocess.run(
            [trainbench.PY, "-c", "import optuna"], capture_output=True).returncode != 0:
        subprocess.run([trainbench.PY, "-m", "pip", "install", "-q", "optuna==5.0.0"], check=True)
    loupe = args.loupe
    if not loupe:
        subprocess.run(["swift", "build", "-c", "release", "--product", "loupe"], cwd=ROOT, check=True)
        loupe = os.path.join(ROOT, ".build", "release", "loupe")
    os.makedirs(OUT, exist_ok=True)
    train_csv, test_csv = trainbench.prepare_split(loupe)

    start = time.perf_counter()
    out = subprocess.run([trainbench.PY, "-c", OPTUNA, train_csv, test_csv, str(args.optuna_trials)],
                         check=True, capture_output=True, text=True).stdout
    optuna_result = json.loads(out.strip().splitlines()[-1])
    optuna_wall = time.perf_counter() - start

    store = tempfile.mkdtemp(prefix="loupe-tune-bench-", dir=OUT)
    budget = sum((["--budget", b] for b in args.loupe_budget), [])
    start = time.perf_counter()
    subprocess.run([loupe, "tune", "--store", store, "--data", train_csv, "--register", "--promote", "--threads", "2",
                    "--quiet", *budget], check=True, stdout=subprocess.DEVNULL)
    loupe_wall = time.perf_counter() - start
    ev = json.loads(subprocess.run([loupe, "evaluate", "diamonds", test_csv, "--store", store, "--json"],
                                   check=True, capture_output=True, text=True).stdout)
    loupe_rmse = ev["metrics"]["rmse"]

    print(f"\ntuning benchmark (same split and search space, 2 threads)\n")
    print(f"{'':28}{'test RMSE':>12}{'wall s':>10}")
    print(f"{'Optuna TPE + LightGBM':28}{optuna_result['test_rmse']:>12.2f}{optuna_wall:>10.1f}"
          f"   ({args.optuna_trials} trials)")
    print(f"{'loupe tune':28}{loupe_rmse:>12.2f}{loupe_wall:>10.1f}"
          f"   (budget: {' '.join(args.loupe_budget) or 'default'})")
    print(f"\nloupe / optuna: RMSE {loupe_rmse / optuna_result['test_rmse']:.3f}, time {loupe_wall / optuna_wall:.3f}")
    ok_rmse = loupe_rmse <= optuna_result["test_rmse"]
    ok_500 = loupe_rmse <= 500
    ok_time = loupe_wall <= optuna_wall / 5
    print(f"\n  [{'x' if ok_rmse else ' '}] test RMSE at least as good as Optuna's")
    print(f"  [{'x' if ok_500 else ' '}] test RMSE <= $500")
    print(f"  [{'x' if ok_time else ' '}] in <= 1/5 of Optuna's wall time")
    with open(os.path.join(OUT, "tune-results.json"), "w") as f:
        json.dump(dict(optuna=optuna_result, optuna_wall=optuna_wall, loupe_rmse=loupe_rmse, loupe_wall=loupe_wall), f,
                  indent=2)


if __name__ == "__main__":
    main()
