"""
Adversarial digit pairs
=======================

As in figures 2-5 of Huai et al., pairs of handwritten digits that a learned metric judges
similar, and what AckMetric does to them: the originals, the perturbation of each image
(at most ``eps`` per pixel, the two together at most ``eps`` under the paper's shared
budget, eq. 4) and the adversarial pair, which the same metric now judges dissimilar.

The metric is :class:`~skrobust.RobustMetricLearner` without defence (``alpha=0``, NT-ML),
trained on half of the 8s and 9s of scikit-learn's digits (8 x 8 images, pixels scaled to
``[0, 1]``). A pair is similar when its squared distance ``D`` is at most the learner's
``gamma``.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from skrobust import AckMetricAttack, RobustMetricLearner
from skrobust.datasets import load_digits, make_pairs

EPS = 0.1

X, y = load_digits(classes=(8, 9))
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
model = RobustMetricLearner(alpha=0.0, random_state=0).fit(X_train, y_train)
pairs, labels, _ = make_pairs(X_test, y_test, 200, random_state=0)
pairs = pairs[labels == 1]  # same digit on both sides

attack = AckMetricAttack(FrozenEstimator(model), eps=EPS).fit()
result = attack.attack(pairs)
shown = np.flatnonzero((result.distances_before <= attack.threshold_) & result.success[0])[:3]
print(
    f"threshold on D: {attack.threshold_:g}; success rate at eps={EPS}: "
    f"{result.success_rate[0]:.3f} of {len(pairs)} same-digit pairs"
)

# %%
# Originals, perturbations, adversarial pairs
# -------------------------------------------
fig, axes = plt.subplots(len(shown), 6, figsize=(9, 1.75 * len(shown) + 0.4))
titles = [
    "image a",
    "image b",
    "perturbation of a",
    "perturbation of b",
    "adversarial a",
    "adversarial b",
]
for row, p in enumerate(shown):
    clean, adv = pairs[p], result.adversarial[0, p]
    delta = adv - clean
    scale = np.abs(delta).max()
    images = [clean[0], clean[1], delta[0], delta[1], adv[0], adv[1]]
    for col, (ax, image) in enumerate(zip(axes[row], images, strict=True)):
        if col in (2, 3):
            ax.imshow(image.reshape(8, 8), cmap="RdBu_r", vmin=-scale, vmax=scale)
            ax.set_xlabel(f"+-{scale:.3f}", fontsize=7)
        else:
            ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(titles[col], fontsize=8)
    axes[row, 0].set_ylabel(
        f"D {result.distances_before[p]:.2f}\n-> {result.distances_after[0, p]:.2f}", fontsize=8
    )
    budget = np.abs(delta[0]).max() + np.abs(delta[1]).max()
    print(
        f"pair {p}: D {result.distances_before[p]:.3f} -> {result.distances_after[0, p]:.3f}"
        f" (threshold {attack.threshold_:g}); ||d_a||_inf + ||d_b||_inf = {budget:.3f}"
    )
fig.suptitle(
    f"similar -> dissimilar within eps = {EPS}: the first iterate that flips the "
    "pair is kept (perturbations drawn at their own scale, red +, blue -)",
    fontsize=8,
)
fig.tight_layout()
plt.show()
