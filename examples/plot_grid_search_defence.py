"""
Choosing a defence's strength with GridSearchCV
===============================================

How strong should certified training be? :class:`~sklearn.model_selection.GridSearchCV`
answers by cross-validation on the training data alone, as for any hyper-parameter: the
pipeline is a :class:`~skrobust.RobustMetricLearner` followed by a 3-NN, the grid is its
``robust_eps``, and every candidate is scored three ways on each validation fold:

- ``"clean"``: accuracy;
- ``"robust"``: accuracy under the strong kNN attack (:class:`~skrobust.CascadeKNNAttack`,
  the default of :func:`~skrobust.metrics.make_robust_scorer`; an **upper** bound on the
  true robust accuracy);
- ``"certified"``: the fraction of points whose vote provably cannot flip,
  :func:`~skrobust.metrics.make_certified_scorer` (a **lower** bound).

The search refits the candidate with the best cross-validated certified accuracy; only
then is it measured once on the held-out test half, which played no part in the choice.
"""

import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import RobustMetricLearner
from skrobust.datasets import load_breast_cancer
from skrobust.metrics import (
    certified_knn_accuracy,
    make_certified_scorer,
    make_robust_scorer,
    robust_accuracy_score,
)

EPS = 0.05  # the attacker's L-infinity budget, features in [0, 1]

X, y = load_breast_cancer()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
pipe = make_pipeline(
    RobustMetricLearner(alpha=0.0, max_iter=200, random_state=0), KNeighborsClassifier(3)
)
strengths = [0.0, 0.01, 0.025, 0.05, 0.1]
search = GridSearchCV(
    pipe,
    {"robustmetriclearner__robust_eps": strengths},
    scoring={
        "clean": "accuracy",
        "robust": make_robust_scorer(eps=EPS),
        "certified": make_certified_scorer(eps=EPS),
    },
    refit="certified",
    cv=3,
).fit(X_train, y_train)

# %%
# Cross-validated scores against the strength
# -------------------------------------------
fig, ax = plt.subplots(figsize=(6.5, 4.2))
styles = {"clean": "-o", "robust": "--s", "certified": ":^"}
labels = {
    "clean": "clean accuracy",
    "robust": f"accuracy under attack, eps={EPS} (upper bound)",
    "certified": f"certified accuracy, eps={EPS} (lower bound)",
}
for name, style in styles.items():
    mean = search.cv_results_[f"mean_test_{name}"]
    std = search.cv_results_[f"std_test_{name}"]
    ax.errorbar(strengths, mean, yerr=std, fmt=style, capsize=3, label=labels[name])
best = search.best_params_["robustmetriclearner__robust_eps"]
ax.axvline(best, color="grey", lw=0.8)
ax.set_xlabel("robust_eps of certified training")
ax.set_ylabel("3-fold cross-validated score on the training half")
ax.set_ylim(-0.02, 1.02)
ax.grid(alpha=0.3)
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
plt.show()

# %%
# The chosen strength, measured once on the test half
# ---------------------------------------------------
model = search.best_estimator_
print(f"chosen robust_eps: {best}")
print(f"clean accuracy:     {model.score(X_test, y_test):.3f}")
print(f"under attack:       {robust_accuracy_score(model, X_test, y_test, eps=EPS):.3f}")
print(f"certified:          {certified_knn_accuracy(model, X_test, y_test, EPS):.3f}")
print("The true robust accuracy lies between the certified and the attacked figure.")
