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
