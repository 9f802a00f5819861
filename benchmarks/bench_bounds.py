"""Certified versus empirical robustness, for pairs and for 3-NN, and the speed of the bounds.

For load_breast_cancer and load_digits (8 vs 9), four metrics: RobustMetricLearner without
defence (alpha=0, NT-ML), with the paper's eigenvalue defence (alpha=1, eig_k=3), with
skrobust's certified training (robust_eps=0.05), and metric-learn's LMNN. On held-out
pairs, for eps in 0.01, 0.05, 0.1 and each bound (shared budget, the paper's eq. 4, and
per point):

- certified accuracy: pairs both correct and certified by the bound (a lower bound on the
  accuracy under any attack within the budget);
- attack accuracy: pairs correct and not flipped by AckMetric (an upper bound; the truth
  lies between the two);
- the mean certified radius (triangle bound) of the test pairs.

The pair threshold (on the squared distance D) is calibrated for accuracy on training pairs,
for every model alike. The same for a 3-NN over each metric on held-out points.

Finally: the bounds for 1,000,000 pairs x 32 features, validation included, once the
model's norms are computed (``metric_norms``).

Run ``python benchmarks/bench_bounds.py``; results go to ``benchmarks/results/``.
"""

import csv
import time
from pathlib import Path

import numpy as np
from _log import logged, relative
from metric_learn import LMNN
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import (
    AckMetricAttack,
    CertifiedPairClassifier,
    RobustMetricLearner,
    calibrate_threshold,
    metric_norms,
    perturbed_distance_bounds,
)
from skrobust.datasets import load_breast_cancer, load_digits, make_pairs
from skrobust.metrics import certified_knn_accuracy, robust_accuracy_score

RESULTS = Path(__file__).parent / "results"
EPS = [0.01, 0.05, 0.1]
BOUNDS = ["paper", "spectral", "frobenius", "triangle", "best"]
BUDGETS = ["shared", "per_point"]

DATASETS = {
    "breast_cancer": load_breast_cancer,
    "digits_8v9": lambda: load_digits(classes=(8, 9)),
}
MODELS = {
    "RobustMetricLearner undefended (alpha=0)": lambda: RobustMetricLearner(
        alpha=0.0, random_state=0
    ),
    "RobustMetricLearner eig defence (alpha=1)": lambda: RobustMetricLearner(
        alpha=1.0, random_state=0
    ),
    "RobustMetricLearner certified (robust_eps=0.05)": lambda: RobustMetricLearner(
        robust_eps=0.05, random_state=0
    ),
    "LMNN": lambda: LMNN(n_neighbors=3, max_iter=200, random_state=0),
}


def pair_rows(name, model_name, model, X_train, y_train, X_test, y_test):
    train_pairs, train_labels, _ = make_pairs(X_train, y_train, 2000, random_state=0)
    test_pairs, test_labels, _ = make_pairs(X_test, y_test, 1000, random_state=1)
    threshold = calibrate_threshold(model, train_pairs, train_labels)
    rows = []
    for budget in BUDGETS:
        clf = CertifiedPairClassifier(FrozenEstimator(model), threshold=threshold, budget=budget)
        clf.fit(train_pairs, train_labels)
        clean = clf.score(test_pairs, test_labels)
        correct = clf.predict(test_pairs) == test_labels
        radius = clf.certified_radius(test_pairs)
        attack = AckMetricAttack(clf, budget=budget).fit()
        result = attack.attack(test_pairs, eps=EPS)
        for e, eps in enumerate(EPS):
            attacked = float(np.mean(correct & ~result.success[e]))
            for bound in BOUNDS:
                clf.set_params(eps=eps, bound=bound)
                rows.append(
                    {
                        "dataset": name,
                        "model": model_name,
                        "budget": budget,
                        "eps": eps,
                        "bound": bound,
                        "clean_accuracy": round(clean, 4),
                        "certified_accuracy": round(
                            clf.certified_score(test_pairs, test_labels), 4
                        ),
                        "attack_accuracy": round(attacked, 4),
                        "mean_certified_radius": round(float(radius.mean()), 5),
                        "K": round(clf.norms_.inf_to_2, 4),
                        "K_exact": clf.norms_.inf_to_2_exact,
                    }
                )
    return rows


def knn_rows(name, model_name, model, X_train, y_train, X_test, y_test):
    pipe = make_pipeline(FrozenEstimator(model), KNeighborsClassifier(3)).fit(X_train, y_train)
    clean = pipe.score(X_test, y_test)
    attacked = robust_accuracy_score(pipe, X_test, y_test, eps=EPS, feature_range=(0.0, 1.0))
    return [
        {
            "dataset": name,
            "model": model_name,
            "eps": eps,
            "clean_accuracy": round(clean, 4),
            "certified_accuracy": round(certified_knn_accuracy(pipe, X_test, y_test, eps), 4),
            "attack_accuracy": round(float(attacked[e]), 4),
        }
        for e, eps in enumerate(EPS)
    ]


def timing():
    rng = np.random.default_rng(0)
    model = RobustMetricLearner(max_iter=1).fit(rng.random((64, 32)), np.arange(64) % 2)
    start = time.perf_counter()
    norms = metric_norms(model)
    norm_time = time.perf_counter() - start
    pairs = rng.random((1_000_000, 2, 32))
    rows = []
    for bound in ["best", "triangle", "paper"]:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            perturbed_distance_bounds(norms, pairs, 0.1, bound=bound)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "n_pairs": len(pairs),
                "n_features": 32,
                "bound": bound,
                "first_call_s": round(times[0], 3),
                "median_s": round(float(np.median(times)), 3),
                "max_s": round(max(times), 3),
                "metric_norms_s": round(norm_time, 3),
                "K_exact": norms.inf_to_2_exact,
            }
        )
    return rows


def write(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {relative(path)}")


def print_table(rows, columns):
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


def main():
    RESULTS.mkdir(exist_ok=True)
    pairs, knn = [], []
    for name, load in DATASETS.items():
        X, y = load()
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=0
        )
        for model_name, make in MODELS.items():
            start = time.perf_counter()
            model = make().fit(X_train, y_train)
            print(f"{name}: {model_name} fitted in {time.perf_counter() - start:.1f} s")
            pairs += pair_rows(name, model_name, model, X_train, y_train, X_test, y_test)
            knn += knn_rows(name, model_name, model, X_train, y_train, X_test, y_test)
    print_table(
        pairs,
        [
            "dataset",
            "model",
            "budget",
            "eps",
            "bound",
            "clean_accuracy",
            "certified_accuracy",
            "attack_accuracy",
            "mean_certified_radius",
            "K",
        ],
    )
    write(pairs, RESULTS / "bench_bounds_pairs.csv")
    print_table(
        knn,
        ["dataset", "model", "eps", "clean_accuracy", "certified_accuracy", "attack_accuracy"],
    )
    write(knn, RESULTS / "bench_bounds_knn.csv")
    rows = timing()
    print_table(rows, list(rows[0]))
    write(rows, RESULTS / "bench_bounds_timing.csv")


if __name__ == "__main__":
    with logged("bench_bounds"):
        main()
