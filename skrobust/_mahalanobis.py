"""Pair-threshold math, and the linear view of the model protocol.

:func:`mahalanobis_metric` reads the linear metric of any fitted model through
:func:`skrobust.targets.as_target` (the one adapter) and refuses nonlinear targets;
:class:`MahalanobisMetric` is the :class:`~skrobust.targets.LinearTarget` under its former
name, with its former ``pair_distances``.
"""

import numpy as np

from ._target import LinearTarget, as_target, check_linear, unwrap_frozen

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


class MahalanobisMetric(LinearTarget):
    """A linear metric ``D(x, x') = ||W (x - x')||^2``: :class:`~skrobust.targets.LinearTarget`
    under the name skrobust gave it first.

    Everything of :class:`~skrobust.targets.LinearTarget` (``components``, ``bias``,
    ``threshold``, ``embed``, ``vjp``, ``squared_pair_distances``, ``pair_distance``, ...),
    plus :meth:`pair_distances`, which returns the **squared** distance ``D``, unlike
    metric-learn's ``pair_distance`` (``sqrt(D)``). New code should use
    ``squared_pair_distances``, whose name says it.

    Parameters
    ----------
    components : array-like of shape (n_components, n_features)
        ``W``, with every affine scaler in front of the metric step composed in
        (``W diag(a)``), so distances are those of the raw inputs.
    bias : array-like of shape (n_components,) or None, default=None
        Offset of the embedding: the model's own ``transform(x)`` equals
        ``components @ x + bias``. It cancels in every distance. ``None`` is zero.
    threshold : float or None, default=None
        The model's own decision threshold on the **squared** distance (a similar pair has
        ``D <= threshold``), or ``None`` when the model has none. metric-learn's pair learners
        keep ``threshold_`` on the unsquared distance; it is squared here.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from skrobust import mahalanobis_metric
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> nca = NeighborhoodComponentsAnalysis(max_iter=10, random_state=0).fit(X, y)
    >>> metric = mahalanobis_metric(nca)
    >>> bool(np.allclose(metric.transform(X), nca.transform(X)))
    True
    >>> pairs = np.stack([X[:3], X[3:6]], axis=1)
    >>> bool(np.allclose(metric.pair_distances(pairs), metric.pair_distance(pairs) ** 2))
    True
    """

    def pair_distances(self, pairs):
        """Squared distances ``D`` of an array of pairs (same as ``squared_pair_distances``).

        Parameters
        ----------
        pairs : ndarray of shape (n_pairs, 2, n_features)
            Pairs in the raw input space.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            ``D = ||W (a - b)||^2`` of each pair ``(a, b)``.
        """
        return self.squared_pair_distances(pairs)


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


def mahalanobis_metric(estimator):
    """Read the linear metric of a fitted model, in the model's raw input space.

    The linear view of :func:`skrobust.targets.as_target`: the same models, the same
    threshold, as a :class:`MahalanobisMetric`.

    Parameters
    ----------
    estimator : estimator
        A fitted Mahalanobis model: a skrobust learner or pair classifier, a metric-learn
        Mahalanobis learner (``LMNN``, ``ITML``/``ITML_Supervised``, ``SCML_Supervised``,
        ``MMC``/``MMC_Supervised``, ``LFDA``, ``NCA``, ...), scikit-learn's
        ``NeighborhoodComponentsAnalysis``, :class:`skrobust.testing.FixedMetric`, a
        :class:`~skrobust.targets.LinearTarget`; or such a model in a ``FrozenEstimator``;
        or a fitted ``Pipeline`` of affine scalers (``MinMaxScaler``, ``StandardScaler``,
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
        If ``estimator`` is not a Mahalanobis model (or its target is not linear).
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
    target = as_target(estimator)
    if isinstance(target, MahalanobisMetric):
        return target
    check_linear(target, "mahalanobis_metric", "skrobust.targets.as_target")
    return MahalanobisMetric(target.components, target.bias, target.threshold)


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
    estimator : fitted model or MetricTarget
        Anything :func:`skrobust.targets.as_target` reads: a Mahalanobis model, a ReLU
        network (:class:`~skrobust.ReluMetricLearner` trained on a loss without a
        threshold), a model of your own wrapped as a target.
    pairs : array-like of shape (n_pairs, 2, n_features)
        Labelled pairs to calibrate on.
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

    target = as_target(estimator)
    pairs = check_pairs(pairs, n_features=target.n_features)
    y = check_pair_labels(y, len(pairs))
    return best_threshold(target.squared_pair_distances(pairs), y)
