"""The model protocol: what every attack and certificate reads from the model it is given.

A *target* is a metric ``D(x, x') = ||f(x) - f(x')||^2`` on the caller's raw input space,
with the model's own decision threshold on ``D`` when it has one. It provides the embedding
``f`` and its vector-Jacobian product, which is all a gradient attack needs; a linear target
(:class:`LinearTarget`, ``f(x) = W x + b``) also exposes ``W``, which the closed forms, the
pairwise certificate, the LP members and the numba kernels use.

:func:`as_target` is the one adapter that turns a fitted model into a target: skrobust's
learners and pair classifier, metric-learn's Mahalanobis learners, scikit-learn's
:class:`~sklearn.neighbors.NeighborhoodComponentsAnalysis`, :class:`skrobust.testing.FixedMetric`,
any of these in :class:`~sklearn.frozen.FrozenEstimator` (any depth), and a fitted
:class:`~sklearn.pipeline.Pipeline` of affine scalers ending with one of them. Pipelines and
thresholds are resolved here and nowhere else. :func:`as_knn_target` does the same for a kNN
classifier over a target (:class:`KnnTarget`).

An estimator advertises its target with a method ``__skrobust_target__(self)`` returning a
:class:`MetricTarget`; that is how a new model (a network, a user's own) plugs in.
"""

import copy
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from ._validation import check_knn_classifier

__all__ = [
    "KnnTarget",
    "LinearTarget",
    "MetricTarget",
    "as_knn_target",
    "as_target",
    "resolve_threshold",
    "unwrap_frozen",
]

# The vote of a kNN built from references by as_knn_target: the paper's m = 3 (table 5).
DEFAULT_VOTE_NEIGHBORS = 3

_ACCEPTED = (
    "a fitted skrobust learner or CertifiedPairClassifier, a metric-learn Mahalanobis learner "
    "(LMNN, ITML, NCA, ...), scikit-learn's NeighborhoodComponentsAnalysis, "
    "skrobust.testing.FixedMetric, a MetricTarget (such as LinearTarget or "
    "MahalanobisMetric), any object with a __skrobust_target__ method, one of these in a "
    "FrozenEstimator, or a Pipeline of affine scalers (MinMaxScaler, StandardScaler, "
    "MaxAbsScaler) ending with one"
)


def _rowdot(A, B):
    return np.einsum("ij,ij->i", A, B)


