"""Certified kNN: points whose vote provably cannot flip within an L-infinity budget.

For a kNN classifier over a Mahalanobis metric (a fitted ``Pipeline(metric step,
KNeighborsClassifier)``), moving a test point ``x`` by ``||d||_inf <= eps`` moves every
distance to a reference by at most ``eps K`` (triangle bound, ``K`` an upper bound on
``||W||_{inf->2}``): ``r_j' in [l_j, u_j] = [r_j - eps K, r_j + eps K]``. The certificate
treats the ``r_j'`` as free within these intervals (a relaxation, so it is sound).

Why the vote cannot flip. Let ``S'`` be the ``k`` nearest references after the attack and
``rho = max_{j in S'} r_j'``. Every reference with ``r_j' < rho`` is in ``S'`` and ``S'``
holds only references with ``r_j' <= rho``; so ``#{u_j < rho} <= k - 1`` and
``#{l_j <= rho} >= k``, that is ``rho`` lies in ``[l_(k), u_(k)]`` (the ``k``-th smallest
lower and upper ends). For the predicted class ``c`` and a rival ``c'``:

- ``n_c >= A(rho) = max(#{j in c: u_j < rho}, k - #{j not in c: l_j <= rho})``,
- ``n_c' <= min(B(rho), k - n_c)`` with ``B(rho) = #{j in c': l_j <= rho}``.

So ``n_c' < n_c`` whenever ``B(rho) < A(rho)`` or ``2 A(rho) > k``. The point is certified
when this holds for every rival and every ``rho`` in ``[l_(k), u_(k)]``; the counts are step
functions whose worst values are at the interval ends ``l_j``, ``u_j``, which are all that
need checking. A tie (``n_c' = n_c``) is never certified, whatever the classifier's
tie-breaking would do.
"""

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._bounds import CERTIFICATE_RTOL, metric_norms
from ._mahalanobis import MahalanobisMetric, mahalanobis_metric, unwrap_frozen
from ._validation import _as_finite_float_array, check_eps, check_knn_classifier

__all__ = ["certified_knn_accuracy", "certify_knn", "make_certified_scorer"]

# Rows of test points whose distances to all references are held at once.
_CHUNK_ELEMENTS = 1 << 22


def _split_knn_pipeline(estimator):
    """Return ``(metric, knn)`` of a fitted ``Pipeline(..., KNeighborsClassifier)``."""
    estimator = unwrap_frozen(estimator)
    if isinstance(estimator, KNeighborsClassifier):
        knn, metric = estimator, None
    elif isinstance(estimator, Pipeline) and isinstance(
        unwrap_frozen(estimator.steps[-1][1]), KNeighborsClassifier
    ):
        knn = unwrap_frozen(estimator.steps[-1][1])
        metric = mahalanobis_metric(estimator[:-1]) if len(estimator.steps) > 1 else None
    else:
        raise TypeError(
            f"{type(estimator).__name__} is not a kNN classifier over a Mahalanobis metric: "
            "expected a fitted Pipeline(metric step, KNeighborsClassifier) (affine scalers "
            "may precede the metric step), or a KNeighborsClassifier on raw features."
        )
    check_is_fitted(knn)
    check_knn_classifier(knn, "The kNN certificate")
    if metric is None:
        n = knn.n_features_in_
        metric = MahalanobisMetric(np.eye(n), np.zeros(n))
    return metric, knn


def _certify_point(lower, upper, ref_classes, c, n_classes, k):
    """The certificate of module docstring for one point (see there)."""
    l_k = np.partition(lower, k - 1)[k - 1]
    u_k = np.partition(upper, k - 1)[k - 1]
    rho = np.concatenate([lower, upper])
    rho = rho[(rho >= l_k) & (rho <= u_k)]
    own = ref_classes == c
    at_least = np.maximum(
        np.searchsorted(np.sort(upper[own]), rho, side="left"),
        k - np.searchsorted(np.sort(lower[~own]), rho, side="right"),
    )
    safe = 2 * at_least > k
    if safe.all():
        return True
    for rival in range(n_classes):
        if rival == c:
            continue
        at_most = np.searchsorted(np.sort(lower[ref_classes == rival]), rho, side="right")
        if not np.all(safe | (at_most < at_least)):
            return False
    return True


