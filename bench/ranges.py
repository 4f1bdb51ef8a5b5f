#!/usr/bin/env python3
"""Price-range benchmark: coverage per price decile and per grade level, before vs after.

Trains `loupe train` with its defaults on the training part of bench/train.py's fixed 80/20
split of the cleaned bundled data, and measures with `loupe evaluate --json` on its test part:
the 90% ranges' coverage overall, per decile of the actual price and per cut, color and
clarity level, and their median relative width. With --before, a second binary (e.g. a build
of the previous commit) trains on the same split and its model is measured side by side. The bar (issue 25):
every decile and grade level within 88-92%, median width no wider than before.

Usage: bench/ranges.py [--loupe PATH] [--before PATH] [--seeds 42,1,7]
       (builds Loupe in release mode unless --loupe)
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train as bench  # the split, the venv and the paths are train.py's

BAND = (88.0, 92.0)


def measure(trainer, evaluator, train_csv, test_csv, seed, tag):
    """Trains with `trainer`'s defaults (and `seed`); returns `evaluator evaluate --json`'s report.

    The evaluator is always the newest binary: it reads older model files and serves their
    ranges as their own build did, and it reports the grade levels older builds did not."""
    model = os.path.join(bench.OUT, f"ranges-{tag}-{seed}.loupe")
    subprocess.run([trainer, "train", "--store", os.path.join(bench.OUT, f"ranges-store-{tag}"), "--data", train_csv,
                    "--out", model, "--seed", str(seed), "--quiet"], stdout=subprocess.DEVNULL, check=True)
    out = subprocess.run([evaluator, "evaluate", model, test_csv, "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def groups(report):
    """(name, rows, coverage %, width %) for every decile and grade level of a report."""
    rows = [(f"decile {d['decile']}", d["metrics"]["rows"], 100 * d["ranges"]["coverage"],
             100 * d["ranges"]["medianRelativeWidth"]) for d in report["deciles"]]
    for g in report.get("grades") or []:
        rows.append((f"{g['grade']} {g['level']}", g["metrics"]["rows"], 100 * g["ranges"]["coverage"],
                     100 * g["ranges"]["medianRelativeWidth"]))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loupe", help="the loupe binary to measure (default: build this tree in release mode)")
    ap.add_argument("--before", help="another loupe binary to measure on the same split, e.g. the previous build")
    ap.add_argument("--seeds", default="42", help="training seeds, comma-separated (42 is the default)")
    args = ap.parse_args()
    bench.ensure_venv()
    os.makedirs(bench.OUT, exist_ok=True)
    loupe = args.loupe
    if not loupe:
        subprocess.run(["swift", "build", "-c", "release", "--product", "loupe"], cwd=bench.ROOT, check=True)
        loupe = os.path.join(bench.ROOT, ".build", "release", "loupe")
    train_csv, test_csv = bench.prepare_split(loupe)
    binaries = ([("before", args.before)] if args.before else []) + [("after", loupe)]

    for seed in [int(s) for s in args.seeds.split(",")]:
        reports = {tag: measure(path, loupe, train_csv, test_csv, seed, tag) for tag, path in binaries}
        print(f"\nseed {seed}: 90% ranges on {reports['after']['metrics']['rows']} test rows")
        print(f"{'':22}" + "".join(f"{tag:>22}" for tag, _ in binaries))
        line = f"{'all rows':22}"
        for tag, _ in binaries:
            r = reports[tag]
            line += f"{100 * r['ranges']['coverage']:>9.1f}% w {100 * r['ranges']['medianRelativeWidth']:>5.1f}%"
            line += f" ${r['metrics']['rmse']:>6.1f}"
        print(line + "   (coverage, median width, RMSE)")
        # Levels absent from the test rows (none on this split) are left out by evaluate.
        by_tag = {tag: {name: (n, c, w) for name, n, c, w in groups(reports[tag])} for tag, _ in binaries}
        names = [name for name, *_ in groups(reports["after"])]
        for name in names:
            line = f"{name:16}{by_tag['after'][name][0]:>6}"
            for tag, _ in binaries:
                n, c, w = by_tag[tag].get(name, (0, float("nan"), float("nan")))
                mark = " " if BAND[0] <= c <= BAND[1] else "*"
                line += f"{c:>10.1f}%{mark} w {w:>5.1f}%"
            print(line)
        for tag, _ in binaries:
            outside = [name for name in names if not BAND[0] <= by_tag[tag][name][1] <= BAND[1]]
            print(f"{tag}: {len(outside)} of {len(names)} groups outside {BAND[0]:.0f}-{BAND[1]:.0f}%"
                  + (f" ({', '.join(outside)})" if outside else ""))


if __name__ == "__main__":
    main()
