"""A ReLU-network metric against the linear RobustMetricLearner on load_digits (issue 15).

All ten digits, pixels scaled to ``[0, 1]``, one stratified 70/30 split (seed 0). Each
learner feeds a 3-NN; its hyperparameters are chosen by 3-fold cross-validation of clean
3-NN accuracy on the training part only (the test part never enters a choice):

- ``RobustMetricLearner`` (linear, the paper's eigenvalue defence): ``alpha`` in 0, 0.1, 1;
- ``ReluMetricLearner`` (one hidden layer, 32 outputs): hidden width 64 or 256, 100 or 200
  epochs, loss ``"hinge"`` (eq. 20) or ``"contrastive"``.

On the test part, per budget ``eps`` (L-infinity, box ``[0, 1]^64``):

- accuracy under the strong attack (:class:`~skrobust.CascadeKNNAttack`, restarts seeded
  with 0): an UPPER bound on robust accuracy. On the network its linear-only members
  (targeted line search, LPs) step aside; eq. (23) and margin PGD run through the VJP;
- certified accuracy: a LOWER bound. Linear: ``certify_knn(method="pairwise")``, its
  strongest certificate short of exact verification; network: ``method="interval"``
  (interval bound propagation and the Lipschitz bound, the tighter per reference). The
  linear metric's ``method="interval"`` (the triangle bound per distance) is reported too,
  so that the two models are also compared under the same kind of argument.

The true robust accuracy of each model lies between the two. Fit times are of the final
refit on the whole training part; timings on a busy machine are noisy (the load average is
printed and written).

Run: ``python benchmarks/bench_nonlinear.py``. Writes ``benchmarks/results/bench_nonlinear.csv``,
``bench_nonlinear.md`` and ``bench_nonlinear.png``.
"""

import csv
import os
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from skrobust import ReluMetricLearner, RobustMetricLearner
from skrobust.certificates import certified_knn_accuracy
from skrobust.datasets import load_digits
from skrobust.metrics import robust_accuracy_score

RESULTS = Path(__file__).parent / "results"
EPS = [0.005, 0.01, 0.02, 0.05, 0.1]
BOX = (0.0, 1.0)

MODELS = {
    "linear (RobustMetricLearner)": (
        RobustMetricLearner(random_state=0),
        {"metric__alpha": [0.0, 0.1, 1.0]},
        "pairwise",
    ),
    "ReLU network (ReluMetricLearner)": (
        ReluMetricLearner(n_components=32, random_state=0),
        {
            "metric__hidden_layer_sizes": [(64,), (256,)],
            "metric__n_epochs": [100, 200],
            "metric__loss": ["hinge", "contrastive"],
        },
        "interval",
    ),
}


def load():
    X, y = load_digits()
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def choose(learner, grid, X, y):
    """Cross-validate clean 3-NN accuracy on the training part; refit the best."""
    pipe = Pipeline([("metric", learner), ("knn", KNeighborsClassifier(3))])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, grid, cv=cv, refit=False).fit(X, y)
    best = search.best_params_
    start = time.perf_counter()
    model = pipe.set_params(**best).fit(X, y)
    return model, best, float(search.best_score_), time.perf_counter() - start


def certified(model, method, X, y):
    return np.array(
        [certified_knn_accuracy(model, X, y, eps, method=method, feature_range=BOX) for eps in EPS]
    )


