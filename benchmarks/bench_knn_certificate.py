"""Timing of the pairwise kNN certificate and of exact 1-NN verification (issue 9).

1. Synthetic data: 10 classes, 1,000 references, 1,000 test points, 784 features in
   ``[0, 1]``, a random square ``W``, 3-NN. The pairwise certificate
   (``certify_knn(method="pairwise")``) without a box and with the box ``[0, 1]^d``,
   each against a vectorised NumPy version of the same computation (``numpy_pairwise``
   below) that precomputes what does not depend on the test point (``||P_a - P_b||_1`` for
   every pair of references) and then treats every pair of every point alike. The two
   must certify the same points; the ratio is printed.
2. Exact 1-NN verification (``verify_knn``) on the digits 8v9 test half (64 features) at
   eps 0.05 and 0.1, box ``[0, 1]^d``, for NT-ML and skrobust's certified training.

Targets (issue 9): pairwise without box < 2 s, with box < 30 s, exact 1-NN < 60 s.
Timings on a busy machine are noisy: the script prints ``os.getloadavg()``.

Run: ``python benchmarks/bench_knn_certificate.py``. Writes
``benchmarks/results/bench_knn_certificate.csv``.
"""

import csv
import os
import time
from pathlib import Path

import numpy as np
from _log import logged
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import LinearTarget, RobustMetricLearner, datasets
from skrobust._bounds import CERTIFICATE_RTOL
from skrobust.certificates import certify_knn, verify_knn

RESULTS = Path(__file__).parent / "results"
K = 3
EPS_SYNTHETIC = 0.01
PEER_POINTS = 50


class Linear:
    """A fitted linear embedding ``x -> W x`` (skrobust's adapter reads it)."""

    def __init__(self, W):
        self.components_ = W
        self.n_features_in_ = W.shape[1]

    def fit(self, X=None, y=None):
        return self

    def transform(self, X):
        return np.asarray(X) @ self.components_.T

    def __skrobust_target__(self):
        return LinearTarget(self.components_)

    def get_params(self, deep=True):
        return {}


def synthetic(seed=0, n_classes=10, n_per_class=100, n_features=784):
    rng = np.random.default_rng(seed)
    # Class centres close together (0.5 +- 0.1 per feature) against a noise of 0.15, so
    # that the certificate has work to do: some points certified, some not.
    centres = 0.5 + 0.1 * (2.0 * rng.random((n_classes, n_features)) - 1.0)

    def draw():
        y = np.repeat(np.arange(n_classes), n_per_class)
        X = np.clip(centres[y] + 0.15 * rng.standard_normal((len(y), n_features)), 0.0, 1.0)
        return X, y

    (X_ref, y_ref), (X_test, _) = draw(), draw()
    W = rng.standard_normal((n_features, n_features)) / np.sqrt(n_features)
    return X_ref, y_ref, X_test, W


def numpy_pairwise(W, X_ref, y_ref, X_test, eps, box):
    """The pairwise certificate (without the interval argument) in plain vectorised NumPy:
    every pair of references for every point, no pruning."""
    E = X_ref @ W.T
    P = 2.0 * E @ W
    n = len(E)
    L1 = np.empty((n, n))  # ||P_a - P_b||_1: independent of the test point
    for start in range(0, n, 32):
        L1[start : start + 32] = np.abs(P[start : start + 32, None, :] - P[None]).sum(-1)
    Z = X_test @ W.T
    e_sq = np.einsum("ij,ij->i", E, E)
    z_sq = np.einsum("ij,ij->i", Z, Z)
    D = z_sq[:, None] + e_sq - 2.0 * Z @ E.T
    classes = np.unique(y_ref)
    certified = np.zeros(len(X_test), dtype=bool)
    rounding = 4.0 * np.finfo(np.float64).eps * (np.abs(X_test).max(axis=1) + eps)
    for i in range(len(X_test)):
        nearest = np.argsort(D[i], kind="stable")[:K]
        votes = np.bincount(y_ref[nearest], minlength=len(classes))
        c = votes.argmax()
        own, other = y_ref == c, y_ref != c
        l1 = L1[np.ix_(own, other)]
        gap = D[i, other][None, :] - D[i, own][:, None] - eps * l1
        if box is not None:
            z = X_test[i]
            lower, upper = np.maximum(-eps, box[0] - z), np.minimum(eps, box[1] - z)
            mid, half = (lower + upper) / 2, (upper - lower) / 2
            P_own, P_other = P[own], P[other]
            for a in range(0, len(P_own), 8):
                C = P_own[a : a + 8, None, :] - P_other[None, :, :]
                gap[a : a + 8] = (
                    D[i, other][None, :] - D[i, own][a : a + 8, None] + C @ mid - np.abs(C) @ half
                )
        slack = (
            CERTIFICATE_RTOL * (np.abs(D[i, own])[:, None] + np.abs(D[i, other]) + eps * l1)
            + rounding[i] * l1
            + 1e-12 * (2.0 * z_sq[i] + e_sq[own][:, None] + e_sq[other])
        )
        counts = np.minimum((gap > slack).sum(axis=0), K + 1)
        rival_of = y_ref[other]
        beta = np.sort(counts)
        ok = True
        for rival in classes[classes != c]:
            alpha = np.sort(counts[rival_of == rival])
            for m in range(1, min(K, len(alpha)) + 1):
                for T in range(max(m, K - m), min(K, len(beta)) + 1):
                    if T - m <= len(beta) - len(alpha) and max(alpha[m - 1], beta[T - 1]) <= K - T:
                        ok = False
        certified[i] = ok
    return certified