class MetricTarget(ABC):
    """A metric ``D(x, x') = ||f(x) - f(x')||^2`` on the raw input space: the protocol.

    Subclasses implement :meth:`embed`, :meth:`vjp` and :attr:`n_features`; every distance
    and gradient below is built from those two maps. Thresholds are on the **squared**
    distance ``D``: a pair is similar when ``D <= threshold``.

    Attributes
    ----------
    threshold : float or None
        The model's own decision threshold on ``D``, or ``None`` when it has none.
    is_linear : bool
        ``True`` only for :class:`LinearTarget`. Linear-only code (closed-form bounds, the
        pairwise kNN certificate, LP attack members, numba kernels) checks it and raises a
        ``TypeError`` for other targets.

    Examples
    --------
    A target with ``f(x) = x^2`` per coordinate (not linear): its distance gradient comes
    from :meth:`vjp`.

    >>> import numpy as np
    >>> from skrobust.targets import MetricTarget
    >>> class Squares(MetricTarget):
    ...     n_features = 2
    ...     def embed(self, X):
    ...         return np.asarray(X, dtype=float) ** 2
    ...     def vjp(self, X, G):
    ...         return 2.0 * np.asarray(X, dtype=float) * G
    >>> target = Squares()
    >>> target.squared_distances(np.array([[1.0, 2.0]]), np.array([[0.0, 1.0]])).tolist()
    [10.0]
    >>> grad_a, grad_b = target.squared_distance_gradients(
    ...     np.array([[1.0, 2.0]]), np.array([[0.0, 1.0]]))
    >>> grad_a.tolist(), grad_b.tolist()
    ([[4.0, 24.0]], [[-0.0, -12.0]])
    """

    threshold = None
    is_linear: ClassVar[bool] = False

    @property
    @abstractmethod
    def n_features(self):
        """Input dimension ``d``."""

    @abstractmethod
    def embed(self, X):
        """The embedding ``f(x)`` of each row: ``(n, d) -> (n, m)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.

        Returns
        -------
        E : ndarray of shape (n_samples, n_components)
        """

    @abstractmethod
    def vjp(self, X, G):
        """Vector-Jacobian products: row ``i`` is ``J_f(x_i)^T G_i``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points at which the Jacobian is taken.
        G : array-like of shape (n_samples, n_components)
            Cotangents in the embedding space.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
        """

    @property
    def n_components(self):
        """Embedding dimension ``m``."""
        return self.embed(np.zeros((1, self.n_features))).shape[1]

    def transform(self, X):
        """The embedding, scikit-learn's and metric-learn's word: same as :meth:`embed`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.

        Returns
        -------
        E : ndarray of shape (n_samples, n_components)
            The embedded points.
        """
        return self.embed(X)

    def squared_distances(self, A, B):
        """Rowwise ``D(a_i, b_i) = ||f(a_i) - f(b_i)||^2``.

        Parameters
        ----------
        A, B : array-like of shape (n, n_features)
            The first and the second point of each pair, in the raw input space.

        Returns
        -------
        D : ndarray of shape (n,)
            The squared distance of each pair of rows.
        """
        diff = self.embed(A) - self.embed(B)
        return _rowdot(diff, diff)

    def squared_pair_distances(self, pairs):
        """Squared distances ``D`` of an array of pairs.

        Parameters
        ----------
        pairs : ndarray of shape (n_pairs, 2, n_features)
            Pairs in the raw input space.

        Returns
        -------
        D : ndarray of shape (n_pairs,)
            The squared distance of each pair.
        """
        pairs = np.asarray(pairs, dtype=np.float64)
        return self.squared_distances(pairs[:, 0], pairs[:, 1])

    def pair_distance(self, pairs):
        """Distances ``sqrt(D)`` of pairs (metric-learn's ``pair_distance``).

        Parameters
        ----------
        pairs : ndarray of shape (n_pairs, 2, n_features)
            Pairs in the raw input space.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            ``sqrt(D)`` of each pair.
        """
        return np.sqrt(self.squared_pair_distances(pairs))

    def squared_distance_gradients(self, A, B):
        """Gradients of ``D(a_i, b_i)`` with respect to ``a_i`` and to ``b_i``.

        ``grad_a = 2 J_f(a)^T (f(a) - f(b))`` and ``grad_b = -2 J_f(b)^T (f(a) - f(b))``:
        two :meth:`vjp` calls (eq. 10-11 for a network).

        Parameters
        ----------
        A, B : array-like of shape (n, n_features)
            The first and the second point of each pair, in the raw input space.

        Returns
        -------
        grad_a, grad_b : ndarray of shape (n, n_features)
            The gradient of each pair's ``D`` with respect to its first and second point.
        """
        A = np.asarray(A, dtype=np.float64)
        B = np.asarray(B, dtype=np.float64)
        twice = 2.0 * (self.embed(A) - self.embed(B))
        return self.vjp(A, twice), -self.vjp(B, twice)

    def compose_input(self, scale, offset):
        """The target of ``x -> f(scale * x + offset)``: an affine scaler in front.

        Parameters
        ----------
        scale, offset : ndarray of shape (n_features,)
            The affine map ``x -> scale * x + offset`` applied before the target.

        Returns
        -------
        target : MetricTarget
            With the same threshold. A linear target folds the map into ``W``; others
            wrap it (a network may fold it into its first layer instead).
        """
        return _InputAffineTarget(self, np.asarray(scale, float), np.asarray(offset, float))

    def with_threshold(self, threshold):
        """The same metric with another decision threshold on ``D`` (or ``None``).

        Parameters
        ----------
        threshold : float or None
            The new threshold on the squared distance ``D``.

        Returns
        -------
        target : MetricTarget
            A copy of this target with ``threshold``.
        """
        target = copy.copy(self)
        object.__setattr__(target, "threshold", None if threshold is None else float(threshold))
        return target

    def __skrobust_target__(self):
        return self


