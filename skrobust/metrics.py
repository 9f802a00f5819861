"""Robust scores and scorers: accuracy and success rates under the AckMetric attack.

:func:`make_robust_scorer` plugs the kNN attack (eq. 23) into ``GridSearchCV``:
``scoring={"clean": "accuracy", "robust": make_robust_scorer(eps=0.1)}``. Accuracy under an
attack is an upper bound on the true robust accuracy (a stronger attack can only lower it).
"""

import numpy as np
from sklearn.frozen import FrozenEstimator

from ._attack import AckMetricAttack
from ._knn_certificate import make_certified_scorer
from .certificates import certified_knn_accuracy, certify_knn

__all__ = [
    "attack_success_rate",
    "certified_knn_accuracy",
    "certify_knn",
    "make_certified_scorer",
    "make_robust_scorer",
    "robust_accuracy_score",
]


def _scalar_or_array(values, eps):
    return float(values[0]) if np.ndim(eps) == 0 else values


def robust_accuracy_score(estimator, X, y, *, eps=0.1, feature_range=None, **attack_params):
    """Accuracy of a fitted kNN pipeline on points attacked by eq. (23).

    Parameters
    ----------
    estimator : fitted Pipeline
        Affine scalers (optional), a Mahalanobis metric step and a ``KNeighborsClassifier``,
        fitted. The attack uses the classifier's stored, already embedded references.
    X : array-like of shape (n_samples, n_features)
        Test points.
    y : array-like of shape (n_samples,)
        Their true labels: the attack pushes each point away from its own class.
    eps : float or array-like of float, default=0.1
        Budget(s) of the attack (L-infinity, in the raw input space).
    feature_range : tuple (lo, hi) or None, default=None
        The box of the attack. ``None`` (no box) keeps a test fold that strays outside the
        training box from failing; pass ``(0.0, 1.0)`` for data known to lie in the unit box.
    **attack_params
        Further parameters of :class:`~skrobust.AckMetricAttack` (``step_size``,
        ``max_iter``, ``n_neighbors``, ...).

    Returns
    -------
    score : float, or ndarray of shape (n_eps,) when ``eps`` is a list
        Fraction of points whose adversarial version is classified as ``y``.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust.datasets import load_wine
    >>> from skrobust.metrics import robust_accuracy_score
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0),
    ...                      KNeighborsClassifier(3)).fit(X[::2], y[::2])
    >>> scores = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=[0.0, 0.1])
    >>> bool(scores[0] == pipe.score(X[1::2], y[1::2])), bool(scores[1] <= scores[0])
    (True, True)
    """
    attack = AckMetricAttack(
        FrozenEstimator(estimator), mode="knn", eps=eps, feature_range=feature_range,
        **attack_params,
    ).fit()  # fmt: skip
    result = attack.attack(X, y)
    y = np.asarray(y)
    return _scalar_or_array((result.predictions_after == y[np.newaxis]).mean(axis=1), eps)


def attack_success_rate(estimator, X, y=None, *, eps=0.1, mode="pairs", **attack_params):
    """Fraction of inputs whose prediction the AckMetric attack changes.

    Parameters
    ----------
    estimator : fitted model
        What :class:`~skrobust.AckMetricAttack` attacks (a Mahalanobis model, or a kNN
        pipeline in ``mode="knn"``).
    X : array-like
        Pairs ``(n_pairs, 2, n_features)``, points (kNN) or triplets.
    y : array-like of shape (n_samples,), default=None
        kNN mode: true labels (``None``: the classifier's predictions).
    eps : float or array-like of float, default=0.1
        Budget(s) of the attack (L-infinity, in the raw input space).
    mode : {"pairs", "knn", "triplets"}, default="pairs"
    **attack_params
        Further parameters of :class:`~skrobust.AckMetricAttack` (``threshold``,
        ``budget``, ``feature_range``, ...).

    Returns
    -------
    rate : float, or ndarray of shape (n_eps,) when ``eps`` is a list

    Examples
    --------
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from skrobust.datasets import load_wine, make_pairs
    >>> from skrobust.metrics import attack_success_rate
    >>> X, y = load_wine()
    >>> nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)
    >>> pairs, _, _ = make_pairs(X, y, 50, random_state=0)
    >>> rates = attack_success_rate(nca, pairs, eps=[0.0, 0.2], threshold=25.0)
    >>> float(rates[0]), bool(rates[1] > 0)
    (0.0, True)
    """
    attack = AckMetricAttack(FrozenEstimator(estimator), mode=mode, eps=eps, **attack_params)
    return _scalar_or_array(attack.fit().attack(X, y).success_rate, eps)


def make_robust_scorer(eps=0.1, **attack_params):
    """A scorer for ``GridSearchCV``: accuracy of a kNN pipeline under the kNN attack.

    The scorer attacks the fitted pipeline itself (eq. 23 against the kNN's stored
    references, each test point pushed away from its true class) and returns the accuracy
    on the adversarial points. Its default box is ``None``, so a test fold outside the box
    the training fold was scaled to neither fails nor scores NaN.

    Parameters
    ----------
    eps : float, default=0.1
        Budget of the attack.
    **attack_params
        Passed to :func:`robust_accuracy_score` (``feature_range``, ``step_size``,
        ``max_iter``, ``n_neighbors``, ...).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, greater is better.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust.datasets import load_wine
    >>> from skrobust.metrics import make_robust_scorer
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0),
    ...                      KNeighborsClassifier())
    >>> search = GridSearchCV(pipe, {"kneighborsclassifier__n_neighbors": [1, 5]}, cv=3,
    ...                       scoring={"clean": "accuracy", "robust": make_robust_scorer()},
    ...                       refit="robust").fit(X, y)
    >>> sorted(search.best_params_)
    ['kneighborsclassifier__n_neighbors']
    """

    def robust_scorer(estimator, X, y):
        return robust_accuracy_score(estimator, X, y, eps=eps, **attack_params)

    robust_scorer.eps = eps
    robust_scorer.attack_params = dict(attack_params)
    return robust_scorer
