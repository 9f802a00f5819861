"""Metric math, and the adapter that reads a Mahalanobis metric from any fitted model.

Everything in skrobust that needs ``M`` or ``W`` of somebody's model goes through
:func:`mahalanobis_metric`: skrobust's own learners, metric-learn's Mahalanobis learners,
scikit-learn's :class:`~sklearn.neighbors.NeighborhoodComponentsAnalysis`, any of them
wrapped in :class:`~sklearn.frozen.FrozenEstimator`, and a fitted
:class:`~sklearn.pipeline.Pipeline` of affine scalers followed by one of them.
"""

from dataclasses import dataclass

import numpy as np
from metric_learn.base_metric import MahalanobisMixin, _PairsClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "MahalanobisMetric",
    "unwrap_frozen",
    "TIE_RTOL",
    "best_threshold",
    "calibrate_threshold",
    "decision_threshold",
    "mahalanobis_metric",
    "squared_pair_distances",
    "threshold_ties",
]

# A pair whose D lies within TIE_RTOL * |threshold| of the threshold is a tie. Two correct
# computations of D differ by a few ulps (a batch of 60 or one pair, BLAS summing in another
# order, metric-learn's embedding or skrobust's difference), and metric-learn calibrates
# threshold_ at a training pair's own distance, so exact ties are common: a tie is predicted
# similar (the D <= threshold side) in every batch, and never certified (the certificates'
# margin, CERTIFICATE_RTOL * (|threshold| + D), is at least as wide).
TIE_RTOL = 1e-9


@dataclass(frozen=True, eq=False)
class MahalanobisMetric:
    """A linear metric ``D(x, x') = ||W (x - x')||^2`` in the caller's input space.

    Parameters
    ----------
    components : ndarray of shape (n_components, n_features)
        ``W``, with every affine scaler in front of the metric step composed in
        (``W diag(a)``), so distances are those of the raw inputs.
    bias : ndarray of shape (n_components,)
        Offset of the embedding: the model's own ``transform(x)`` equals
        ``components @ x + bias``. It cancels in every distance.
    threshold : float or None
        The model's own decision threshold on the **squared** distance (a similar pair has
        ``D <= threshold``), or ``None`` when the model has none. metric-learn's pair learners
        keep ``threshold_`` on the unsquared distance; it is squared here.
    """

    components: np.ndarray
    bias: np.ndarray
    threshold: float | None = None

    @property
    def n_features(self):
        return self.components.shape[1]

    @property
    def metric_matrix(self):
        """``M = W^T W``, of shape (n_features, n_features)."""
        return self.components.T @ self.components

    def transform(self, X):
        """Embed points: ``X @ W.T + bias`` (the model's own ``transform``)."""
        return np.asarray(X, dtype=np.float64) @ self.components.T + self.bias

    def pair_distances(self, pairs):
        """Squared distances ``D`` of an array of pairs ``(n_pairs, 2, n_features)``."""
        return squared_pair_distances(self.components, pairs)


def squared_pair_distances(components, pairs):
    """``D = ||W (a - b)||^2`` for each pair ``(a, b)`` of ``pairs``."""
    diff = (pairs[:, 0, :] - pairs[:, 1, :]) @ components.T
    return np.einsum("ij,ij->i", diff, diff)


def decision_threshold(threshold):
    """The threshold on ``D`` that decides pairs: similar iff ``D <= decision_threshold``.

    ``threshold`` widened by the tie band, so a pair within rounding of the threshold is
    predicted similar whatever batch its distance was computed in.
    """
    return threshold + TIE_RTOL * abs(threshold)


def threshold_ties(D, threshold):
    """Which squared distances ``D`` are ties: within ``TIE_RTOL * |threshold|`` of it."""
    return np.abs(np.asarray(D, dtype=np.float64) - threshold) <= TIE_RTOL * abs(threshold)


_AFFINE_SCALERS = (MinMaxScaler, StandardScaler, MaxAbsScaler)


