#!/usr/bin/env python3
"""Makes the model-import test fixtures in Tests/ModelImportTests/Fixtures: small models saved by
LightGBM and XGBoost themselves, test rows, and the libraries' own predictions on them (raw
scores and SHAP contributions), so the Swift tests need no Python.

Each fixture is NAME.txt (LightGBM) or NAME.json (XGBoost) plus NAME.csv: one line per test
row, `x0..x{n-1}, raw, c0..c{n-1}, bias`, numbers as Python repr (NaN as nan). Rows: random
rows, then every threshold of the model and its double neighbours put into random rows, then
NaN, zeros, -0.0, infinities and out-of-range categories.

Usage (pins as bench/requirements.txt: lightgbm 4.7.0, xgboost 3.2.0):
    python3 scripts/make-import-fixtures.py
"""
import math, os
import numpy as np
import lightgbm as lgb
import xgboost as xgb

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelImportTests", "Fixtures")
NAMES = ["carat", "grade", "depth", "table", "x"]


def data(n=3000, seed=7):
    r = np.random.default_rng(seed)
    X = np.empty((n, 5))
    X[:, 0] = r.uniform(0.2, 3.0, n)
    X[:, 1] = r.integers(0, 8, n)
    X[:, 2] = r.normal(61.8, 1.5, n)
    X[:, 2][r.random(n) < 0.1] = np.nan
    X[:, 3] = np.where(r.random(n) < 0.3, 0.0, r.uniform(50, 70, n))
    X[:, 3][r.random(n) < 0.05] = np.nan
    X[:, 4] = r.uniform(3, 9, n)
    y = 1.7 * np.log(X[:, 0]) + 0.08 * X[:, 1] + np.nan_to_num(0.02 * (X[:, 2] - 62)) \
        + 0.01 * X[:, 3] + 0.1 * np.sin(X[:, 4]) + 7.5 + r.normal(0, 0.05, n)
    return X, np.nan_to_num(y, nan=7.0)


def test_rows(X, thresholds, categorical=()):
    r = np.random.default_rng(11)
    rows = [X[i].copy() for i in r.choice(len(X), 40, replace=False)]
    for f, ts in thresholds.items():
        for t in sorted(set(ts)):
            for v in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf),
                      float(np.float32(t)), float(np.nextafter(np.float32(t), np.float32(np.inf)))):
                row = X[r.integers(len(X))].copy()
                row[f] = v
                rows.append(row)
    specials = [np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-36, -1e-300]
    for f in range(X.shape[1]):
        for v in specials + ([-1.0, -0.5, 8.0, 8.7, 40.0, 1e10] if f in categorical else []):
            row = X[r.integers(len(X))].copy()
            row[f] = v
            rows.append(row)
    allnan = np.full(X.shape[1], np.nan)
    rows.append(allnan)
    return np.array(rows)


def write(name, rows, raw, contrib):
    with open(os.path.join(OUT, name + ".csv"), "w") as f:
        for x, s, c in zip(rows, raw, contrib):
            f.write(",".join(repr(float(v)) for v in list(x) + [s] + list(c)) + "\n")


def lightgbm_fixture(name, params, categorical=()):
    X, y = data()
    ds = lgb.Dataset(X, y, feature_name=NAMES, categorical_feature=list(categorical) or "auto", free_raw_data=False)
    booster = lgb.train(dict(objective="regression", num_leaves=15, learning_rate=0.2, min_data_in_leaf=5,
                             verbose=-1, seed=1, deterministic=True, num_threads=1, **params), ds, 20)
    path = os.path.join(OUT, name + ".txt")
    booster.save_model(path)
    booster = lgb.Booster(model_file=path)
    thresholds = {}
    def walk(node):
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                thresholds.setdefault(node["split_feature"], []).append(node["threshold"])
            walk(node["left_child"]); walk(node["right_child"])
    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    rows = test_rows(X, thresholds, categorical)
    write(name, rows, booster.predict(rows, raw_score=True), booster.predict(rows, pred_contrib=True))


def xgboost_fixture(name, params, categorical=()):
    X, y = data()
    types = ["c" if f in categorical else "q" for f in range(X.shape[1])]
    d = xgb.DMatrix(X, y, feature_names=NAMES, feature_types=types, enable_categorical=bool(categorical))
    booster = xgb.train(dict(objective="reg:squarederror", max_depth=4, eta=0.3, seed=1, nthread=1,
                             tree_method="hist", **params), d, 20)
    path = os.path.join(OUT, name + ".json")
    booster.save_model(path)
    booster = xgb.Booster(model_file=path)
    thresholds = {}
    for _, node in booster.trees_to_dataframe().iterrows():
        if node["Feature"] != "Leaf" and not (isinstance(node["Split"], float) and math.isnan(node["Split"])):
            thresholds.setdefault(NAMES.index(node["Feature"]), []).append(float(node["Split"]))
    rows = test_rows(X, thresholds, categorical)
    rows = rows[~np.isinf(rows).any(axis=1)]  # XGBoost refuses infinities unless they mean missing
    if categorical:  # XGBoost refuses negative categories at prediction time
        for f in categorical:
            rows = rows[~(rows[:, f] < 0)]
    raw = booster.inplace_predict(rows, predict_type="margin")
    dm = xgb.DMatrix(rows, feature_names=NAMES, feature_types=types, enable_categorical=bool(categorical))
    write(name, rows, raw.astype(np.float32), booster.predict(dm, pred_contribs=True))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    lightgbm_fixture("lightgbm-numeric", {})
    lightgbm_fixture("lightgbm-zero-missing", dict(zero_as_missing=True))
    lightgbm_fixture("lightgbm-categorical", dict(cat_smooth=1, min_data_per_group=5, max_cat_to_onehot=2), categorical=(1,))
    xgboost_fixture("xgboost-numeric", {})
    xgboost_fixture("xgboost-categorical", dict(max_cat_to_onehot=1), categorical=(1,))
    print("wrote", sorted(os.listdir(OUT)))
