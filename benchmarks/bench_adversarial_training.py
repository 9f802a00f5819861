"""Adversarial-training defences beside NT-ML, the paper's defence and certified training.

RML (:class:`~skrobust.AdversarialHeadLearner`), TLA (:class:`~skrobust.AdversarialAnchorLearner`)
and adversarial metric training (:class:`~skrobust.AdversarialBatchLearner`), linear and
ReLU network, beside NT-ML, the paper's eigenvalue defence and certified training (triangle
and pairwise; linear only), on ``load_digits`` (pixels / 16, in ``[0, 1]``) under two
protocols:

- **unseen classes** (RML's protocol): train on the digits 0-4, test on 5-9. Retrieval:
  every test point queries all the other test points. 3-NN: the references are every
  second test point, the queries the others.
- **all classes**: a stratified half/half split of the samples (seed 0). Retrieval: every
  test point queries the other test points. 3-NN: the references are the training half.

Columns (``eps = 0.05``, L-infinity, box ``[0, 1]``): Recall@1, @2, @4 and NMI, natural and
under PGD-5 on the retrieval loss (``skrobust.retrieval``: step ``2.5 eps / 5``; only queries
move; an **upper** bound on the recall under the worst attack); clean 3-NN accuracy, 3-NN
accuracy under the strong attack (:class:`~skrobust.CascadeKNNAttack`; an **upper** bound on
the robust accuracy) and certified 3-NN accuracy (a **lower** bound: the pairwise certificate
for linear metrics, the interval certificate, IBP and Lipschitz, for networks); training
time of the final fit. The Euclidean distance on the raw pixels (no training) is the
reference row.

Each defence's strength is chosen by 3-fold cross-validation on the training data only,
with :func:`skrobust.model_selection.most_robust_within` (the most robust candidate by
PGD-5 Recall@1 among those within 2 points of the best natural Recall@1 of the folds).

Fewer iterations than the defaults, to run in minutes on a shared 2-core machine: the
linear learners (:class:`~skrobust.RobustMetricLearner`) 200 steps instead of 500, the
mini-batch learners 15 epochs instead of 100 (batch 128, Adam 1e-3); embeddings of 32
dimensions, networks with one hidden layer of 64. All BLAS on one thread.

RML's cost claim (its slides: 1.2 h against 21.7 h of adversarial training) is checked as
the ratio of fit times with the same data, architecture, budget (``eps = 0.05``), epochs
and batches, the median of three runs: adversarial metric training and TLA against RML
(whose time includes fitting its starting embedding).

Run: ``python benchmarks/bench_adversarial_training.py``.
Writes ``benchmarks/results/adversarial_training.csv`` and ``adversarial_training.md``.
"""

import csv
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from skrobust import (
    AdversarialAnchorLearner,
    AdversarialBatchLearner,
    AdversarialHeadLearner,
    ReluMetricLearner,
    RobustMetricLearner,
)
from skrobust._evaluation import attacked_accuracy
from skrobust.certificates import certified_knn_accuracy
from skrobust.model_selection import most_robust_within
from skrobust.retrieval import make_retrieval_scorer, retrieval_scores
from skrobust.testing import FixedMetric

RESULTS = Path(__file__).parent / "results"
EPS = 0.05
BOX = (0.0, 1.0)
N_COMPONENTS = 32
HIDDEN = (64,)
LINEAR = {"n_components": N_COMPONENTS, "max_iter": 200}
MINIBATCH = {"n_components": N_COMPONENTS, "n_epochs": 15, "random_state": 0}
ADVERSARIAL = {**MINIBATCH, "feature_range": BOX}
BUDGETS = [0.025, 0.05, 0.1]
KS = (1, 2, 4)


def methods():
    """(name, architecture, estimator, grid of its strength or None)."""
    rows = [
        # The reference every learned metric is measured against: no training at all.
        ("Euclidean", "identity", FixedMetric(np.eye(64)), None),
        ("NT-ML", "linear", RobustMetricLearner(alpha=0.0, **LINEAR), None),
        (
            "paper's defence",
            "linear",
            RobustMetricLearner(eig_k=3, **LINEAR),
            {"alpha": [0.1, 1.0, 10.0]},
        ),
        (
            "certified (triangle)",
            "linear",
            RobustMetricLearner(alpha=0.0, **LINEAR),
            {"robust_eps": BUDGETS},
        ),
        (
            "certified (pairwise)",
            "linear",
            RobustMetricLearner(alpha=0.0, certificate="pairwise", **LINEAR),
            {"robust_eps": BUDGETS},
        ),
        ("NT-ML", "ReLU", ReluMetricLearner(HIDDEN, **MINIBATCH), None),
        (
            "paper's defence",
            "ReLU",
            ReluMetricLearner(HIDDEN, eig_k=3, **MINIBATCH),
            {"alpha": [0.1, 1.0, 10.0]},
        ),
    ]
    for arch, hidden in (("linear", ()), ("ReLU", HIDDEN)):
        for name, learner in (
            ("RML", AdversarialHeadLearner),
            ("TLA", AdversarialAnchorLearner),
            ("adversarial training", AdversarialBatchLearner),
        ):
            rows.append((name, arch, learner(hidden, **ADVERSARIAL), {"robust_eps": BUDGETS}))
    return rows


