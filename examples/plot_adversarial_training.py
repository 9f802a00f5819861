"""
Adversarial training for retrieval on classes never seen in training
=====================================================================

RML's protocol on ``load_digits``: metrics are trained on the digits 0-4 and measured on
5-9, by Recall@K, with every test digit querying all the others. Each bar pair is the
natural recall and the recall under PGD-5 on the retrieval loss
(:func:`skrobust.retrieval.retrieval_scores`, ``eps = 0.05`` on pixels in ``[0, 1]``,
only queries move): the attacked recall is an **upper** bound on the recall under the
worst attack within the budget.

The three defences that train on adversarial points share one training loop and differ
in where those points come from: RML (:class:`~skrobust.AdversarialHeadLearner`) attacks
once, against a frozen NT-ML metric, and trains a head; TLA
(:class:`~skrobust.AdversarialAnchorLearner`) attacks the anchors of every mini-batch;
adversarial metric training (:class:`~skrobust.AdversarialBatchLearner`) attacks the batch
loss itself. All are linear metrics here, with the same budget, ``robust_eps = 0.05``,
fixed for a short example: choose it by cross-validation on the training data, as
``benchmarks/bench_adversarial_training.py`` does.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skrobust import (
    AdversarialAnchorLearner,
    AdversarialBatchLearner,
    AdversarialHeadLearner,
    RobustMetricLearner,
)
from skrobust.retrieval import retrieval_scores

EPS = 0.05
KS = (1, 2, 4)

X, y = load_digits(return_X_y=True)
X = X / 16.0
train = y < 5
settings = {"n_components": 32, "robust_eps": EPS, "feature_range": (0.0, 1.0)}
models = {
    "NT-ML": RobustMetricLearner(32, alpha=0.0, max_iter=200),
    "RML": AdversarialHeadLearner((), n_epochs=15, random_state=0, **settings),
    "TLA": AdversarialAnchorLearner((), n_epochs=15, random_state=0, **settings),
    "adversarial\ntraining": AdversarialBatchLearner((), n_epochs=15, random_state=0, **settings),
}

natural, attacked = {}, {}
for name, model in models.items():
    model.fit(X[train], y[train])
    natural[name] = retrieval_scores(model, X[~train], y[~train], k=KS, nmi=False)
    attacked[name] = retrieval_scores(
        model, X[~train], y[~train], k=KS, nmi=False, eps=EPS, feature_range=(0.0, 1.0)
    )
    print(
        name.replace("\n", " "),
        {k: round(v, 3) for k, v in natural[name].items()},
        {k: round(v, 3) for k, v in attacked[name].items()},
    )

fig, axes = plt.subplots(1, len(KS), figsize=(11, 3.6), sharey=True)
positions = np.arange(len(models))
for ax, k in zip(axes, KS, strict=True):
    key = f"recall@{k}"
    ax.bar(positions - 0.2, [natural[m][key] for m in models], 0.4, label="natural")
    ax.bar(positions + 0.2, [attacked[m][key] for m in models], 0.4, label="PGD-5 (upper bound)")
    ax.set_xticks(positions, list(models), fontsize=8)
    ax.set_title(f"Recall@{k}, digits 5-9")
    ax.set_ylim(0, 1)
axes[0].set_ylabel("recall")
axes[0].legend(loc="lower left", fontsize=8)
fig.tight_layout()
plt.show()
