"""NT-ML (RobustMetricLearner, alpha=0) on breast cancer at several scales of the data.

The learner divides the data by one global scale (the widest feature's range, 1 on data in
[0, 1]), so every row should show the same clean 3-NN accuracy and a loss curve that ends
at its minimum. Writes benchmarks/results/learner_scale.txt.

    python benchmarks/learner_scale.py
"""

import warnings
from pathlib import Path

import numpy as np
from _log import logged
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skrobust import RobustMetricLearner
from skrobust.datasets import load_breast_cancer

SCALES = [("[0, 1]", 1.0), ("[0, 255]", 255.0), ("x1e3", 1e3), ("x1e-3", 1e-3)]
EXTREME = [("x1e155", 1e155), ("x1e-160", 1e-160)]


def main():
    X, y = load_breast_cancer()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    lines = [
        "NT-ML (alpha=0, defaults otherwise, random_state=0), breast cancer, 70/30 split "
        "(seed 0); clean 3-NN accuracy on the test split",
        f"{'data':10s} {'3-NN acc':>9s} {'loss first':>11s} {'loss min':>10s} {'at step':>8s} "
        f"{'loss last':>10s} {'last/min-1':>11s} {'warnings':>9s}",
    ]
    for name, c in SCALES + EXTREME:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = RobustMetricLearner(alpha=0.0, random_state=0).fit(c * X_tr, y_tr)
        knn = KNeighborsClassifier(3).fit(model.transform(c * X_tr), y_tr)
        accuracy = knn.score(model.transform(c * X_te), y_te)
        curve = np.array(model.loss_curve_)
        lines.append(
            f"{name:10s} {accuracy:9.4f} {curve[0]:11.6f} {curve.min():10.6f} "
            f"{int(curve.argmin()) + 1:8d} {curve[-1]:10.6f} {curve[-1] / curve.min() - 1:11.4%} "
            f"{len(caught):9d}"
        )
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "results" / "learner_scale.txt"
    out.write_text(text + "\n")


if __name__ == "__main__":
    with logged("learner_scale"):
        main()