class _InputAffineTarget(MetricTarget):
    """``x -> inner(scale * x + offset)`` for a target that cannot fold the map in."""

    def __init__(self, inner, scale, offset):
        self.inner, self.scale, self.offset = inner, scale, offset
        self.threshold = inner.threshold

    @property
    def n_features(self):
        return self.inner.n_features

    def embed(self, X):
        return self.inner.embed(np.asarray(X, dtype=np.float64) * self.scale + self.offset)

    def vjp(self, X, G):
        inner_X = np.asarray(X, dtype=np.float64) * self.scale + self.offset
        return self.inner.vjp(inner_X, G) * self.scale


@dataclass(frozen=True, eq=False)
class LinearTarget(MetricTarget):
    """A linear metric ``D(x, x') = ||W (x - x')||^2`` in the caller's input space.

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
        keep ``threshold_`` on the unsquared distance; :func:`as_target` squares it.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.targets import LinearTarget
    >>> target = LinearTarget(np.array([[2.0, 0.0]]), threshold=1.0)
    >>> pairs = np.array([[[0.5, 0.0], [0.0, 3.0]]])
    >>> target.squared_pair_distances(pairs).tolist(), target.pair_distance(pairs).tolist()
    ([1.0], [1.0])
    >>> target.metric_matrix.tolist()
    [[4.0, 0.0], [0.0, 0.0]]
    """

    components: np.ndarray
    bias: np.ndarray | None = None
    threshold: float | None = None
    # Quantities derived from W once per target (the certificates' norms).
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    is_linear: ClassVar[bool] = True

    def __post_init__(self):
        W = np.asarray(self.components)
        if W.dtype.kind not in "iuf" or W.ndim != 2:
            raise TypeError(
                "components must be a 2-d array of real numbers (n_components, n_features), "
                f"got {W.dtype} of shape {W.shape}."
            )
        W = np.asarray(W, dtype=np.float64)
        if not np.all(np.isfinite(W)):
            raise ValueError("components contains NaN or infinite values.")
        bias = np.zeros(W.shape[0]) if self.bias is None else np.asarray(self.bias, np.float64)
        if bias.shape != (W.shape[0],):
            raise ValueError(
                f"bias must have shape (n_components,) = ({W.shape[0]},), got {bias.shape}."
            )
        threshold = self.threshold
        if threshold is not None:
            threshold = float(threshold)
            if not np.isfinite(threshold):
                raise ValueError(f"threshold must be finite or None, got {threshold!r}.")
        object.__setattr__(self, "components", W)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "threshold", threshold)

    @property
    def n_features(self):
        """Number of input features, the columns of ``components``."""
        return self.components.shape[1]

    @property
    def n_components(self):
        """Embedding dimension, the rows of ``components``."""
        return self.components.shape[0]

    @property
    def metric_matrix(self):
        """``M = W^T W``, of shape (n_features, n_features)."""
        return self.components.T @ self.components

    def embed(self, X):
        """Embed points: ``X @ W.T + bias`` (the model's own ``transform``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.

        Returns
        -------
        X_embedded : ndarray of shape (n_samples, n_components)
            The embedded points.
        """
        return np.asarray(X, dtype=np.float64) @ self.components.T + self.bias

    def vjp(self, X, G):
        """``G @ W``: the Jacobian of a linear map is ``W`` everywhere.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Unused (the Jacobian does not depend on the point).
        G : array-like of shape (n_samples, n_components)
            Cotangents in the embedding space.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
            ``G @ W``.
        """
        return np.asarray(G, dtype=np.float64) @ self.components

    def squared_distances(self, A, B):
        """Rowwise ``D = ||W (a_i - b_i)||^2`` (the bias cancels).

        Parameters
        ----------
        A, B : array-like of shape (n, n_features)
            The first and the second point of each pair, in the raw input space.

        Returns
        -------
        D : ndarray of shape (n,)
            The squared distance of each pair of rows.
        """
        diff = (np.asarray(A, dtype=np.float64) - np.asarray(B, dtype=np.float64)) @ (
            self.components.T
        )
        return _rowdot(diff, diff)

    def compose_input(self, scale, offset):
        """Fold ``x -> scale * x + offset`` into ``W`` and ``bias``.

        Parameters
        ----------
        scale, offset : ndarray of shape (n_features,)
            The affine map ``x -> scale * x + offset`` applied before the target.

        Returns
        -------
        target : LinearTarget
            ``W diag(scale)``, with ``W offset`` added to the bias.
        """
        W = self.components
        return LinearTarget(W * scale[np.newaxis, :], W @ offset + self.bias, self.threshold)

    def with_threshold(self, threshold):
        """The same ``W`` with another decision threshold on ``D`` (or ``None``).

        Parameters
        ----------
        threshold : float or None
            The new threshold on the squared distance ``D``.

        Returns
        -------
        target : LinearTarget
            A copy of this target with ``threshold``.
        """
        target = type(self)(self.components, self.bias, threshold)
        # The cache holds quantities of W alone, valid for any threshold.
        target._cache.update(self._cache)
        return target

    def __reduce__(self):
        # The cache is derived data: pickles carry W, bias and threshold only.
        return (type(self), (self.components, self.bias, self.threshold))