def timed(f):
    start = time.perf_counter()
    out = f()
    return out, time.perf_counter() - start


def main():
    RESULTS.mkdir(exist_ok=True)
    rows = []
    print(f"load average at start: {os.getloadavg()}")
    X_ref, y_ref, X_test, W = synthetic()
    pipe = make_pipeline(Linear(W), KNeighborsClassifier(K)).fit(X_ref, y_ref)
    from skrobust._knn_certificate import _certify, _KnnParts

    eps = EPS_SYNTHETIC
    for box in (None, (0.0, 1.0)):
        label = "no box" if box is None else "box [0,1]"
        ours, t_ours = timed(lambda: certify_knn(pipe, X_test, eps, feature_range=box))  # noqa: B023
        # The peer treats every pair on every coordinate; with the box that is slow, so it
        # runs on the first PEER_POINTS test points and its time is scaled to all of them.
        n_peer = len(X_test) if box is None else PEER_POINTS
        alone = _certify(
            _KnnParts(pipe), X_test[:n_peer], np.full(n_peer, eps), "pairwise", box,
            use_interval=False,
        )  # fmt: skip
        peer, t_peer = timed(lambda: numpy_pairwise(W, X_ref, y_ref, X_test[:n_peer], eps, box))  # noqa: B023
        t_peer *= len(X_test) / n_peer
        agree = bool(np.array_equal(alone, peer))
        print(
            f"pairwise 3-NN, {label}, eps {eps}: skrobust {t_ours:.2f} s, NumPy {t_peer:.2f} s"
            f"{'' if n_peer == len(X_test) else f' (scaled from {n_peer} points)'} "
            f"(x{t_peer / t_ours:.1f}); certified {ours.mean():.3f}, NumPy agrees: {agree}"
        )
        rows.append(
            {"task": f"pairwise synthetic {label}", "eps": eps, "model": "random W",
             "seconds": t_ours, "numpy seconds": t_peer, "certified": ours.mean(),
             "agrees": agree}
        )  # fmt: skip
    X, y = datasets.load_digits(classes=(8, 9))
    X_train, X_half, y_train, _ = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    # A fixed strength: these are timing subjects, not results of the defence.
    subjects = {"NT-ML": {"alpha": 0.0}, "skrobust certified": {"alpha": 0.0, "robust_eps": 0.05}}
    for name, params in subjects.items():
        nn = make_pipeline(
            RobustMetricLearner(random_state=0, **params), KNeighborsClassifier(1)
        ).fit(X_train, y_train)
        for eps in (0.05, 0.1):
            result, seconds = timed(lambda: verify_knn(nn, X_half, eps, feature_range=(0, 1)))  # noqa: B023
            pairwise, t_pair = timed(lambda: certify_knn(nn, X_half, eps, feature_range=(0, 1)))  # noqa: B023
            print(
                f"exact 1-NN digits 8v9 ({len(X_half)} points), {name}, eps {eps}: "
                f"{seconds:.1f} s (pairwise {t_pair:.2f} s); robust {result.robust.mean():.3f}, "
                f"broken {result.broken.mean():.3f}, undecided {result.n_undecided}, pairwise "
                f"certified {pairwise.mean():.3f}"
            )
            rows.append(
                {"task": "exact 1-NN digits 8v9", "eps": eps, "model": name,
                 "seconds": seconds, "numpy seconds": "", "certified": result.robust.mean(),
                 "agrees": bool(np.all(result.robust[pairwise]))}
            )  # fmt: skip
    print(f"load average at end: {os.getloadavg()}")
    with open(RESULTS / "bench_knn_certificate.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    with logged("bench_knn_certificate"):
        main()
