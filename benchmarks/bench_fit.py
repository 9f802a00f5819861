"""Fit time of RobustMetricLearner against its peers, and a large fit's time and memory.

1. ``load_breast_cancer`` (half as the training set): the median fit time of
   ``RobustMetricLearner`` over 500 iterations (``tol=None``), and its ratio to scikit-learn's
   ``NeighborhoodComponentsAnalysis`` and metric-learn's ``ITML_Supervised`` and ``LMNN``
   (each at its default settings), all measured in this run. Target: at most 3x NCA.
2. A fit on 5,000 points x 64 features (500 iterations, all 12.5 million pairs) in a fresh
   process: wall time and peak resident memory. Targets: under 60 s and under 1 GB. The loss
   runs on as many threads as BLAS may use (printed); the same fit on one thread
   (``OPENBLAS_NUM_THREADS=1``) is printed beside it.

Run: ``python benchmarks/bench_fit.py``. Results: ``benchmarks/results/fit.csv`` and
``fit.md``.
"""

import csv
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from _log import logged, relative
from metric_learn import LMNN, ITML_Supervised
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NeighborhoodComponentsAnalysis

from skrobust import RobustMetricLearner
from skrobust.datasets import load_breast_cancer

RESULTS = Path(__file__).parent / "results"
REPEATS = 3

LARGE_FIT = """
import json, resource, time
from sklearn.datasets import make_classification
from sklearn.preprocessing import minmax_scale
from skrobust import RobustMetricLearner
X, y = make_classification(n_samples=5000, n_features=64, n_informative=32, n_classes=10,
                           random_state=0)
X = minmax_scale(X)
RobustMetricLearner(max_iter=1).fit(X[:50], y[:50])  # load the numba cache
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
model = RobustMetricLearner(max_iter=500, tol=None, random_state=0).fit(X, y)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from skrobust._loss_engine import N_LANES
from skrobust._threads import blas_threads
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "before_mb": before / 1024,
                  "n_iter": model.n_iter_, "threads": min(N_LANES, blas_threads())}))
"""


def median_time(make, X, y):
    times = []
    for _ in range(REPEATS):
        model = make()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    RESULTS.mkdir(exist_ok=True)
    X, y = load_breast_cancer()
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    RobustMetricLearner(max_iter=1).fit(X_train, y_train)  # load the numba cache

    peers = {
        "RobustMetricLearner (500 iter)": lambda: RobustMetricLearner(
            max_iter=500, tol=None, random_state=0
        ),
        "sklearn NCA": lambda: NeighborhoodComponentsAnalysis(random_state=0),
        "metric-learn ITML_Supervised": lambda: ITML_Supervised(random_state=0),
        "metric-learn LMNN": lambda: LMNN(random_state=0),
    }
    print(f"load_breast_cancer, {len(X_train)} training points x {X.shape[1]} features")
    times = {name: median_time(make, X_train, y_train) for name, make in peers.items()}
    ours = times["RobustMetricLearner (500 iter)"]
    rows = []
    print(f"{'model':<34}{'fit time (s)':>14}{'skrobust / model':>18}")
    for name, seconds in times.items():
        rows.append(
            {
                "benchmark": "breast_cancer",
                "model": name,
                "seconds": seconds,
                "skrobust_ratio": ours / seconds,
            }
        )
        print(f"{name:<34}{seconds:>14.3f}{ours / seconds:>18.2f}")
    ratio = ours / times["sklearn NCA"]
    print(f"target: at most 3x NCA -> {ratio:.2f}x, {'met' if ratio <= 3 else 'MISSED'}")

    for threads in (None, 1):
        env = dict(os.environ)
        if threads is not None:
            env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        out = subprocess.run(
            [sys.executable, "-c", LARGE_FIT], capture_output=True, text=True, check=True, env=env
        )
        large = json.loads(out.stdout.strip().splitlines()[-1])
        label = f"RobustMetricLearner (500 iter, {large['threads']} thread(s))"
        print(
            f"\n5,000 points x 64 features, {large['n_iter']} iterations on {large['threads']} "
            f"thread(s): {large['seconds']:.1f} s, peak memory {large['peak_mb']:.0f} MB"
        )
        if threads is None:
            print(
                f"targets: < 60 s {'met' if large['seconds'] < 60 else 'MISSED'}, "
                f"< 1024 MB {'met' if large['peak_mb'] < 1024 else 'MISSED'}"
            )
        else:
            print("(for comparison: the same fit with BLAS, and so the loss, on one thread)")
        rows.append(
            {
                "benchmark": "5000x64",
                "model": label,
                "seconds": large["seconds"],
                "skrobust_ratio": 1.0,
                "peak_mb": large["peak_mb"],
            }
        )

    with open(RESULTS / "fit.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["benchmark", "model", "seconds", "skrobust_ratio", "peak_mb"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| benchmark | model | seconds | skrobust / model | peak MB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        peak = f"{r['peak_mb']:.0f}" if "peak_mb" in r else ""
        lines.append(
            f"| {r['benchmark']} | {r['model']} | {r['seconds']:.3f} | "
            f"{r['skrobust_ratio']:.2f} | {peak} |"
        )
    (RESULTS / "fit.md").write_text("\n".join(lines) + "\n")
    print(f"\nsaved {relative(RESULTS / 'fit.csv')} and fit.md")


if __name__ == "__main__":
    with logged("fit"):
        main()