def unwrap_frozen(estimator):
    """The model inside any number of :class:`~sklearn.frozen.FrozenEstimator` wrappers."""
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


_AFFINE_SCALERS = (MinMaxScaler, StandardScaler, MaxAbsScaler)


def _metric_learn_base():
    """metric-learn's ``base_metric`` module if it has been imported, else ``None``.

    A metric-learn model cannot exist before metric-learn is imported, so skrobust never
    imports it: metric-learn stays optional, and skrobust runs where it does not.
    """
    return sys.modules.get("metric_learn.base_metric")


def _is_metric_learn_model(estimator):
    """Whether ``estimator`` is one of metric-learn's Mahalanobis learners."""
    base = _metric_learn_base()
    return base is not None and isinstance(estimator, base.MahalanobisMixin)


def is_metric_learn_pair_learner(estimator):
    """Whether ``estimator`` is one of metric-learn's pair learners (ITML, MMC, SDML, ...)."""
    base = _metric_learn_base()
    return base is not None and isinstance(estimator, base._PairsClassifierMixin)


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
    """The target of a single (unwrapped, non-pipeline) metric step, or a TypeError."""
    hook = getattr(type(estimator), "__skrobust_target__", None)
    if hook is not None:
        target = estimator.__skrobust_target__()
        if not isinstance(target, MetricTarget):
            raise TypeError(
                f"{type(estimator).__name__}.__skrobust_target__() must return a MetricTarget, "
                f"got {type(target).__name__}."
            )
        return target
    if _is_metric_learn_model(estimator):
        check_is_fitted(estimator, "components_")
        return LinearTarget(estimator.components_, None, _metric_learn_threshold(estimator))
    if isinstance(estimator, NeighborhoodComponentsAnalysis):
        check_is_fitted(estimator, "components_")
        return LinearTarget(estimator.components_)
    if isinstance(estimator, KNeighborsClassifier):
        raise TypeError(
            f"{type(estimator).__name__} is not a Mahalanobis model nor a metric target: it "
            "is a kNN classifier; use as_knn_target for it (accepted here: "
            f"{_ACCEPTED})."
        )
    raise TypeError(
        f"{type(estimator).__name__} is not a Mahalanobis model nor a metric target. "
        f"Expected {_ACCEPTED}."
    )


