"""``python -m skrobust``: the robustness report of a kNN over a learned metric.

Trains an undefended metric (NT-ML) and defences (by default the paper's eigenvalue defence
and skrobust's certified training on the pairwise margin) on half of a bundled data set (or a
CSV file), each defence's strength chosen on that training half by ``GridSearchCV`` with the
strong robust scorer and :func:`~skrobust.model_selection.most_robust_within`; attacks a 3-NN
over each on the other half over a grid of budgets, computes certified accuracy, prints one
table and writes one figure.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from . import datasets
from ._evaluation import (
    attacked_accuracy,
    certified_accuracy,
    choose_strengths,
    defence_grid,
    strength_label,
)
from ._learner import RobustMetricLearner
from .model_selection import DEFENCE_GRIDS

DATASETS = {
    "breast_cancer": datasets.load_breast_cancer,
    "digits89": lambda: datasets.load_digits(classes=(8, 9)),
    "wine": datasets.load_wine,
}

# The report's name of each defence of DEFENCE_GRIDS.
DEFENCE_NAMES = {
    "eig": "paper: eig k=3",
    "spectral": "Spe-ML",
    "frobenius": "Fro-ML",
    "triangle": "certified (triangle)",
    "pairwise": "certified (pairwise)",
}
UNDEFENDED = "NT-ML (undefended)"


def _eps_list(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if not values or any(not np.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"budgets must be finite and >= 0: {text!r}")
    return sorted(set(values))


def _defence_list(text):
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in DEFENCE_GRIDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown defence(s) {unknown or text!r}; choose from {', '.join(DEFENCE_GRIDS)}"
        )
    return list(dict.fromkeys(names))


def _strengths(name):
    grid = DEFENCE_GRIDS[name]
    return ",".join(f"{v:g}" for v in grid["robust_eps" if "robust_eps" in grid else "alpha"])


def _grid_item(text):
    name, _, values = text.partition("=")
    name = name.strip()
    if name not in DEFENCE_GRIDS:
        raise argparse.ArgumentTypeError(
            f"--grid {text!r}: unknown defence {name!r}; choose from {', '.join(DEFENCE_GRIDS)}"
        )
    try:
        strengths = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        strengths = []
    if not strengths or any(not np.isfinite(v) or v < 0 for v in strengths):
        raise argparse.ArgumentTypeError(
            f"--grid {text!r}: expected NAME=V1,V2,... with finite strengths >= 0"
        )
    return name, strengths


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m skrobust",
        description=(
            "Robustness report: train an undefended metric (NT-ML) and defences (by default "
            "the paper's eigenvalue defence and skrobust's certified training on the pairwise "
            "margin) on half of a data set scaled to [0, 1], each defence's strength chosen on "
            "that half by cross-validation (--folds, --grid, --tune-eps); on the other half, "
            "measure the 3-NN accuracy clean, under the paper's "
            "kNN attack (eq. 23: 20 steps of 0.01), under the strong attack (CascadeKNNAttack: "
            "eq. 23, targeted line search, margin PGD with restarts, max-margin LPs) and "
            "certified (no perturbation within eps can flip the vote), for each eps of a "
            "grid. Prints one table and writes one figure."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default="breast_cancer",
        help="bundled data set (default: %(default)s)",
    )
    source.add_argument(
        "--csv",
        metavar="PATH",
        help="a CSV file instead: one point per row, features then the label in the last "
        "column; features are scaled to [0, 1]",
    )
    parser.add_argument(
        "--csv-header",
        action="store_true",
        help="the CSV file's first row is a header (column names): skip it",
    )
    parser.add_argument(
        "--eps",
        type=_eps_list,
        default=_eps_list("0,0.025,0.05,0.075,0.1,0.15"),
        help="comma-separated L-infinity budgets (default: 0,0.025,0.05,0.075,0.1,0.15)",
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        default=500,
        help="training steps of each learner (default: %(default)s, the paper's)",
    )
    parser.add_argument(
        "--defences",
        type=_defence_list,
        default=_defence_list("eig,pairwise"),
        metavar="NAMES",
        help="comma-separated defences to train beside NT-ML, from "
        f"{','.join(DEFENCE_GRIDS)} (default: eig,pairwise)",
    )
    parser.add_argument(
        "--grid",
        action="append",
        type=_grid_item,
        default=[],
        metavar="NAME=V1,V2,...",
        help="the strengths tried for one defence (alpha, or robust_eps for triangle and "
        "pairwise), replacing its starting grid; repeat for several defences (default: "
        + "; ".join(f"{n}={_strengths(n)}" for n in DEFENCE_GRIDS)
        + ")",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=3,
        help="cross-validation folds on the training half that choose each defence's "
        "strength (default: %(default)s)",
    )
    parser.add_argument(
        "--tune-eps",
        type=float,
        default=0.1,
        help="the budget whose robust accuracy the strength is chosen for: the most robust "
        "strength under the strong attack at this eps whose clean CV accuracy is within 2 "
        "points of the best (default: %(default)s)",
    )
    parser.add_argument(
        "--no-strong",
        action="store_true",
        help="skip the strong attack in the table (faster; the paper's attack is run there; "
        "the strengths are still chosen under the strong attack)",
    )
    parser.add_argument(
        "--output",
        default="skrobust_report.png",
        metavar="PNG",
        help="where to write the figure, in a format matplotlib writes (.png, .pdf, .svg, "
        "...), in an existing folder; checked before any work (default: %(default)s)",
    )
    parser.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed of the train/test split and the learners (default: %(default)s)",
    )
    return parser


def _check_output(path):
    """Why the figure cannot be written to ``path``, or ``None``: checked before the work."""
    from matplotlib.figure import Figure

    path = Path(path)
    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix[1:].lower()
    if suffix and suffix not in formats:
        return f"cannot write a figure as .{suffix}; use one of {', '.join(sorted(formats))}"
    if path.is_dir():
        return f"{path} is a folder, not a file name"
    folder = path.parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"cannot write to {path} (permission denied)"
    return None


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.max_iter < 1:
        parser.error("--max-iter must be >= 1")
    if args.folds < 2:
        parser.error("--folds must be >= 2")
    if not np.isfinite(args.tune_eps) or args.tune_eps <= 0:
        parser.error("--tune-eps must be a finite number > 0")
    overrides = dict(args.grid)
    problem = _check_output(args.output)
    if problem is not None:
        parser.exit(2, f"python -m skrobust: error: --output: {problem}.\n")
    if args.csv:
        try:
            X, y = datasets.load_csv(args.csv, header=args.csv_header)
        except (OSError, ValueError) as exc:
            parser.exit(2, f"python -m skrobust: error: cannot read --csv: {exc}\n")
        name = Path(args.csv).name
    else:
        X, y = DATASETS[args.dataset]()
        name = args.dataset
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        parser.exit(2, "python -m skrobust: error: every class needs at least two points.\n")
    if counts.min() // 2 < args.folds:
        parser.exit(
            2,
            f"python -m skrobust: error: --folds {args.folds}: the smallest class has "
            f"{counts.min() // 2} points in the training half, fewer than the folds.\n",
        )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=args.random_state
    )
    print(
        f"skrobust robustness report: {name}, {X.shape[0]} points x {X.shape[1]} features "
        f"scaled to [0, 1]; {len(X_train)} train the metric and the 3-NN, {len(X_test)} test."
    )
    models = {UNDEFENDED: {"alpha": 0.0}}
    if args.defences:
        print(
            f"\nEach defence's strength is chosen on the training half: {args.folds}-fold "
            f"GridSearchCV, the most robust strength under the strong attack at eps="
            f"{args.tune_eps:g} whose clean CV accuracy is within 2 points of the best."
        )
    for defence in args.defences:
        start = time.perf_counter()
        grid = defence_grid(defence, overrides)
        _progress(f"[skrobust] choosing the strength of {DEFENCE_NAMES[defence]} ...")
        pipe = make_pipeline(
            RobustMetricLearner(max_iter=args.max_iter, random_state=args.random_state),
            KNeighborsClassifier(3),
        )
        chosen, search = choose_strengths(
            pipe, grid, X_train, y_train, [args.tune_eps], folds=args.folds,
            seed=args.random_state,
        )  # fmt: skip
        params = chosen[args.tune_eps]
        results = search.cv_results_
        cells = []
        for k, candidate in enumerate(results["params"]):
            label = strength_label({key.split("__", 1)[1]: v for key, v in candidate.items()})
            cells.append(
                f"{label} (clean {results['mean_test_clean'][k]:.3f}, attacked "
                f"{results[f'mean_test_strong@{args.tune_eps:g}'][k]:.3f})"
            )
        print(
            f"  {DEFENCE_NAMES[defence]}: chose {strength_label(params)} from "
            + "; ".join(cells)
            + f" [{time.perf_counter() - start:.0f} s]"
        )
        models[f"{DEFENCE_NAMES[defence]}, {strength_label(params)}"] = params
    table, spectrum = {}, {}
    for model_name, params in models.items():
        start = time.perf_counter()
        _progress(f"[skrobust] training {model_name} ...")
        pipe = make_pipeline(
            RobustMetricLearner(max_iter=args.max_iter, random_state=args.random_state, **params),
            KNeighborsClassifier(3),
        ).fit(X_train, y_train)
        rows = []
        for eps in args.eps:
            _progress(f"[skrobust]   {model_name}: attacking and certifying at eps={eps:g}")
            paper = attacked_accuracy(pipe, X_test, y_test, eps, "paper")
            strong = (
                np.nan
                if args.no_strong
                else min(paper, attacked_accuracy(pipe, X_test, y_test, eps, "strong"))
            )
            rows.append((eps, paper, strong, certified_accuracy(pipe, X_test, y_test, eps)))
        # A perturbation within a smaller eps is within every larger one, so the accuracy an
        # attack leaves at a smaller eps also bounds the true robust accuracy at larger ones.
        eps, paper, strong, certified = (np.array(v) for v in zip(*rows, strict=True))
        paper, strong = np.minimum.accumulate(paper), np.fmin.accumulate(strong)
        rows = list(zip(eps, paper, strong, certified, strict=True))
        table[model_name] = (pipe.score(X_test, y_test), rows)
        spectrum[model_name] = np.linalg.eigvalsh(pipe[0].get_mahalanobis_matrix())[::-1]
        _progress(f"[skrobust]   {model_name} done in {time.perf_counter() - start:.1f} s")

    width = max(22, *(len(m) + 2 for m in table))
    header = f"{'model':<{width}}{'clean':>7}{'eps':>7}{'paper attack':>14}{'strong attack':>15}"
    print("\n3-NN accuracy on the test half (attacked accuracy is an upper bound on the true")
    print("robust accuracy, certified accuracy a lower bound: the truth lies between them)\n")
    print(header + f"{'certified':>11}  (pairwise certificate)")
    for model_name, (clean, rows) in table.items():
        for k, (eps, paper, strong, certified) in enumerate(rows):
            label = model_name if k == 0 else ""
            clean_cell = f"{clean:.3f}" if k == 0 else ""
            strong_cell = "-" if np.isnan(strong) else f"{strong:.3f}"
            print(
                f"{label:<{width}}{clean_cell:>7}{eps:>7g}{paper:>14.3f}{strong_cell:>15}"
                f"{certified:>11.3f}"
            )
    k = min(3, X.shape[1])
    print(f"\nTop-{k} eigenvalues of M = W^T W (what the paper's defence penalises):")
    for model_name, values in spectrum.items():
        print(f"  {model_name:<{width}}" + "  ".join(f"{v:.4g}" for v in values[:k]))
    _plot(table, name, args.output)
    print(f"\nfigure: {args.output}")
    return 0


def _plot(table, name, path):
    # A Figure of its own, not pyplot: a caller's backend and figures stay untouched.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for k, (model_name, (_, rows)) in enumerate(table.items()):
        eps, paper, strong, certified = (np.array(v) for v in zip(*rows, strict=True))
        color = f"C{k}"
        attacked = paper if np.all(np.isnan(strong)) else strong
        ax.plot(eps, attacked, "-o", color=color, label=f"{model_name}: under attack")
        ax.plot(eps, certified, "--s", color=color, label=f"{model_name}: certified")
    ax.set_xlabel("eps (L-infinity budget, features in [0, 1])")
    ax.set_ylabel("3-NN accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"skrobust robustness report: {name}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
