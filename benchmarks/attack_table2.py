"""The paper's Table 2 protocol on digits 8 vs 9, and the kNN attack on breast cancer.

Run ``python benchmarks/attack_table2.py``. Table 2 (Huai et al. 2022, sec. 6.1): half of the
points (scaled to ``[0, 1]``) train each metric learner; a threshold on the squared distance
is calibrated for accuracy on labelled training pairs; random test pairs are drawn from the
other half; the attack (shared budget of eq. 4, step 0.01, 20 iterations) runs on the test
pairs the model predicts similar, and the table gives the fraction it turns dissimilar, for
eps = 0.05 ... 0.15. The paper uses MNIST 8 vs 9 (784 pixels); scikit-learn's bundled 8x8
digits (64 pixels) stand in for it, so the figures are comparable in trend, not in value.

Second part: the kNN attack of eq. (23) at eps = 0.1 against a 3-NN over an undefended
RobustMetricLearner (``alpha=0``, NT-ML) on breast cancer: clean versus adversarial
accuracy. Figures are printed and written to ``benchmarks/results/``.
"""

import csv
import time
import warnings
from pathlib import Path

import numpy as np
from _log import logged, relative
from metric_learn import LMNN, ITML_Supervised, SCML_Supervised
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline

from skrobust import AckMetricAttack, RobustMetricLearner, calibrate_threshold
from skrobust.datasets import load_breast_cancer, load_digits, make_pairs

RESULTS = Path(__file__).parent / "results"
EPS = [0.05, 0.075, 0.1, 0.125, 0.15]
SEED = 0


def split_half(n, rng):
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 :]


def table2(n_train_pairs=2000, n_test_pairs=2000):
    X, y = load_digits(classes=(8, 9))
    rng = np.random.default_rng(SEED)
    train, test = split_half(len(y), rng)
    models = {
        "LMNN": LMNN(n_neighbors=3, random_state=SEED),
        "SCML_Supervised": SCML_Supervised(random_state=SEED),
        "ITML_Supervised": ITML_Supervised(random_state=SEED),
        "NCA (scikit-learn)": NeighborhoodComponentsAnalysis(random_state=SEED),
        "RobustMetricLearner (alpha=0)": RobustMetricLearner(alpha=0.0),
        "RobustMetricLearner (alpha=1)": RobustMetricLearner(alpha=1.0),
    }
    train_pairs, train_labels, _ = make_pairs(X[train], y[train], n_train_pairs, random_state=1)
    test_pairs, _, _ = make_pairs(X[test], y[test], n_test_pairs, balanced=False, random_state=2)
    rows = []
    print(
        f"Table 2 protocol: digits 8 vs 9 ({len(y)} points x {X.shape[1]} pixels in [0, 1]); "
        f"{len(train)} train, {len(test)} test points; {n_test_pairs} random test pairs; "
        "shared budget, step 0.01, 20 iterations"
    )
    header = f"{'model':32s} {'thr acc':>7s} {'#sim':>5s} " + " ".join(
        f"{f'eps={e:g}':>10s}" for e in EPS
    )
    print(header)
    for name, model in models.items():
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            # metric-learn warns about defaults and convergence; counted in the CSV.
            warnings.simplefilter("always")
            model.fit(X[train], y[train])
        fit_s = time.perf_counter() - t
        threshold = calibrate_threshold(model, train_pairs, train_labels)
        attack = AckMetricAttack(FrozenEstimator(model), threshold=threshold).fit()
        D_train = attack.metric_.pair_distances(train_pairs)
        train_acc = float(np.mean((D_train <= threshold) == (train_labels == 1)))
        result = attack.attack(test_pairs, eps=EPS)
        similar = result.distances_before <= threshold
        rates = result.success[:, similar].mean(axis=1)
        print(
            f"{name:32s} {train_acc:7.3f} {int(similar.sum()):5d} "
            + " ".join(f"{r:10.3f}" for r in rates)
        )
        rows.append(
            {
                "model": name,
                "threshold": threshold,
                "train_pair_accuracy": train_acc,
                "n_test_pairs": n_test_pairs,
                "n_predicted_similar": int(similar.sum()),
                "fit_seconds": fit_s,
                "fit_warnings": len(caught),
                **{f"success_eps_{e:g}": float(r) for e, r in zip(EPS, rates, strict=True)},
            }
        )
    return rows


def knn_breast_cancer(eps=0.1):
    X, y = load_breast_cancer()
    rng = np.random.default_rng(SEED)
    train, test = split_half(len(y), rng)
    rows = []
    for alpha in (0.0, 1.0):
        pipe = make_pipeline(RobustMetricLearner(alpha=alpha), KNeighborsClassifier(3))
        pipe.fit(X[train], y[train])
        attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=eps).fit()
        result = attack.attack(X[test], y[test])
        clean = float(np.mean(result.predictions_before == y[test]))
        adversarial = float(np.mean(result.predictions_after[0] == y[test]))
        label = "undefended NT-ML" if alpha == 0 else "eig defence"
        print(
            f"breast cancer, 3-NN over RobustMetricLearner(alpha={alpha:g}) ({label}), kNN "
            f"attack eps={eps:g}: clean accuracy {clean:.3f} -> adversarial {adversarial:.3f}"
        )
        rows.append({"alpha": alpha, "eps": eps, "clean": clean, "adversarial": adversarial})
    return rows


def write(rows, name):
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"written {relative(path)}")


def main():
    write(table2(), "attack_table2.csv")
    write(knn_breast_cancer(), "attack_knn_breast_cancer.csv")


if __name__ == "__main__":
    with logged("attack_table2"):
        main()