def as_target(model):
    """Read the metric of a fitted model, in the model's raw input space.

    Parameters
    ----------
    model : estimator or MetricTarget
        A :class:`MetricTarget` (returned as it is); a fitted skrobust learner or
        :class:`~skrobust.CertifiedPairClassifier`; a metric-learn Mahalanobis learner
        (``LMNN``, ``ITML``/``ITML_Supervised``, ``SCML_Supervised``, ``MMC``, ``LFDA``,
        ``NCA``, ...); scikit-learn's ``NeighborhoodComponentsAnalysis``;
        :class:`skrobust.testing.FixedMetric`; any object with a ``__skrobust_target__``
        method; any of these in ``FrozenEstimator`` wrappers; or a fitted ``Pipeline`` of
        affine scalers (``MinMaxScaler``, ``StandardScaler``, ``MaxAbsScaler``) followed by
        one metric step. Scalers compose into the target, so distances are those of the raw
        inputs.

    Returns
    -------
    target : MetricTarget
        A :class:`LinearTarget` for every linear model. Its ``threshold`` is the model's own
        on the **squared** distance, or ``None``: a skrobust learner's ``gamma``, a pair
        classifier's ``threshold_``, a metric-learn pair learner's ``threshold_`` squared
        (metric-learn compares it with ``sqrt(D)``).

    Raises
    ------
    TypeError
        If ``model`` is none of the above.
    sklearn.exceptions.NotFittedError
        If it is not fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skrobust.targets import as_target
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(StandardScaler(), NeighborhoodComponentsAnalysis(
    ...     max_iter=10, random_state=0)).fit(X, y)
    >>> target = as_target(pipe)
    >>> target.is_linear, target.threshold, bool(np.allclose(target.embed(X), pipe.transform(X)))
    (True, None, True)
    """
    model = unwrap_frozen(model)
    if isinstance(model, MetricTarget):
        return model
    if not isinstance(model, Pipeline):
        return _metric_step(model)
    steps = [step for _, step in model.steps if step not in (None, "passthrough")]
    if not steps:
        raise TypeError("The pipeline has no metric step.")
    *scalers, last = steps
    a, c = None, None
    for scaler in scalers:
        scaler = unwrap_frozen(scaler)
        if not isinstance(scaler, _AFFINE_SCALERS):
            raise TypeError(
                f"Pipeline step {type(scaler).__name__} cannot be composed into a metric "
                "target: only MinMaxScaler, StandardScaler and MaxAbsScaler may precede the "
                "metric step, and the metric step must be the last one."
            )
        a2, c2 = _scaler_affine(scaler)
        a, c = (a2, c2) if a is None else (a * a2, c * a2 + c2)
    inner = as_target(last)
    return inner if a is None else inner.compose_input(a, c)


def resolve_threshold(target, threshold=None, *, name=None):
    """The decision threshold on ``D`` in use: ``threshold`` when given, else the model's.

    Parameters
    ----------
    target : MetricTarget or MetricNorms
        Anything with the model's own ``threshold`` (``None`` when it has none).
    threshold : float or None, default=None
        A threshold on the squared distance given by the caller; it wins.
    name : str or None, default=None
        How to call the model in the error message.

    Returns
    -------
    threshold : float
        The new threshold on the squared distance ``D``, or ``None``.

    Raises
    ------
    ValueError
        If ``threshold`` is ``None`` and the model has none, or it is not finite.
    TypeError
        If ``threshold`` is not a number.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.targets import LinearTarget, resolve_threshold
    >>> target = LinearTarget(np.eye(2), threshold=0.5)
    >>> resolve_threshold(target), resolve_threshold(target, 2.0)
    (0.5, 2.0)
    """
    if threshold is None:
        if target.threshold is None:
            raise ValueError(
                f"threshold=None, and {name or 'the model'} has no threshold of its own (no "
                "decision threshold on pairs): pass threshold= (on the squared distance D), "
                "for instance skrobust.calibrate_threshold(model, pairs, pair_labels)."
            )
        return float(target.threshold)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a number or None, got {threshold!r}.") from None
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold!r}.")
    return threshold


