"""Table 3 of Huai et al. (2022), redone: every defence's strength tuned on the training half.

For each data set and each of ``--splits`` random stratified half/half splits (seeds 100
and up), six metrics are trained for a 3-NN with the table 5 settings (learning rate 0.01,
500 iterations): NT-ML (no defence), Spe-ML and Fro-ML, the paper's eigenvalue defence
(``eig_k=3``), and skrobust's certified training on the triangle bound and on the pairwise
margin. The strength of each defence is **chosen on the training half only**, separately
for each budget eps: ``GridSearchCV`` over its starting grid
(:data:`skrobust.model_selection.DEFENCE_GRIDS`) with ``--folds`` stratified folds, scored
clean and under the strong attack at that eps, and the refit rule
:func:`skrobust.model_selection.most_robust_within` (the most robust strength whose clean CV
accuracy is within 2 points of the best). The chosen model is refitted on the training half
and measured on the test half at that eps:

- clean 3-NN accuracy;
- under the paper's kNN attack (eq. 23: 20 steps of 0.01, M = 10) and under the strong attack
  (:class:`skrobust.CascadeKNNAttack`, every member; the minimum of both is reported): upper
  bounds on the true robust accuracy;
- certified accuracy, interval and pairwise (:func:`skrobust.certificates.certify_knn`):
  lower bounds.

Means and standard errors over the splits; the chosen strengths are counted per cell. Data:
the three bundled sets (scaled to [0, 1] by ``skrobust.datasets``) and, with ``--sets``, the
two extra binary sets of ``knn_attack_strength.py`` (``make_classification`` with overlapping
classes, ``load_diabetes`` thresholded at its median), scaled to [0, 1] the same way.

Run: ``python benchmarks/reproduce_table3.py [--splits 10] [--folds 3] [--sets ...] [--tag T]
[--n-jobs 2] [--csv PATH]``. Writes ``benchmarks/results/table3<_T>.csv``, ``.md`` (the
table, the chosen strengths and the goals at eps 0.1), ``_curves.png`` (accuracy against eps)
and ``.log``.
"""

import argparse
import csv
import shlex
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _log import RESULTS, logged, relative
from joblib import Parallel, delayed
from sklearn import datasets as skdata
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import minmax_scale
from threadpoolctl import threadpool_limits

from skrobust import RobustMetricLearner, datasets
from skrobust._evaluation import (
    TUNED_DEFENCES,
    attacked_accuracy,
    certified_accuracy,
    choose_strengths,
    defence_grid,
    strength_label,
)

EPS = (0.025, 0.05, 0.1)
GOAL_EPS = 0.1
MODELS = ("NT-ML", *TUNED_DEFENCES)
COLUMNS = ("clean", "paper attack", "strong attack", "certified interval", "certified pairwise")


def _extra(loader, threshold_median=False):
    def load():
        X, y = loader()
        if threshold_median:
            y = (y > np.median(y)).astype(int)
        return minmax_scale(X), y

    return load


DATASETS = {
    "breast_cancer": datasets.load_breast_cancer,
    "digits 8v9": lambda: datasets.load_digits(classes=(8, 9)),
    "wine 0-vs-rest": datasets.load_wine,
    "make_classification": _extra(
        lambda: skdata.make_classification(
            400, 10, n_informative=5, class_sep=0.6, flip_y=0.05, random_state=7
        )
    ),
    "diabetes > median": _extra(
        lambda: skdata.load_diabetes(return_X_y=True), threshold_median=True
    ),
}
BUNDLED = ("breast_cancer", "digits 8v9", "wine 0-vs-rest")


def _pipeline(seed, **params):
    return make_pipeline(RobustMetricLearner(random_state=seed, **params), KNeighborsClassifier(3))


def _measure(pipe, X, y, eps):
    paper = attacked_accuracy(pipe, X, y, eps, "paper")
    return {
        "clean": pipe.score(X, y),
        "paper attack": paper,
        "strong attack": min(paper, attacked_accuracy(pipe, X, y, eps, "strong")),
        "certified interval": certified_accuracy(pipe, X, y, eps, method="interval"),
        "certified pairwise": certified_accuracy(pipe, X, y, eps, method="pairwise"),
    }


def evaluate_split(data_name, X, y, seed, folds):
    """Rows ``(data set, seed, model, eps, chosen strength, columns...)`` of one split."""
    start = time.perf_counter()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=seed
    )
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        plain = _pipeline(seed, alpha=0.0).fit(X_train, y_train)
        for eps in EPS:
            rows.append((data_name, seed, "NT-ML", eps, "-", _measure(plain, X_test, y_test, eps)))
        for name in TUNED_DEFENCES:
            grid = defence_grid(name)
            chosen, _ = choose_strengths(
                _pipeline(seed), grid, X_train, y_train, EPS, folds=folds, seed=seed
            )
            fitted = {}
            for eps in EPS:
                params = chosen[eps]
                key = tuple(sorted(params.items()))
                if key not in fitted:
                    fitted[key] = _pipeline(seed, **params).fit(X_train, y_train)
                measured = _measure(fitted[key], X_test, y_test, eps)
                rows.append((data_name, seed, name, eps, strength_label(params), measured))
    return rows, time.perf_counter() - start