def is_metric_learn_pair_learner(estimator):
    """Whether ``estimator`` is one of metric-learn's pair learners (ITML, MMC, SDML, ...)."""
    return isinstance(estimator, _PairsClassifierMixin)


def _metric_learn_threshold(estimator):
    """metric-learn's pair learners predict similar iff ``sqrt(D) <= threshold_``."""
    if is_metric_learn_pair_learner(estimator) and hasattr(estimator, "threshold_"):
        t = float(estimator.threshold_)
        # A negative threshold on sqrt(D) means "never similar"; sign * t^2 keeps that.
        return float(np.sign(t) * t * t)
    return None


def _scaler_affine(scaler):
    """Return ``(a, c)`` such that ``scaler.transform(x) == a * x + c``."""
    check_is_fitted(scaler)
    n = scaler.n_features_in_
    if isinstance(scaler, MinMaxScaler):
        if scaler.clip:
            raise ValueError(
                "A MinMaxScaler with clip=True is not affine, so it cannot be composed into "
                "the metric; use clip=False."
            )
        return scaler.scale_.astype(np.float64), scaler.min_.astype(np.float64)
    if isinstance(scaler, MaxAbsScaler):
        return 1.0 / scaler.scale_, np.zeros(n)
    # StandardScaler: (x - mean_) / scale_, either part possibly switched off.
    a = np.ones(n) if scaler.scale_ is None else 1.0 / scaler.scale_
    mean = np.zeros(n) if scaler.mean_ is None or not scaler.with_mean else scaler.mean_
    return a, -mean * a


def _metric_step(estimator):
    """Return ``(W, threshold)`` of a single metric step, or raise a TypeError."""
    if getattr(estimator, "_skrobust_mahalanobis", False):
        return estimator._mahalanobis_parts()
    if isinstance(estimator, MahalanobisMixin):
        check_is_fitted(estimator, "components_")
        return (
            np.asarray(estimator.components_, dtype=np.float64),
            _metric_learn_threshold(estimator),
        )
    if isinstance(estimator, NeighborhoodComponentsAnalysis):
        check_is_fitted(estimator, "components_")
        return np.asarray(estimator.components_, dtype=np.float64), None
    raise TypeError(
        f"{type(estimator).__name__} is not a Mahalanobis model. Expected a fitted skrobust "
        "learner, a metric-learn Mahalanobis learner (LMNN, ITML, NCA, ...), scikit-learn's "
        "NeighborhoodComponentsAnalysis, one of these in a FrozenEstimator, or a Pipeline of "
        "affine scalers (MinMaxScaler, StandardScaler, MaxAbsScaler) ending with one."
    )


def unwrap_frozen(estimator):
    """The model inside any number of :class:`~sklearn.frozen.FrozenEstimator` wrappers."""
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def mahalanobis_metric(estimator):
    """Read the linear metric of a fitted model, in the model's raw input space.

    Parameters
    ----------
    estimator : estimator
        A fitted Mahalanobis model: a skrobust learner or pair classifier, a metric-learn
        Mahalanobis learner (``LMNN``, ``ITML``/``ITML_Supervised``, ``SCML_Supervised``,
        ``MMC``/``MMC_Supervised``, ``LFDA``, ``NCA``, ...), scikit-learn's
        ``NeighborhoodComponentsAnalysis``; or such a model in a ``FrozenEstimator``; or a
        fitted ``Pipeline`` of affine scalers (``MinMaxScaler``, ``StandardScaler``,
        ``MaxAbsScaler``) followed by one metric step. Scalers compose into the metric
        (``W diag(a)``), so distances are those of the raw inputs.

    Returns
    -------
    metric : MahalanobisMetric
        ``W`` (``components``), the embedding offset and the model's own threshold on the
        squared distance, if it has one.

    Raises
    ------
    TypeError
        If ``estimator`` is not a Mahalanobis model.
    sklearn.exceptions.NotFittedError
        If it is not fitted.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from skrobust import mahalanobis_metric
    >>> X, y = load_iris(return_X_y=True)
    >>> nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)
    >>> metric = mahalanobis_metric(nca)
    >>> metric.components.shape, metric.threshold
    ((4, 4), None)
    """
    estimator = unwrap_frozen(estimator)
    if not isinstance(estimator, Pipeline):
        W, threshold = _metric_step(estimator)
        return MahalanobisMetric(W, np.zeros(W.shape[0]), threshold)

    steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    if not steps:
        raise TypeError("The pipeline has no metric step.")
    *scalers, last = steps
    a, c = None, None
    for scaler in scalers:
        scaler = unwrap_frozen(scaler)
        if not isinstance(scaler, _AFFINE_SCALERS):
            raise TypeError(
                f"Pipeline step {type(scaler).__name__} cannot be composed into a Mahalanobis "
                "metric: only MinMaxScaler, StandardScaler and MaxAbsScaler may precede the "
                "metric step, and the metric step must be the last one."
            )
        a2, c2 = _scaler_affine(scaler)
        a, c = (a2, c2) if a is None else (a * a2, c * a2 + c2)
    inner = mahalanobis_metric(last)
    if a is None:
        return inner
    W = inner.components
    return MahalanobisMetric(W * a[np.newaxis, :], W @ c + inner.bias, inner.threshold)