def check_linear(target, what, instead):
    """Raise the protocol's ``TypeError`` when linear-only code meets a nonlinear target."""
    if not target.is_linear:
        raise TypeError(
            f"{what} is linear-only: it needs the matrix W of a linear metric, and "
            f"{type(target).__name__} is not linear; for a nonlinear target use {instead}."
        )
    return target


@dataclass(frozen=True, eq=False)
class KnnTarget:
    """A fitted kNN classifier over a metric target, as the kNN attacks and certificates
    read it.

    Build it with :func:`as_knn_target`. The classifier votes over embedded points: it
    predicts ``x`` from the ``n_neighbors`` references nearest to ``target.embed(x)``.

    Parameters
    ----------
    target : MetricTarget
        The metric; its embedding maps raw inputs to the classifier's space.
    knn : KNeighborsClassifier
        The fitted classifier over embedded points (uniform weights, Euclidean).
    model : estimator or None, default=None
        The fitted model the classifier was read from (a ``Pipeline``), whose own
        ``predict`` :meth:`predict` uses; ``None`` predicts ``knn.predict(target.embed(X))``.

    Attributes
    ----------
    references : ndarray of shape (n_references, n_components)
        The classifier's references, **embedded** (as a fitted ``Pipeline`` stores them:
        the raw points are not recoverable from a pipeline).
    reference_labels : ndarray of int, shape (n_references,)
        Index of each reference's class in ``classes``.
    classes : ndarray of shape (n_classes,)
        The classifier's classes.
    n_neighbors : int
        ``k`` of the vote (at most the number of references).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.targets import LinearTarget, as_knn_target
    >>> X, y = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]]), np.array([0, 1, 1])
    >>> knn = as_knn_target(LinearTarget(np.diag([1.0, 0.0])), X, y, n_neighbors=1)
    >>> knn.predict(np.array([[0.2, 5.0], [0.8, 0.0]])).tolist()
    [0, 1]
    >>> knn.references.shape, knn.n_neighbors, knn.classes.tolist()
    ((3, 2), 1, [0, 1])
    """

    target: MetricTarget
    knn: KNeighborsClassifier
    model: object = None

    def __post_init__(self):
        check_is_fitted(self.knn)
        check_knn_classifier(self.knn, "A kNN target")
        width = self.knn._fit_X.shape[1]
        if width != self.target.n_components:
            raise ValueError(
                f"The classifier's references have {width} features, but the metric embeds "
                f"into {self.target.n_components}."
            )

    @property
    def references(self):
        """The classifier's references, embedded: ``(n_references, n_components)``."""
        return np.ascontiguousarray(self.knn._fit_X, dtype=np.float64)

    @property
    def reference_labels(self):
        """Index of each reference's class in :attr:`classes`."""
        return np.asarray(self.knn._y, dtype=np.int64)

    @property
    def classes(self):
        """The classifier's classes."""
        return self.knn.classes_

    @property
    def n_classes(self):
        """Number of classes."""
        return len(self.knn.classes_)

    @property
    def n_neighbors(self):
        """``k`` of the vote, at most the number of references."""
        return min(self.knn.n_neighbors, self.knn.n_samples_fit_)

    @property
    def n_features(self):
        """Input dimension of the target."""
        return self.target.n_features

    def predict(self, X):
        """The classifier's own prediction on raw points (the model's ``predict``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The predicted classes.
        """
        if self.model is not None:
            return self.model.predict(X)
        return self.knn.predict(self.target.embed(X))


