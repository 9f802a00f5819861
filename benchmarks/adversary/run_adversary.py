"""Robust accuracy UPPER bounds of kNN over learned metrics from the independent attacks.

For each data set, 5 random stratified 50/50 splits, two learners (NT-ML,
``RobustMetricLearner(alpha=0)``, and certified training, ``alpha=0, robust_eps=0.05``), 1-NN
and 3-NN, eps in {0.025, 0.05, 0.1}:
every attack of ``independent_attacks.ATTACKS`` runs on a random subsample of each split's
test points, and a point counts as broken when the attack returns a point inside the
budget and the box that ``pipeline.predict`` gets wrong (clean errors count as broken).
The union breaks a point when any attack does. Robust accuracy from attacks is an upper
bound; for 1-NN the LP attack is exact (up to solver tolerance), so there it is the value.

Another attack plugs in as ``--other module:function`` (a callable
``attack(pipeline, X, y, eps, feature_range) -> X_adv``, importable from the current
directory or the repository root); it is scored the same way and compared point by point.

Run from the repository root::

    PYTHONPATH=$PWD python benchmarks/adversary/run_adversary.py [--n-test 12] [--n-jobs 2]
        [--other mypkg.mymodule:my_attack]

Writes ``benchmarks/results/adversary_points.csv`` (one row per point and setting),
``adversary_summary.csv`` and ``adversary_summary.md``.
"""

import argparse
import csv
import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn import datasets as skd
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from independent_attacks import ATTACKS, is_broken  # noqa: E402

from skrobust import RobustMetricLearner  # noqa: E402
from skrobust.datasets import load_breast_cancer, load_digits, load_wine  # noqa: E402

RESULTS = HERE.parent / "results"
EPSILONS = (0.025, 0.05, 0.1)
KS = (1, 3)
SEEDS = range(5)
MODELS = {
    "NT-ML": lambda: RobustMetricLearner(alpha=0.0),
    "robust_eps=0.05": lambda: RobustMetricLearner(alpha=0.0, robust_eps=0.05),
}
FEATURE_RANGE = (0.0, 1.0)


def _make_classification():
    # Overlapping classes: few informative features, small separation, 5% label noise.
    return skd.make_classification(
        n_samples=400,
        n_features=10,
        n_informative=4,
        n_redundant=2,
        class_sep=0.7,
        flip_y=0.05,
        random_state=0,
    )


def _diabetes():
    X, t = skd.load_diabetes(return_X_y=True)
    return X, (t > np.median(t)).astype(np.int64)


# name -> (loader, already in the box?). The bundled sets come scaled over the whole data
# set (the paper's convention); the raw ones are min-max scaled on the training half.
DATASETS = {
    "breast_cancer": (load_breast_cancer, True),
    "wine": (load_wine, True),
    "digits89": (lambda: load_digits(classes=(8, 9)), True),
    "make_classification": (_make_classification, False),
    "diabetes>median": (_diabetes, False),
}


def split(name, seed, n_test):
    loader, in_box = DATASETS[name]
    X, y = loader()
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.5, stratify=y, random_state=seed)
    Xtr, Xte = X[tr], X[te]
    n_clipped = 0
    if not in_box:
        scaler = MinMaxScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        # Test points outside the training range are clipped into the box (counted and
        # reported): the threat model needs x inside [0, 1]^d.
        n_clipped = int(np.sum((Xte < 0) | (Xte > 1)))
        Xte = np.clip(Xte, 0.0, 1.0)
    rng = np.random.RandomState(1000 + seed)
    pick = np.sort(rng.choice(len(te), size=min(n_test, len(te)), replace=False))
    return Xtr, y[tr], Xte[pick], y[te][pick], te[pick], n_clipped


def run_split(name, seed, n_test, attacks):
    rows = []
    with threadpool_limits(1):
        Xtr, ytr, Xte, yte, te_idx, n_clipped = split(name, seed, n_test)
        for model_name, make in MODELS.items():
            learner = make().fit(Xtr, ytr)
            for k in KS:
                pipe = Pipeline(
                    [("metric", FrozenEstimator(learner)), ("knn", KNeighborsClassifier(k))]
                ).fit(Xtr, ytr)
                clean = pipe.predict(Xte) == yte
                for eps in EPSILONS:
                    broken, seconds = {}, {}
                    for att_name, attack in attacks.items():
                        t0 = time.perf_counter()
                        X_adv = attack(pipe, Xte, yte, eps, FEATURE_RANGE)
                        seconds[att_name] = time.perf_counter() - t0
                        broken[att_name] = is_broken(pipe, Xte, yte, X_adv, eps, FEATURE_RANGE)
                    for j in range(len(yte)):
                        row = {
                            "set": name,
                            "split": seed,
                            "model": model_name,
                            "k": k,
                            "eps": eps,
                            "point": int(te_idx[j]),
                            "clean_correct": bool(clean[j]),
                            "n_clipped_split": n_clipped,
                        }
                        for att_name in attacks:
                            row[f"broken_{att_name}"] = bool(broken[att_name][j])
                            row[f"seconds_{att_name}"] = seconds[att_name] / len(yte)
                        rows.append(row)
    return rows