def certify_knn(estimator, X, eps):
    """Whether the kNN vote at each point provably survives every attack within ``eps``.

    Sound (no attack with ``||d||_inf <= eps`` changes the predicted class of a certified
    point), though loose: distances are bounded by the triangle bound
    ``|r_j' - r_j| <= eps K`` and treated as independent. The argument is in the module
    docstring of ``skrobust._knn_certificate``. A relative safety margin of ``1e-9`` widens
    the intervals, so float rounding and ties are never certified. No box is assumed (a
    box only weakens the attacker), so test points need not lie in one.

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        A ``Pipeline`` of a Mahalanobis metric step (with affine scalers before it, if any)
        and a ``KNeighborsClassifier`` with ``weights="uniform"`` and the Euclidean metric;
        or such a ``KNeighborsClassifier`` alone (the identity metric); optionally in a
        ``FrozenEstimator``.
    X : array-like of shape (n_samples, n_features)
        Test points.
    eps : float
        The L-infinity budget of the test point, ``>= 0``.

    Returns
    -------
    certified : ndarray of bool, shape (n_samples,)

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.metrics import certify_knn
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(3))
    >>> pipe = pipe.fit(X[::2], y[::2])
    >>> certified = certify_knn(pipe, X[1::2], eps=0.01)
    >>> certified.shape, bool(certified.mean() >= certify_knn(pipe, X[1::2], 0.05).mean())
    ((89,), True)
    """
    eps_values, scalar = check_eps(eps)
    if not scalar:
        raise ValueError(f"eps must be a single number, got {eps!r}.")
    eps = float(eps_values[0])
    metric, knn = _split_knn_pipeline(estimator)
    X = _as_finite_float_array(X, "X")
    if X.ndim != 2 or X.shape[1] != metric.n_features:
        raise ValueError(
            f"X must have shape (n_samples, {metric.n_features}), got shape {X.shape}."
        )
    reach = eps * metric_norms(metric).inf_to_2
    references = np.asarray(knn._fit_X, dtype=np.float64)
    ref_classes = np.asarray(knn._y)
    k = min(knn.n_neighbors, references.shape[0])
    n_classes = len(knn.classes_)
    Z = metric.transform(X)
    ref_sq = np.einsum("ij,ij->i", references, references)
    certified = np.zeros(X.shape[0], dtype=bool)
    rows = max(1, _CHUNK_ELEMENTS // max(1, references.shape[0]))
    for start in range(0, X.shape[0], rows):
        Zc = Z[start : start + rows]
        sq = np.einsum("ij,ij->i", Zc, Zc)[:, None] + ref_sq - 2.0 * Zc @ references.T
        dist = np.sqrt(np.maximum(sq, 0.0))
        # Widen by the float error of the expanded squares, plus the relative margin.
        slack = CERTIFICATE_RTOL * (dist + reach) + np.sqrt(
            1e-12 * (np.abs(sq) + ref_sq + np.einsum("ij,ij->i", Zc, Zc)[:, None])
        )
        lower = np.maximum(dist - reach - slack, 0.0)
        upper = dist + reach + slack
        # The vote of the clean point. Where it is ambiguous (tied distances or counts) the
        # certificate fails anyway, so it agrees with knn.predict wherever it certifies.
        nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
        votes = np.zeros((Zc.shape[0], n_classes), dtype=np.int64)
        np.add.at(votes, (np.arange(Zc.shape[0])[:, None], ref_classes[nearest]), 1)
        predicted = votes.argmax(axis=1)
        for i in range(Zc.shape[0]):
            certified[start + i] = _certify_point(
                lower[i], upper[i], ref_classes, predicted[i], n_classes, k
            )
    return certified


def certified_knn_accuracy(estimator, X, y, eps):
    """Fraction of points both correctly classified and certified at ``eps``.

    A lower bound on the accuracy under any attack within the budget; accuracy under a
    particular attack (``skrobust.metrics.make_robust_scorer``) is an upper bound.

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        See :func:`certify_knn`.
    X : array-like of shape (n_samples, n_features)
        Test points.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        The L-infinity budget of the test point, ``>= 0``.

    Returns
    -------
    certified_accuracy : float

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.metrics import certified_knn_accuracy
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(3))
    >>> pipe = pipe.fit(X[::2], y[::2])
    >>> clean = pipe.score(X[1::2], y[1::2])
    >>> bool(certified_knn_accuracy(pipe, X[1::2], y[1::2], eps=0.01) <= clean)
    True
    """
    certified = certify_knn(estimator, X, eps)
    y = np.asarray(y)
    if y.shape != certified.shape:
        raise ValueError(f"y must have shape {certified.shape}, got {y.shape}.")
    return float(np.mean(certified & (estimator.predict(X) == y)))


def make_certified_scorer(eps=0.1):
    """A scorer of certified kNN accuracy at ``eps``, for ``GridSearchCV`` and friends.

    Parameters
    ----------
    eps : float, default=0.1
        The L-infinity budget.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returns :func:`certified_knn_accuracy` of the fitted
        pipeline on ``(X, y)``. It assumes no box, so test folds outside the training box
        score normally (never NaN).

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.metrics import make_certified_scorer
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(max_iter=50), KNeighborsClassifier(3))
    >>> search = GridSearchCV(pipe, {"robustmetriclearner__alpha": [0.0, 1.0]}, cv=2,
    ...                       scoring={"clean": "accuracy",
    ...                                "certified": make_certified_scorer(eps=0.01)},
    ...                       refit="certified").fit(X, y)
    >>> bool(0.0 <= search.best_score_ <= 1.0)
    True
    """
    eps_values, scalar = check_eps(eps)
    if not scalar:
        raise ValueError(f"eps must be a single number, got {eps!r}.")
    eps = float(eps_values[0])

    def certified_scorer(estimator, X, y):
        return certified_knn_accuracy(estimator, X, y, eps)

    certified_scorer.eps = eps
    return certified_scorer
