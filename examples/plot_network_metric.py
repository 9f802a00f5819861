"""
A ReLU-network metric: attacked through its gradient, certified by interval bounds
==================================================================================

The core paper defines deep metric models (eq. 2), attacks them through the network's
gradient (eq. 10-11) and leaves their certificate open. :class:`~skrobust.ReluMetricLearner`
trains such a network; every attack of skrobust reaches it through its vector-Jacobian
product, and its certificates come from interval bound propagation (IBP) and the Lipschitz
bound ``||W_1||_{inf->2} prod ||W_l||_2``, the tighter of the two per distance.

On the ten digits, a 3-NN over the network's embedding: accuracy under the strong attack
(:class:`~skrobust.CascadeKNNAttack`: eq. 23 and margin PGD through the VJP; its LP and
line-search members, which need a linear metric, step aside) is an **upper** bound on the
robust accuracy, certified accuracy (``certify_knn(method="interval")``) a **lower** bound.
The truth lies in the band between. Expect the band to be wide: the network certificates
are loose, and the gradient attack may miss flips an exact search would find.
"""

import matplotlib.pyplot as plt
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import CascadeKNNAttack, ReluMetricLearner
from skrobust.certificates import certified_knn_accuracy
from skrobust.datasets import load_digits

X, y = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
X_test, y_test = X_test[:150], y_test[:150]  # a quick figure: 150 test points

learner = ReluMetricLearner(hidden_layer_sizes=(64,), n_components=32, n_epochs=40,
                            random_state=0)  # fmt: skip
pipe = make_pipeline(learner, KNeighborsClassifier(3)).fit(X_train, y_train)
clean = pipe.score(X_test, y_test)
print(f"clean 3-NN accuracy: {clean:.3f}")

eps_grid = [0.0025, 0.005, 0.01, 0.03]
attack = CascadeKNNAttack(FrozenEstimator(pipe), eps=eps_grid, random_state=0).fit()
print("members stepping aside on the network:", attack.stepped_aside_)
result = attack.attack(X_test, y_test)
attacked = (result.predictions_after == y_test).mean(axis=1)
certified = [
    certified_knn_accuracy(pipe, X_test, y_test, eps, method="interval", feature_range=(0, 1))
    for eps in eps_grid
]
for eps, up, low in zip(eps_grid, attacked, certified, strict=True):
    print(f"eps {eps:<6g}: certified {low:.3f} <= robust accuracy <= {up:.3f} (attack)")

fig, ax = plt.subplots(figsize=(6.4, 4.0))
grid = [0.0, *eps_grid]
ax.plot(grid, [clean, *attacked], "-o", label="strong attack (upper bound)")
ax.plot(grid, [clean, *certified], "--s", label="certified, interval (lower bound)")
ax.fill_between(grid, [clean, *certified], [clean, *attacked], alpha=0.15,
                label="where the true robust accuracy lies")  # fmt: skip
ax.set_xlabel("eps (L-infinity, pixels in [0, 1])")
ax.set_ylabel("3-NN accuracy")
ax.set_title("ReLU-network metric on the ten digits")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