def _col(rows, name):
    return np.array([r[name] for r in rows])


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in r.items()})


def summarise(points, attack_names, mine):
    keys = ("set", "model", "k", "eps")
    groups = {}
    for r in points:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, g in groups.items():
        row = dict(zip(keys, key, strict=True))
        row["n_points"] = len(g)
        row["clean_acc"] = float(_col(g, "clean_correct").mean())
        broken = {a: _col(g, f"broken_{a}") for a in attack_names}
        union = np.any([broken[a] for a in mine], axis=0)
        for a in attack_names:
            row[f"ub_{a}"] = float(1.0 - broken[a].mean())
        row["ub_union"] = float(1.0 - union.mean())
        for a in mine:
            others = np.any([broken[b] for b in mine if b != a], axis=0)
            # Points only this attack broke among mine.
            row[f"only_{a}"] = int((broken[a] & ~others).sum())
        for a in attack_names:
            row[f"ms_{a}"] = float(1000.0 * _col(g, f"seconds_{a}").mean())
        out.append(row)
    return out


def to_markdown(summary, attack_names):
    cols = ["set", "model", "k", "eps", "n_points", "clean_acc"]
    cols += [f"ub_{a}" for a in attack_names] + ["ub_union"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in summary:
        cells = [
            f"{r[c]:.3f}" if isinstance(r[c], float) and c != "eps" else str(r[c]) for c in cols
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_other(spec):
    module, _, func = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    return getattr(importlib.import_module(module), func)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=12, help="test points per split")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--sets", nargs="*", default=list(DATASETS))
    parser.add_argument("--other", default=None, help="module:function of another attack")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument("--splits", type=int, default=len(SEEDS), help="splits per data set")
    args = parser.parse_args(argv)
    attacks = dict(ATTACKS)
    if args.other:
        attacks["other"] = load_other(args.other)
    start = time.perf_counter()
    seeds = SEEDS[: args.splits]
    jobs = [(name, seed) for name in args.sets for seed in seeds]
    results = Parallel(n_jobs=args.n_jobs)(
        delayed(run_split)(name, seed, args.n_test, attacks) for name, seed in jobs
    )
    wall = time.perf_counter() - start
    points = [row for rows in results for row in rows]
    names = list(attacks)
    summary = summarise(points, names, list(ATTACKS))
    RESULTS.mkdir(exist_ok=True)
    tag = f"_{args.tag}" if args.tag else ""
    write_csv(RESULTS / f"adversary_points{tag}.csv", points)
    write_csv(RESULTS / f"adversary_summary{tag}.csv", summary)
    table = to_markdown(summary, names)
    total = {a: int(_col(points, f"broken_{a}").sum()) for a in names}
    only = {a: int(sum(r[f"only_{a}"] for r in summary)) for a in ATTACKS}
    ms = {a: round(float(_col(points, f"seconds_{a}").mean()) * 1000, 1) for a in names}
    note = (
        f"Robust accuracy UPPER bounds (attacks), {args.n_test} random test points per split, "
        f"{len(seeds)} splits, box {FEATURE_RANGE}. Wall time {wall:.0f} s on "
        f"{args.n_jobs} workers; load average at the end {os.getloadavg()[0]:.1f}.\n\n"
        f"Broken point-settings per attack (clean errors included): {total}\n\n"
        f"Broken only by this attack among mine: {only}\n\n"
        f"Mean ms per point: {ms}\n\n"
    )
    (RESULTS / f"adversary_summary{tag}.md").write_text(note + table + "\n")
    print(note + table)
    if args.other:
        union = np.any([_col(points, f"broken_{a}") for a in ATTACKS], axis=0)
        theirs = _col(points, "broken_other")
        ident = ("set", "split", "model", "k", "eps", "point")
        for title, mask in (
            ("Mine broke, other did not", union & ~theirs),
            ("Other broke, mine did not", theirs & ~union),
        ):
            print(f"\n{title}: {int(mask.sum())} point-settings")
            for j in np.flatnonzero(mask):
                print("  " + "  ".join(f"{k}={points[j][k]}" for k in ident))


if __name__ == "__main__":
    main()
