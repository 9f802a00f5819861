"""Robust scores and scorers: accuracy and success rates under attack.

:func:`make_robust_scorer` plugs a kNN attack into ``GridSearchCV``:
``scoring={"clean": "accuracy", "robust": make_robust_scorer(eps=0.1)}``, by default the
strong :class:`~skrobust.CascadeKNNAttack` (``attack="paper"``: eq. 23). Accuracy under an
attack is an upper bound on the true robust accuracy (a stronger attack can only lower it).
"""

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._attack import AckMetricAttack
from ._knn_attack import CascadeKNNAttack, _check_members
from ._knn_certificate import make_certified_scorer
from ._target import as_knn_target
from ._validation import check_eps, check_feature_range
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


def _robust_attack(attack, attack_params, eps, feature_range):
    """The unfitted attack a robust score runs (``estimator=None``), validated now."""
    check_eps(eps)
    check_feature_range(feature_range)
    if attack_params is not None and not isinstance(attack_params, dict):
        raise TypeError(
            f"attack_params must be a dict or None, got {type(attack_params).__name__}."
        )
    params = dict(attack_params or {})
    for name in ("estimator", "eps", "feature_range", "mode"):
        if name in params:
            raise ValueError(
                f"attack_params may not set {name!r}: the robust score sets it "
                "(eps=, feature_range= are parameters of the score itself)."
            )
    if isinstance(attack, str):
        if attack == "strong":
            template = CascadeKNNAttack(None)
        elif attack == "paper":
            template = AckMetricAttack(None, mode="knn")
        else:
            raise ValueError(f"attack must be 'strong', 'paper' or an attack, got {attack!r}.")
    elif isinstance(attack, CascadeKNNAttack) or (
        isinstance(attack, AckMetricAttack) and attack.mode == "knn"
    ):
        template = clone(attack, safe=False)
    else:
        raise TypeError(
            "attack must be 'strong', 'paper', a CascadeKNNAttack or an "
            f"AckMetricAttack(mode='knn'), got {attack!r}."
        )
    try:
        template.set_params(**params, eps=eps, feature_range=feature_range)
    except ValueError as exc:
        raise ValueError(
            f"attack_params: {exc} (they are parameters of {type(template).__name__})"
        ) from None
    template._validate_params()
    if isinstance(template, CascadeKNNAttack):
        _check_members(template.members)
    return template


def robust_accuracy_score(
    estimator, X, y, *, eps=0.1, attack="strong", feature_range=None, attack_params=None
):
    """Accuracy of a fitted kNN pipeline on adversarial points: an upper bound on the true
    robust accuracy (a stronger attack can only lower it).

    Parameters
    ----------
    estimator : fitted Pipeline
        Affine scalers (optional), a Mahalanobis metric step and a ``KNeighborsClassifier``,
        fitted. The attack uses the classifier's stored, already embedded references.
    X : array-like of shape (n_samples, n_features)
        Test points.
    y : array-like of shape (n_samples,)
        Their true labels: the attack pushes each point away from its own class. A label
        the classifier has never seen (a class absent from a training fold) counts as wrong.
    eps : float or array-like of float, default=0.1
        Budget(s) of the attack (L-infinity, in the raw input space).
    attack : {"strong", "paper"}, CascadeKNNAttack or AckMetricAttack, default="strong"
        ``"strong"``: :class:`~skrobust.CascadeKNNAttack` with its default members (the
        paper's attack, targeted line search, margin PGD, max-margin LPs). ``"paper"``:
        eq. (23), :class:`~skrobust.AckMetricAttack` in ``mode="knn"`` (20 steps of 0.01),
        which overstates robustness. An attack instance is used as a template (cloned, its
        ``estimator``, ``eps`` and ``feature_range`` replaced), for example a
        ``CascadeKNNAttack`` with members of your own.
    feature_range : tuple (lo, hi) or None, default=None
        The box of the attack. ``None`` (no box) keeps a test fold that strays outside the
        training box from failing; pass ``(0.0, 1.0)`` for data known to lie in the unit box.
    attack_params : dict or None, default=None
        Parameters of the attack class ``attack`` names (``CascadeKNNAttack``: ``members``,
        ``random_state``; ``AckMetricAttack``: ``step_size``, ``max_iter``,
        ``n_neighbors``, ...).

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
    >>> scores = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=[0.0, 0.1],
    ...                                attack_params={"random_state": 0})
    >>> bool(scores[0] == pipe.score(X[1::2], y[1::2])), bool(scores[1] <= scores[0])
    (True, True)
    >>> paper = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=0.1, attack="paper")
    >>> bool(scores[1] <= paper)
    True
    """
    template = _robust_attack(attack, attack_params, eps, feature_range)
    return _robust_score(template, estimator, X, y, eps)


