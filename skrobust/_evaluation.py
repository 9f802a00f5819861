"""Robustness of a kNN over a learned metric: clean, attacked and certified accuracy.

Shared by ``python -m skrobust`` and the benchmark scripts, so every table in the project
measures the same thing the same way.
"""

from sklearn.frozen import FrozenEstimator

from ._attack import AckMetricAttack
from ._knn_certificate import certified_knn_accuracy
from ._learner import BEST_DEFENCE  # noqa: F401  (re-exported for the report and benchmarks)
from ._threads import single_threaded
from .metrics import robust_accuracy_score

# The paper's kNN attack, table 5: step 0.01, 20 iterations, M = 10 references.
PAPER_ATTACK = {"step_size": 0.01, "max_iter": 20, "n_neighbors": 10}


# The paper's defence with its default weights alpha_j = 1/k (eq. 21), k = 3.
PAPER_DEFENCE = {"regularization": "eig", "eig_k": 3, "alpha": 1.0}


def eq23_ensemble(eps):
    """The project's former "strong" attack: an ensemble of eq. (23) runs (longer runs with
    steps scaled to ``eps``, more references, five seeded random restarts). Kept to compare
    with :class:`~skrobust.CascadeKNNAttack`, which replaced it; a point counts as robust only
    if it survives every member."""
    if eps == 0:
        return [PAPER_ATTACK]
    return [
        PAPER_ATTACK,
        {"step_size": eps / 10, "max_iter": 100, "n_neighbors": 10},
        {"step_size": eps / 4, "max_iter": 100, "n_neighbors": 20},
        {"step_size": eps / 20, "max_iter": 200, "n_neighbors": 30},
        {
            "step_size": eps / 10,
            "max_iter": 100,
            "n_neighbors": 10,
            "n_restarts": 5,
            "random_state": 0,
        },
    ]


def attacked_accuracy(pipeline, X, y, eps, attack="strong", feature_range=(0.0, 1.0)):
    """Accuracy of a fitted ``Pipeline(metric, KNeighborsClassifier)`` on adversarial points:
    an upper bound on its true robust accuracy.

    ``attack`` is ``"strong"`` (:class:`~skrobust.CascadeKNNAttack`, its restarts seeded
    with 0 so tables are reproducible), ``"paper"`` (eq. 23), a ``CascadeKNNAttack`` used as
    a template, or a list of :class:`~skrobust.AckMetricAttack` parameter dicts (an ensemble:
    a point counts as correct only if it is classified correctly clean and after every
    member, each starting from the clean point).
    """
    # Small products run faster on one BLAS thread, above all on a busy machine.
    with single_threaded(X.size < 1e6):
        if not isinstance(attack, list):
            params = {"random_state": 0} if attack == "strong" else None
            return float(
                robust_accuracy_score(
                    pipeline, X, y, eps=eps, attack=attack, feature_range=feature_range,
                    attack_params=params,
                )
            )  # fmt: skip
        frozen = FrozenEstimator(pipeline)
        correct = pipeline.predict(X) == y
        for params in attack:
            member = AckMetricAttack(
                frozen, eps=eps, mode="knn", feature_range=feature_range, **params
            ).fit()
            result = member.attack(X[correct], y[correct])
            correct[correct] = result.predictions_after[0] == y[correct]
            if not correct.any():
                break
    return float(correct.mean())


def certified_accuracy(pipeline, X, y, eps):
    """Fraction of ``X`` classified correctly with a vote that provably cannot flip."""
    return float(certified_knn_accuracy(pipeline, X, y, eps))