def _split_knn(model):
    """``(metric part or None, KNeighborsClassifier or None)`` of an unwrapped model."""
    if isinstance(model, KNeighborsClassifier):
        return None, model
    if isinstance(model, Pipeline) and isinstance(
        unwrap_frozen(model.steps[-1][1]), KNeighborsClassifier
    ):
        knn = unwrap_frozen(model.steps[-1][1])
        return (model[:-1] if len(model.steps) > 1 else None), knn
    return model, None


def is_knn_model(model):
    """Whether ``model`` is a kNN classifier :func:`as_knn_target` reads without references."""
    inner = unwrap_frozen(model)
    return isinstance(inner, KnnTarget) or _split_knn(inner)[1] is not None


def metric_of(model):
    """The metric target of a model, or of a kNN classifier's metric: what the pair and
    triplet attacks read (a bare ``KNeighborsClassifier`` is the identity metric)."""
    if is_knn_model(model):
        return as_knn_target(model).target
    return as_target(model)


def as_knn_target(model, X=None, y=None, *, n_neighbors=DEFAULT_VOTE_NEIGHBORS):
    """Read a fitted kNN classifier over a metric, or build one from references.

    Parameters
    ----------
    model : estimator, MetricTarget or KnnTarget
        A :class:`KnnTarget` (returned as it is); a fitted ``Pipeline(..., metric step,
        KNeighborsClassifier)`` (the steps before the classifier are read by
        :func:`as_target`); a bare fitted ``KNeighborsClassifier`` (the Euclidean metric,
        ``W = I``); any of these in ``FrozenEstimator``. Or any model :func:`as_target`
        reads, with references ``X`` and ``y``.
    X : array-like of shape (n_references, n_features), default=None
        References in the raw input space, for a bare metric ``model``; ignored otherwise.
    y : array-like of shape (n_references,), default=None
        Their labels.
    n_neighbors : int, default=3
        ``k`` of the kNN built from references (the paper's m = 3), capped at their number.

    Returns
    -------
    knn_target : KnnTarget

    Raises
    ------
    TypeError
        If ``model`` is no kNN classifier and no references are given, or is not a model.
    ValueError
        If the classifier does not vote as skrobust models it (uniform weights, Euclidean).

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust.targets import as_knn_target
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(NeighborhoodComponentsAnalysis(max_iter=10, random_state=0),
    ...                      KNeighborsClassifier(5)).fit(X, y)
    >>> knn = as_knn_target(pipe)
    >>> knn.n_neighbors, bool((knn.predict(X) == pipe.predict(X)).all())
    (5, True)
    """
    inner = unwrap_frozen(model)
    if isinstance(inner, KnnTarget):
        return inner
    metric_part, knn = _split_knn(inner)
    if knn is not None:
        check_is_fitted(knn)
        if metric_part is None:
            target = LinearTarget(np.eye(knn.n_features_in_))
        else:
            target = as_target(metric_part)
        return KnnTarget(target, knn, model)
    if X is None or y is None:
        target = as_target(inner)  # a TypeError here names what is accepted
        raise TypeError(
            f"{type(inner).__name__} is not a kNN classifier over a metric: expected a fitted "
            "Pipeline(metric step, KNeighborsClassifier) (affine scalers may precede the "
            "metric step), a KNeighborsClassifier on raw features, a KnnTarget, or a metric "
            f"with references X and y ({type(target).__name__} was given without them)."
        )
    target = as_target(inner)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != target.n_features:
        raise ValueError(
            f"X has shape {X.shape}, but the model expects {target.n_features} features."
        )
    vote = KNeighborsClassifier(n_neighbors=min(n_neighbors, X.shape[0]))
    return KnnTarget(target, vote.fit(target.embed(X), y))