def _robust_score(template, estimator, X, y, eps):
    y = column_or_1d(y)
    check_consistent_length(X, y)
    # A label the classifier never saw (a class missing from a training fold) is wrong
    # whatever the input: only the others are attacked.
    seen = np.isin(y, as_knn_target(estimator).classes)
    correct = np.zeros((len(check_eps(eps)[0]), len(y)), dtype=bool)
    if seen.any():
        attack = clone(template).set_params(estimator=FrozenEstimator(estimator)).fit()
        result = attack.attack(_safe_indexing(X, np.flatnonzero(seen)), y[seen])
        correct[:, seen] = result.predictions_after == y[seen][np.newaxis]
    return _scalar_or_array(correct.mean(axis=1), eps)


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


class _RobustScorer:
    """``scorer(estimator, X, y)``: accuracy under a kNN attack (picklable, for joblib)."""

    def __init__(self, template, eps):
        self._template = template
        self.eps = eps

    @property
    def attack(self):
        """The (unfitted) attack run on each call."""
        return self._template

    def __call__(self, estimator, X, y):
        return _robust_score(self._template, estimator, X, y, self.eps)

    def __repr__(self):
        return f"make_robust_scorer(eps={self.eps!r}, attack={self._template!r})"


def make_robust_scorer(eps=0.1, *, attack="strong", feature_range=None, attack_params=None):
    """A scorer for ``GridSearchCV``: accuracy of a kNN pipeline under a kNN attack.

    The scorer attacks the fitted pipeline itself (against the kNN's stored references,
    each test point pushed away from its true class) and returns the accuracy on the
    adversarial points, an upper bound on the true robust accuracy. Its default box is
    ``None``, so a test fold outside the box the training fold was scaled to neither fails
    nor scores NaN; a test point whose label the training fold never had counts as wrong.
    Every parameter is checked here, when the scorer is made, not when it first scores.

    Parameters
    ----------
    eps : float, default=0.1
        Budget of the attack.
    attack : {"strong", "paper"}, CascadeKNNAttack or AckMetricAttack, default="strong"
        As in :func:`robust_accuracy_score`: ``"strong"`` is
        :class:`~skrobust.CascadeKNNAttack`, ``"paper"`` eq. (23), which a search would
        chase (it overstates robustness).
    feature_range : tuple (lo, hi) or None, default=None
        The box of the attack.
    attack_params : dict or None, default=None
        Parameters of the attack class ``attack`` names.

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
    >>> robust = make_robust_scorer(eps=0.1, attack_params={"random_state": 0})
    >>> search = GridSearchCV(pipe, {"kneighborsclassifier__n_neighbors": [1, 5]}, cv=3,
    ...                       scoring={"clean": "accuracy", "robust": robust},
    ...                       refit="robust").fit(X, y)
    >>> sorted(search.best_params_)
    ['kneighborsclassifier__n_neighbors']
    """
    _, scalar = check_eps(eps)
    if not scalar:
        raise ValueError(f"eps of a scorer must be a single number, got {eps!r}.")
    return _RobustScorer(_robust_attack(attack, attack_params, eps, feature_range), float(eps))
