"""skrobust's default strong kNN attack in the adversary's calling convention, so that
``run_adversary.py --other skrobust_cascade:cascade`` compares it point by point with the
independent attacks."""

from sklearn.frozen import FrozenEstimator

from skrobust import CascadeKNNAttack


def cascade(pipeline, X, y, eps, feature_range):
    """``CascadeKNNAttack`` with its default members (the robust scorer's attack)."""
    attack = CascadeKNNAttack(
        FrozenEstimator(pipeline), eps=eps, feature_range=feature_range, random_state=0
    )
    return attack.fit().attack(X, y).adversarial[0]


def cascade_deep(pipeline, X, y, eps, feature_range):
    """The default members plus a final ``MaxMarginLP(max_lps=50)`` on the points left."""
    from skrobust import MaxMarginLP
    from skrobust._knn_attack import default_members

    members = default_members() + [("lp_deep", MaxMarginLP(max_lps=50, n_candidates=50))]
    attack = CascadeKNNAttack(
        FrozenEstimator(pipeline), eps=eps, members=members, feature_range=feature_range,
        random_state=0,
    )  # fmt: skip
    return attack.fit().attack(X, y).adversarial[0]


def cascade_deeper(pipeline, X, y, eps, feature_range):
    """The default members plus long PGD with ten restarts and ``MaxMarginLP(max_lps=50)``."""
    from skrobust import MarginPGD, MaxMarginLP
    from skrobust._knn_attack import default_members

    members = default_members() + [
        ("pgd_deep", MarginPGD(max_iter=100, n_restarts=10)),
        ("lp_deep", MaxMarginLP(max_lps=50, n_candidates=50)),
    ]
    attack = CascadeKNNAttack(
        FrozenEstimator(pipeline), eps=eps, members=members, feature_range=feature_range,
        random_state=0,
    )  # fmt: skip
    return attack.fit().attack(X, y).adversarial[0]