def evaluate(model, method, X, y):
    clean = model.score(X, y)
    start = time.perf_counter()
    attacked = np.atleast_1d(
        robust_accuracy_score(
            model, X, y, eps=EPS, feature_range=BOX, attack_params={"random_state": 0}
        )  # fmt: skip
    )
    attack_time = time.perf_counter() - start
    start = time.perf_counter()
    lower = certified(model, method, X, y)
    certify_time = time.perf_counter() - start
    interval = lower if method == "interval" else certified(model, "interval", X, y)
    return clean, attacked, lower, interval, attack_time, certify_time


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, colour in zip(MODELS, ("tab:blue", "tab:red"), strict=True):
        mine = [r for r in rows if r["model"] == name]
        eps = [0.0] + [r["eps"] for r in mine]
        clean = mine[0]["clean"]
        ax.plot(eps, [clean] + [r["attacked_upper"] for r in mine], "-o", color=colour,
                label=f"{name}: strong attack (upper bound)")  # fmt: skip
        ax.plot(eps, [clean] + [r["certified_lower"] for r in mine], "--s", color=colour,
                label=f"{name}: certified (lower bound)")  # fmt: skip
    ax.set_xlabel("eps (L-infinity, pixels in [0, 1])")
    ax.set_ylabel("3-NN accuracy on the test split")
    ax.set_title("load_digits, 10 classes: robust accuracy lies between the curves")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    load_before = os.getloadavg()
    X_train, X_test, y_train, y_test = load()
    rows, summary = [], []
    for name, (learner, grid, method) in MODELS.items():
        model, best, cv_score, fit_time = choose(learner, grid, X_train, y_train)
        clean, attacked, lower, interval, attack_time, certify_time = evaluate(
            model, method, X_test, y_test
        )
        print(f"{name}: CV choice {best} (CV accuracy {cv_score:.3f}), refit {fit_time:.1f} s")
        print(
            f"  clean {clean:.3f}; attack {attack_time:.1f} s, certificates {certify_time:.1f} s"
        )
        for eps, a, c, i in zip(EPS, attacked, lower, interval, strict=True):
            print(f"  eps {eps:<6g} strong attack (upper) {a:.3f}  certified (lower) {c:.3f} "
                  f"[{method}; interval {i:.3f}]")  # fmt: skip
            rows.append({"model": name, "eps": eps, "clean": clean, "attacked_upper": a,
                         "certified_lower": c, "certificate": method,
                         "certified_interval": i})  # fmt: skip
        summary.append((name, best, cv_score, clean, fit_time, attack_time, certify_time))
    (lin, *_, lin_clean, lin_fit, _, _), (net, *_, net_clean, net_fit, _, _) = summary
    print(f"network / linear: clean accuracy {net_clean:.3f} / {lin_clean:.3f} "
          f"({net_clean - lin_clean:+.3f}); fit time ratio {net_fit / lin_fit:.2f}")  # fmt: skip
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")

    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "bench_nonlinear.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# ReLU network vs linear metric on load_digits (10 classes, 3-NN)",
        "",
        "Written by `benchmarks/bench_nonlinear.py`. Strong attack: an upper bound on robust "
        "accuracy; certified: a lower bound. Hyperparameters by 3-fold CV of clean accuracy on "
        "the training split (70%, stratified, seed 0); figures on the test split (540 points).",
        "",
        "| model | CV choice | CV accuracy | clean test accuracy | fit time (s) | "
        "attack time (s) | certificate time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, best, cv_score, clean, fit_time, attack_time, certify_time in summary:
        choice = ", ".join(f"{k.split('__')[1]}={v}" for k, v in best.items())
        lines.append(f"| {name} | {choice} | {cv_score:.3f} | {clean:.3f} | {fit_time:.1f} | "
                     f"{attack_time:.1f} | {certify_time:.1f} |")  # fmt: skip
    lines += ["", "| model | eps | strong attack (upper bound) | certified (lower bound) | "
              "certified, interval argument |", "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['model']} | {r['eps']:g} | {r['attacked_upper']:.3f} | "
                     f"{r['certified_lower']:.3f} ({r['certificate']}) | "
                     f"{r['certified_interval']:.3f} |")  # fmt: skip
    lines += ["", f"Network / linear fit time: {net_fit / lin_fit:.2f}. Load average "
              f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (2 cores)."]  # fmt: skip
    (RESULTS / "bench_nonlinear.md").write_text("\n".join(lines) + "\n")
    plot(rows, RESULTS / "bench_nonlinear.png")


if __name__ == "__main__":
    main()