def best_threshold(distances, y):
    """The threshold on ``distances`` that classifies labelled pairs most accurately.

    A pair is predicted similar when its distance is ``<= decision_threshold(threshold)``
    (the tie band included). Among all splits of the sorted distances (only between values
    farther apart than the tie band, so ties stay on one side), the one with the highest
    accuracy wins; the threshold is the midpoint of the gap (ties broken toward the smaller
    threshold), or the lower value when the midpoint would reach the upper one's tie band.
    """
    order = np.argsort(distances, kind="stable")
    d, lab = distances[order], y[order]
    n = len(d)
    # correct[k]: pairs right when the first k (in sorted order) are predicted similar.
    correct = np.concatenate(([0], np.cumsum(lab == 1))) + np.concatenate(
        (np.cumsum((lab == -1)[::-1])[::-1], [0])
    )
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = d[1:] > decision_threshold(d[:-1])
    k = int(np.flatnonzero(valid)[np.argmax(correct[valid])])
    if k == 0:
        return float(d[0] - 1.0)
    if k == n:
        return float(d[-1])
    middle = (d[k - 1] + d[k]) / 2.0
    # Adjacent floats: the midpoint rounds onto d[k] (or its tie band).
    return float(middle if decision_threshold(middle) < d[k] else d[k - 1])


def calibrate_threshold(estimator, pairs, y):
    """Calibrate a threshold on the squared distance for accuracy on labelled pairs.

    Parameters
    ----------
    estimator : fitted Mahalanobis model
        Anything :func:`mahalanobis_metric` reads.
    pairs : array-like of shape (n_pairs, 2, n_features)
    y : array-like of shape (n_pairs,)
        ``+1`` similar, ``-1`` dissimilar.

    Returns
    -------
    threshold : float
        A threshold on the **squared** distance ``D``: pairs with ``D <= threshold`` are
        predicted similar. It maximises accuracy on ``(pairs, y)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from skrobust import calibrate_threshold, mahalanobis_metric
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [0.9, 1.0]])
    >>> nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X, [0, 0, 1, 1])
    >>> pairs = np.array([[X[0], X[1]], [X[2], X[3]], [X[0], X[2]]])
    >>> t = calibrate_threshold(nca, pairs, [1, 1, -1])
    >>> (mahalanobis_metric(nca).pair_distances(pairs) <= t).tolist()
    [True, True, False]
    """
    from ._validation import check_pair_labels, check_pairs

    metric = mahalanobis_metric(estimator)
    pairs = check_pairs(pairs, n_features=metric.n_features)
    y = check_pair_labels(y, len(pairs))
    return best_threshold(metric.pair_distances(pairs), y)