def protocols():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    seen = y < 5
    unseen = {
        "train": (X[seen], y[seen]),
        "test": (X[~seen], y[~seen]),
    }
    Xt, yt = unseen["test"]
    half = np.arange(len(Xt)) % 2 == 0
    unseen["references"] = (Xt[half], yt[half])
    unseen["queries"] = (Xt[~half], yt[~half])
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=0
    )
    everything = {
        "train": (X_train, y_train),
        "test": (X_test, y_test),
        "references": (X_train, y_train),
        "queries": (X_test, y_test),
    }
    return {"unseen classes (0-4 / 5-9)": unseen, "all classes (half / half)": everything}


def tune(estimator, grid, X, y):
    """The strength chosen by cross-validation on the training data; the refitted model."""
    if grid is None:
        start = time.perf_counter()
        model = clone(estimator).fit(X, y)
        return model, {}, time.perf_counter() - start
    search = GridSearchCV(
        estimator,
        grid,
        scoring={
            "clean": make_retrieval_scorer("recall@1"),
            "robust": make_retrieval_scorer("recall@1", eps=EPS, feature_range=BOX),
        },
        refit=most_robust_within(),
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    return search.best_estimator_, search.best_params_, search.refit_time_


def evaluate(model, arch, data):
    X, y = data["test"]
    row = {}
    for prefix, eps in (("", 0.0), ("attacked ", EPS)):
        scores = retrieval_scores(
            model, X, y, k=KS, eps=eps, feature_range=BOX if eps else None, random_state=0
        )
        row.update({f"{prefix}{k}": v for k, v in scores.items()})
    pipe = make_pipeline(FrozenEstimator(model), KNeighborsClassifier(3)).fit(*data["references"])
    Xq, yq = data["queries"]
    row["3-NN clean"] = float(pipe.score(Xq, yq))
    row["3-NN strong attack"] = attacked_accuracy(pipe, Xq, yq, EPS, feature_range=BOX)
    method = "interval" if arch == "ReLU" else "pairwise"
    row["3-NN certified"] = float(certified_knn_accuracy(pipe, Xq, yq, EPS, method=method))
    return row


def time_ratios(data):
    """Median fit times of RML, TLA and adversarial training at the same settings."""
    X, y = data["train"]
    rows = []
    for arch, hidden in (("linear", ()), ("ReLU", HIDDEN)):
        times = {}
        for name, learner in (
            ("RML", AdversarialHeadLearner),
            ("TLA", AdversarialAnchorLearner),
            ("adversarial training", AdversarialBatchLearner),
        ):
            runs = []
            for _ in range(3):
                start = time.perf_counter()
                learner(hidden, robust_eps=EPS, **ADVERSARIAL).fit(X, y)
                runs.append(time.perf_counter() - start)
            times[name] = statistics.median(runs)
        starting = RobustMetricLearner(alpha=0.0, n_components=N_COMPONENTS)
        if hidden:
            starting = ReluMetricLearner(hidden, **MINIBATCH)
        start = time.perf_counter()
        starting.fit(X, y)
        times["RML's starting embedding"] = time.perf_counter() - start
        rows.append((arch, times))
    return rows


COLUMNS = (
    [f"recall@{k}" for k in KS]
    + ["nmi"]
    + [f"attacked recall@{k}" for k in KS]
    + ["attacked nmi", "3-NN clean", "3-NN strong attack", "3-NN certified"]
)
SHORT = {
    **{f"recall@{k}": f"R@{k}" for k in KS},
    "nmi": "NMI",
    **{f"attacked recall@{k}": f"R@{k} att." for k in KS},
    "attacked nmi": "NMI att.",
    "3-NN clean": "3-NN",
    "3-NN strong attack": "3-NN strong",
    "3-NN certified": "3-NN cert.",
    "fit s": "fit s",
}


def winners(rows):
    """For each column, the trained rows with the best value (highest; lowest for time)."""
    trained = [r for r in rows if r["arch"] != "identity"]
    found = {}
    for column in [*COLUMNS, "fit s"]:
        values = [r[column] for r in trained]
        best = min(values) if column == "fit s" else max(values)
        found[column] = [f"{r['method']} ({r['arch']})" for r in trained if r[column] == best]
    return found


def reference_wins(rows):
    """The columns in which the untrained Euclidean row beats every trained row."""
    reference = next(r for r in rows if r["arch"] == "identity")
    trained = [r for r in rows if r["arch"] != "identity"]
    return [SHORT[c] for c in COLUMNS if reference[c] > max(r[c] for r in trained)]


def main():
    warnings.simplefilter("ignore", ConvergenceWarning)
    RESULTS.mkdir(exist_ok=True)
    load = os.getloadavg()
    started = time.perf_counter()
    all_rows, lines = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for protocol, data in protocols().items():
            print(f"== {protocol}", flush=True)
            rows = []
            for name, arch, estimator, grid in methods():
                model, params, fit_time = tune(estimator, grid, *data["train"])
                row = {"protocol": protocol, "method": name, "arch": arch}
                row["chosen"] = ", ".join(f"{k}={v}" for k, v in params.items()) or "-"
                row.update(evaluate(model, arch, data))
                row["fit s"] = fit_time
                rows.append(row)
                print(
                    f"  {name:22s} {arch:6s} {row['chosen']:18s} "
                    + " ".join(f"{row[c]:.3f}" for c in COLUMNS)
                    + f"  fit {fit_time:.2f}s",
                    flush=True,
                )
            all_rows += rows
            lines += table(protocol, rows)
            ratios = time_ratios(data)
            lines += ratio_lines(ratios)
            for arch, times in ratios:
                print(f"  times {arch}: " + ", ".join(f"{k} {v:.2f}s" for k, v in times.items()))
    elapsed = time.perf_counter() - started
    with open(RESULTS / "adversarial_training.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["protocol", "method", "arch", "chosen", *COLUMNS, "fit s"])
        writer.writeheader()
        writer.writerows(all_rows)
    header = [
        "# Adversarial training on load_digits: retrieval and kNN robustness",
        "",
        "Written by `python benchmarks/bench_adversarial_training.py` (settings in its "
        f"docstring). eps = {EPS} (L-infinity, box [0, 1]). Attacked scores are upper "
        "bounds (a stronger attack can only lower them), certified accuracy a lower bound.",
        f"Run time {elapsed / 60:.1f} min; load average at the start "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (times are noisy on a shared machine).",
        "",
    ]
    (RESULTS / "adversarial_training.md").write_text("\n".join(header + lines) + "\n")
    print(f"wrote benchmarks/results/adversarial_training.md and .csv ({elapsed / 60:.1f} min)")


def table(protocol, rows):
    names = [*COLUMNS, "fit s"]
    lines = [
        f"## {protocol}",
        "",
        "| method | arch | chosen | " + " | ".join(SHORT[c] for c in names) + " |",
        "|---" * (3 + len(names)) + "|",
    ]
    for r in rows:
        values = [r["method"], r["arch"], r["chosen"]]
        values += [f"{r[c]:.3f}" for c in COLUMNS] + [f"{r['fit s']:.2f}"]
        lines.append("| " + " | ".join(values) + " |")
    lines += ["", "Best trained model in each column:", ""]
    for column, best in winners(rows).items():
        lines.append(f"- {SHORT[column]}: {', '.join(best)}")
    beaten = reference_wins(rows)
    lines += [
        "",
        "The untrained Euclidean distance beats every trained model in: "
        + ("; ".join(beaten) if beaten else "no column"),
    ]
    return lines + [""]


def ratio_lines(ratios):
    lines = [
        "RML's cost claim, fit times at eps = 0.05 (median of 3 runs, same data, "
        "architecture, epochs and batches):",
        "",
    ]
    for arch, t in ratios:
        starting = t["RML's starting embedding"]
        lines.append(
            f"- {arch}: RML {t['RML']:.2f} s (its starting embedding alone "
            f"{starting:.2f} s), TLA {t['TLA']:.2f} s, adversarial "
            f"training {t['adversarial training']:.2f} s: adversarial training / RML = "
            f"{t['adversarial training'] / t['RML']:.2f}, TLA / RML = "
            f"{t['TLA'] / t['RML']:.2f}"
        )
    return lines + [""]


if __name__ == "__main__":
    main()