def summarise(rows):
    """Mean, standard error and chosen-strength counts per (data set, model, eps)."""
    cells = {}
    for data_name, _, model, eps, label, measured in rows:
        cell = cells.setdefault((data_name, model, eps), {"labels": [], "values": []})
        cell["labels"].append(label)
        cell["values"].append([measured[c] for c in COLUMNS])
    summary = []
    for (data_name, model, eps), cell in cells.items():
        values = np.array(cell["values"])
        n = len(values)
        se = values.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(COLUMNS))
        counts = Counter(cell["labels"])
        summary.append(
            {
                "dataset": data_name,
                "model": model,
                "eps": eps,
                "splits": n,
                "chosen": ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())),
                **{f"{c} mean": m for c, m in zip(COLUMNS, values.mean(axis=0), strict=True)},
                **{f"{c} se": e for c, e in zip(COLUMNS, se, strict=True)},
            }
        )
    return summary


def goals(summary):
    """Lines of the goal check at eps 0.1: per data set and defence, the gain over NT-ML
    under the strong attack (goal >= +10 points), the clean loss (goal <= 2 points) and the
    gap from attacked to certified pairwise accuracy (goal <= 5 points)."""
    lines = [
        f"Goals at eps {GOAL_EPS:g} (points of accuracy): gain under the strong attack over "
        "NT-ML >= +10, clean loss <= 2, strong attack minus certified pairwise <= 5.",
        "",
        "| data set | defence | gain under attack | clean loss | attacked - certified | "
        "all three met |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["dataset"], r["model"]): r for r in summary if r["eps"] == GOAL_EPS}
    for data_name in dict.fromkeys(r["dataset"] for r in summary):
        base = by[(data_name, "NT-ML")]
        for model in TUNED_DEFENCES:
            r = by[(data_name, model)]
            gain = 100 * (r["strong attack mean"] - base["strong attack mean"])
            loss = 100 * (base["clean mean"] - r["clean mean"])
            gap = 100 * (r["strong attack mean"] - r["certified pairwise mean"])
            met = "yes" if gain >= 10 and loss <= 2 and gap <= 5 else "no"
            lines.append(
                f"| {data_name} | {model} | {gain:+.1f} | {loss:+.1f} | {gap:.1f} | {met} |"
            )
    return lines


def write(summary, stem, header):
    with open(RESULTS / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    lines = [
        header,
        "",
        "3-NN accuracy on the test halves, mean ± standard error over the splits. Attacked "
        "accuracy is an upper bound on the true robust accuracy, certified accuracy a lower "
        "bound. `chosen`: the strength the inner GridSearchCV picked, with its count over "
        "the splits.",
        "",
        "| data set | model | eps | chosen | " + " | ".join(COLUMNS) + " |",
        "|---|---|---|---|" + "---|" * len(COLUMNS),
    ]
    for r in summary:
        cells = " | ".join(f"{r[c + ' mean']:.3f} ± {r[c + ' se']:.3f}" for c in COLUMNS)
        lines.append(f"| {r['dataset']} | {r['model']} | {r['eps']:g} | {r['chosen']} | {cells} |")
    lines += ["", *goals(summary)]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(summary, RESULTS / f"{stem}_curves.png")


def _plot(summary, path):
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(r["dataset"] for r in summary))
    fig = Figure(figsize=(4.5 * len(names), 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, data_name in zip(axes, names, strict=True):
        for k, model in enumerate(MODELS):
            sub = sorted(
                (r for r in summary if r["dataset"] == data_name and r["model"] == model),
                key=lambda r: r["eps"],
            )
            eps = [r["eps"] for r in sub]
            ax.plot(eps, [r["strong attack mean"] for r in sub], "-o", color=f"C{k}",
                    label=f"{model}: strong attack")  # fmt: skip
            ax.plot(eps, [r["certified pairwise mean"] for r in sub], ":s", color=f"C{k}",
                    label=f"{model}: certified")  # fmt: skip
        ax.set_title(data_name)
        ax.set_xlabel("eps (L-infinity, features in [0, 1])")
        ax.set_ylabel("3-NN accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6, loc="lower left")
    fig.suptitle(
        "solid: under the strong attack (upper bound); dotted: certified pairwise (lower bound)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=10, help="random splits (default 10)")
    parser.add_argument("--folds", type=int, default=3, help="inner CV folds (default 3)")
    parser.add_argument("--sets", nargs="*", choices=list(DATASETS), default=list(BUNDLED))
    parser.add_argument("--csv", help="a CSV file (features, last column the label) instead")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument("--n-jobs", type=int, default=1, help="splits run in parallel")
    args = parser.parse_args()
    if args.csv:
        sets = {Path(args.csv).stem: lambda: datasets.load_csv(args.csv)}
    else:
        sets = {name: DATASETS[name] for name in args.sets}
    stem = "table3" + (f"_{args.tag}" if args.tag else "")
    with logged(stem):
        print(f"{args.splits} splits (seeds 100+), {args.folds} inner folds, eps {EPS}")
        loaded = {name: load() for name, load in sets.items()}
        tasks = [
            delayed(evaluate_split)(name, X, y, 100 + k, args.folds)
            for name, (X, y) in loaded.items()
            for k in range(args.splits)
        ]
        rows = []
        for split_rows, seconds in Parallel(n_jobs=args.n_jobs, return_as="generator")(tasks):
            data_name, seed = split_rows[0][:2]
            print(f"  {data_name}, seed {seed}: {seconds:.0f} s", flush=True)
            rows += split_rows
        names = " ".join(map(shlex.quote, sets))
        header = (
            f"# Table 3, strengths tuned on the training half ({args.splits} splits, "
            f"{args.folds} inner folds)\n\nWritten by `python benchmarks/reproduce_table3.py "
            f"--splits {args.splits} --folds {args.folds} --sets {names}`."
        )
        write(summarise(rows), stem, header)
        print(f"\nsaved {relative(RESULTS / stem)}.csv, .md, _curves.png and .log")


if __name__ == "__main__":
    main()
