"""Property-test a robustness bound: hypothesis strategies and a fixed-``W`` model.

A bound is a promise about every perturbation within a budget, so it should be tested the
way skrobust tests its own: draw a metric, a box, pairs or points inside it, a budget and
perturbations within it, and check that no perturbation breaks the bound. The strategies
here build those objects (named for what they build); :class:`FixedMetric` turns a drawn
``W`` into a model every skrobust function and estimator accepts.

This module needs `hypothesis <https://hypothesis.readthedocs.io>`_, an optional
dependency: ``pip install "skrobust[testing]"`` (or ``pip install hypothesis``). The rest of
skrobust does not.

Examples
--------
A user-style property test of the triangle bound (``tests/test_testing.py`` runs it at
1,000 examples):

>>> import numpy as np
>>> from hypothesis import given, settings
>>> from skrobust import perturbed_distance_bounds
>>> from skrobust.testing import fixed_metrics, pairs_with_perturbations
>>> @settings(max_examples=20, deadline=None)
... @given(metric=fixed_metrics(n_features=3), drawn=pairs_with_perturbations(n_features=3))
... def test_bound_holds(metric, drawn):
...     pairs, eps, moved = drawn
...     lower, upper = perturbed_distance_bounds(metric, pairs, eps, budget="shared")
...     D = metric.pair_distances(moved)
...     assert np.all(lower <= D * (1 + 1e-9) + 1e-12) and np.all(D <= upper * (1 + 1e-9) + 1e-12)
>>> test_bound_holds()
"""

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "skrobust.testing needs hypothesis, an optional dependency of skrobust: install it "
        'with pip install "skrobust[testing]" (or pip install hypothesis).'
    ) from exc

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._network import ReluNetworkTarget
from ._target import LinearTarget
from ._validation import check_feature_range

__all__ = [
    "BUDGETS",
    "FixedMetric",
    "FixedNetwork",
    "boxes",
    "budgets",
    "components",
    "eps_values",
    "fixed_metrics",
    "pairs_in_box",
    "pairs_with_perturbations",
    "perturbations",
    "points_in_box",
    "relu_networks",
    "triplets_in_box",
]

#: The budget kinds of a pair (the ``budget`` parameter): ``"shared"``, the paper's eq. (4),
#: and ``"per_point"``. :func:`budgets` draws them.
BUDGETS = ("shared", "per_point")

_UNIT = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)


class FixedMetric(TransformerMixin, BaseEstimator):
    """A Mahalanobis model with a given ``W``: ``D(x, x') = ||W (x - x')||^2``.

    Fitted by construction (``W`` needs no data; :meth:`fit` only validates it), so it can
    be handed to any skrobust function or estimator as it is, or in a
    :class:`~sklearn.frozen.FrozenEstimator`, and it survives ``clone``.

    Parameters
    ----------
    components : array-like of shape (n_components, n_features)
        ``W``.
    threshold : float or None, default=None
        A decision threshold on the **squared** distance ``D`` (a pair is similar when
        ``D <= threshold``), read by the pair attack and the certificates; ``None`` for none.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        ``W`` as a float64 array.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import mahalanobis_metric
    >>> from skrobust.testing import FixedMetric
    >>> metric = mahalanobis_metric(FixedMetric([[2.0, 0.0]], threshold=1.0))
    >>> metric.pair_distances(np.array([[[0.5, 0.0], [0.0, 3.0]]])).tolist(), metric.threshold
    ([1.0], 1.0)
    """

    def __init__(self, components, threshold=None):
        self.components = components
        self.threshold = threshold

    @property
    def components_(self):
        W = np.asarray(self.components)
        if W.dtype.kind not in "iuf" or W.ndim != 2 or W.shape[1] == 0:
            raise ValueError(
                "components must be a 2-d array of real numbers (n_components, n_features), "
                f"got {W.dtype} of shape {W.shape}."
            )
        W = W.astype(np.float64)
        if not np.all(np.isfinite(W)):
            raise ValueError("components contains NaN or infinite values.")
        return W

    @property
    def n_features_in_(self):
        return self.components_.shape[1]

    def fit(self, X=None, y=None):
        """Validate ``components`` and ``threshold``; ``X`` and ``y`` are ignored.

        Parameters
        ----------
        X : None or array-like, default=None
            Ignored: ``W`` is given, not learned.
        y : None or array-like, default=None
            Ignored.

        Returns
        -------
        self : FixedMetric
            The model itself.
        """
        self.components_  # noqa: B018 - validates
        if self.threshold is not None and not np.isfinite(float(self.threshold)):
            raise ValueError(f"threshold must be finite or None, got {self.threshold!r}.")
        return self

    def fit_pairs(self, pairs=None, y=None):
        """Validate ``components`` and ``threshold``, as :meth:`fit`; the pairs are ignored.

        So the model goes wherever a learner on pairs does
        (:class:`~skrobust.CertifiedPairClassifier` fits its estimator with ``fit_pairs``).

        Parameters
        ----------
        pairs : None or array-like, default=None
            Ignored: ``W`` is given, not learned.
        y : None or array-like, default=None
            Ignored.

        Returns
        -------
        self : FixedMetric
            The model itself.
        """
        return self.fit()

    def transform(self, X):
        """Embed points: ``X @ W.T``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to embed.

        Returns
        -------
        X_embedded : ndarray of shape (n_samples, n_components)
            The embedded points.
        """
        return np.asarray(X, dtype=np.float64) @ self.components_.T

    def pair_distances(self, pairs):
        """Squared distances ``D = ||W (a - b)||^2`` of pairs.

        As :meth:`skrobust.MahalanobisMetric.pair_distances`; thresholds are on ``D``.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs ``(a, b)`` of points.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            ``D`` of each pair.
        """
        pairs = np.asarray(pairs, dtype=np.float64)
        diff = (pairs[:, 0] - pairs[:, 1]) @ self.components_.T
        return np.einsum("ij,ij->i", diff, diff)

    def get_mahalanobis_matrix(self):
        """The Mahalanobis matrix ``M = W^T W``.

        Returns
        -------
        M : ndarray of shape (n_features, n_features)
            Symmetric positive semi-definite; ``D(x, x') = (x - x')^T M (x - x')``.
        """
        W = self.components_
        return W.T @ W

    def __sklearn_is_fitted__(self):
        return True

    def __skrobust_target__(self):
        """The metric for skrobust's attacks and certificates (the model protocol).

        Returns
        -------
        target : LinearTarget
            ``W`` and ``threshold``.
        """
        return LinearTarget(self.components_, threshold=self.threshold)


class FixedNetwork(TransformerMixin, BaseEstimator):
    """A ReLU-network metric with given layers: ``D(x, x') = ||f(x) - f(x')||^2``.

    The network counterpart of :class:`FixedMetric`: fitted by construction, accepted by
    every skrobust function and estimator (alone, in a ``Pipeline`` or in a
    :class:`~sklearn.frozen.FrozenEstimator`), and it survives ``clone``.

    Parameters
    ----------
    layers : list of (array-like, array-like)
        ``(W_l, b_l)`` of each layer, ReLU between layers and none after the last.
    threshold : float or None, default=None
        A decision threshold on the **squared** distance ``D``, or ``None``.

    Attributes
    ----------
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.testing import FixedNetwork
    >>> net = FixedNetwork([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])
    >>> net.transform(np.array([[1.0, -1.0]])).tolist()
    [[1.0]]
    """

    def __init__(self, layers, threshold=None):
        self.layers = layers
        self.threshold = threshold

    @property
    def n_features_in_(self):
        return self.__skrobust_target__().n_features

    def fit(self, X=None, y=None):
        """Validate ``layers`` and ``threshold``; ``X`` and ``y`` are ignored.

        Parameters
        ----------
        X : None or array-like, default=None
            Ignored.
        y : None or array-like, default=None
            Ignored.

        Returns
        -------
        self : FixedNetwork
        """
        self.__skrobust_target__()
        return self

    def transform(self, X):
        """Embed points: ``f(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.

        Returns
        -------
        X_embedded : ndarray of shape (n_samples, n_components)
        """
        return self.__skrobust_target__().embed(X)

    def __sklearn_is_fitted__(self):
        return True

    def __skrobust_target__(self):
        """The network for skrobust's attacks and certificates (the model protocol).

        Returns
        -------
        target : ReluNetworkTarget
        """
        return ReluNetworkTarget(self.layers, self.threshold)


def _count(draw, value, low, high):
    return draw(st.integers(low, high)) if value is None else int(value)


@st.composite
def boxes(draw, unit=None):
    """A strategy for a box ``(lo, hi)``, the ``feature_range`` of attacks and certificates.

    Parameters
    ----------
    unit : bool or None, default=None
        True: the unit box ``(0.0, 1.0)``. False: a random box, ``lo`` in ``[-3, 3]`` and
        width in ``[0.25, 4]``. None: either.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws tuples ``(lo, hi)`` of floats with ``lo < hi``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import boxes
    >>> @settings(max_examples=10, deadline=None)
    ... @given(box=boxes(unit=False))
    ... def test_box(box):
    ...     lo, hi = box
    ...     assert -3 <= lo <= 3 and 0.25 <= hi - lo <= 4
    >>> test_box()
    """
    if unit or (unit is None and draw(st.booleans())):
        return (0.0, 1.0)
    lo = draw(st.floats(-3.0, 3.0))
    return (lo, lo + draw(st.floats(0.25, 4.0)))


def _rotation(draw, n):
    """An ``n x n`` orthogonal matrix: a product of Givens rotations by drawn angles."""
    Q = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            angle = draw(st.floats(-np.pi, np.pi))
            c, s = np.cos(angle), np.sin(angle)
            G = np.eye(n)
            G[[i, j], [i, j]] = c
            G[i, j], G[j, i] = -s, s
            Q = Q @ G
    return Q


@st.composite
def components(draw, n_features=None, n_components=None, scale=2.0, condition=None):
    """A strategy for ``W`` of shape ``(n_components, n_features)``.

    Parameters
    ----------
    n_features : int or None, default=None
        Columns of ``W``; ``None`` draws it in 1..4.
    n_components : int or None, default=None
        Rows of ``W``; ``None`` draws it in 1..``n_features + 1``.
    scale : float, default=2.0
        Largest entry (``condition=None``) or largest singular value.
    condition : float or None, default=None
        ``None``: entries drawn in ``[-scale, scale]`` (any ``W``, singular ones included).
        A number ``>= 1``: ``W = U diag(s) V^T`` with random rotations and singular values
        in ``[scale / condition, scale]``, so its condition number is at most ``condition``.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws float64 arrays of shape ``(n_components, n_features)``.

    Examples
    --------
    Full-rank ``W`` of condition number at most 10:

    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import components
    >>> @settings(max_examples=10, deadline=None)
    ... @given(W=components(n_features=3, n_components=2, condition=10.0))
    ... def test_conditioning(W):
    ...     s = np.linalg.svd(W, compute_uv=False)
    ...     assert W.shape == (2, 3) and s[0] <= 2.0 * (1 + 1e-9)
    ...     assert s[0] <= 10.0 * s[-1] * (1 + 1e-9)
    >>> test_conditioning()
    """
    n_features = _count(draw, n_features, 1, 4)
    n_components = _count(draw, n_components, 1, n_features + 1)
    shape = (n_components, n_features)
    if condition is None:
        elements = st.floats(-scale, scale, allow_nan=False, allow_infinity=False)
        return draw(hnp.arrays(np.float64, shape, elements=elements))
    if condition < 1:
        raise ValueError(f"condition must be >= 1, got {condition!r}.")
    rank = min(shape)
    exponents = draw(hnp.arrays(np.float64, rank, elements=_UNIT))
    singular = scale * float(condition) ** -exponents
    U = _rotation(draw, n_components)[:, :rank]
    V = _rotation(draw, n_features)[:rank]
    return (U * singular) @ V


@st.composite
def fixed_metrics(draw, n_features=None, n_components=None, scale=2.0, condition=None):
    """A strategy for a :class:`FixedMetric` whose ``W`` is drawn by :func:`components`.

    Parameters
    ----------
    n_features : int or None, default=None
        Columns of ``W``; ``None`` draws it in 1..4.
    n_components : int or None, default=None
        Rows of ``W``; ``None`` draws it in 1..``n_features + 1``.
    scale : float, default=2.0
        Largest entry (``condition=None``) or largest singular value of ``W``.
    condition : float or None, default=None
        ``None``: any ``W``, singular ones included; a number ``>= 1``: a bound on the
        condition number of ``W`` (see :func:`components`).

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws :class:`FixedMetric` models without a threshold.

    Examples
    --------
    Any skrobust function takes the drawn model; here the triangle bound's constant
    ``K >= ||W||_{inf->2}`` is checked at the corners of the unit cube:

    >>> import itertools
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust import inf_to_2_norm
    >>> from skrobust.testing import fixed_metrics
    >>> corners = np.array(list(itertools.product([-1.0, 1.0], repeat=3)))
    >>> @settings(max_examples=10, deadline=None)
    ... @given(metric=fixed_metrics(n_features=3))
    ... def test_norm(metric):
    ...     K, _ = inf_to_2_norm(metric.components_)
    ...     assert np.linalg.norm(metric.transform(corners), axis=1).max() <= K * (1 + 1e-9)
    >>> test_norm()
    """
    return FixedMetric(draw(components(n_features, n_components, scale, condition)))


@st.composite
def relu_networks(draw, n_features=None, max_hidden=2, max_width=4, n_components=None, scale=1.5):
    """A strategy for a :class:`FixedNetwork` with random layers.

    Parameters
    ----------
    n_features : int or None, default=None
        Input dimension; ``None`` draws it in 1..4.
    max_hidden : int, default=2
        At most this many hidden layers (0 gives a linear map with a bias).
    max_width : int, default=4
        Widest hidden layer.
    n_components : int or None, default=None
        Embedding dimension; ``None`` draws it in 1..``max_width``.
    scale : float, default=1.5
        Weights drawn in ``[-scale, scale]``, biases in ``[-scale / 2, scale / 2]``.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws :class:`FixedNetwork` models without a threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import relu_networks
    >>> @settings(max_examples=10, deadline=None)
    ... @given(net=relu_networks(n_features=3, n_components=2))
    ... def test_shapes(net):
    ...     assert net.transform(np.zeros((4, 3))).shape == (4, 2)
    >>> test_shapes()
    """
    n_features = _count(draw, n_features, 1, 4)
    widths = draw(st.lists(st.integers(1, max_width), min_size=0, max_size=max_hidden))
    sizes = [n_features, *widths, _count(draw, n_components, 1, max_width)]
    weight = st.floats(-scale, scale, allow_nan=False, allow_infinity=False)
    offset = st.floats(-scale / 2, scale / 2, allow_nan=False, allow_infinity=False)
    layers = [
        (
            draw(hnp.arrays(np.float64, (n_out, n_in), elements=weight)),
            draw(hnp.arrays(np.float64, n_out, elements=offset)),
        )
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    return FixedNetwork(layers)


@st.composite
def points_in_box(draw, n_points=None, n_features=None, box=(0.0, 1.0)):
    """A strategy for points with every entry in ``box`` (ends included).

    Parameters
    ----------
    n_points : int or None, default=None
        Rows; ``None`` draws it in 1..8.
    n_features : int or None, default=None
        Columns; ``None`` draws it in 1..4.
    box : tuple (lo, hi), default=(0.0, 1.0)
        The box.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws float64 arrays of shape ``(n_points, n_features)``.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import points_in_box
    >>> @settings(max_examples=10, deadline=None)
    ... @given(X=points_in_box(n_points=5, n_features=2, box=(-1.0, 2.0)))
    ... def test_points(X):
    ...     assert X.shape == (5, 2) and np.all((-1.0 <= X) & (X <= 2.0))
    >>> test_points()
    """
    lo, hi = check_feature_range(box, name="box")
    n_points = _count(draw, n_points, 1, 8)
    n_features = _count(draw, n_features, 1, 4)
    u = draw(hnp.arrays(np.float64, (n_points, n_features), elements=_UNIT))
    return np.clip(lo + u * (hi - lo), lo, hi)


@st.composite
def pairs_in_box(draw, n_features=None, max_pairs=8, box=(0.0, 1.0)):
    """A strategy for pairs of points in ``box``.

    Parameters
    ----------
    n_features : int or None, default=None
        Features; ``None`` draws it in 1..4.
    max_pairs : int, default=8
        At most this many pairs (at least 1).
    box : tuple (lo, hi), default=(0.0, 1.0)
        The box.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws float64 arrays of shape ``(n_pairs, 2, n_features)``,
        ``1 <= n_pairs <= max_pairs``.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import pairs_in_box
    >>> @settings(max_examples=10, deadline=None)
    ... @given(pairs=pairs_in_box(n_features=3, max_pairs=4))
    ... def test_pairs(pairs):
    ...     assert pairs.shape[1:] == (2, 3) and 1 <= len(pairs) <= 4
    ...     assert np.all((0.0 <= pairs) & (pairs <= 1.0))
    >>> test_pairs()
    """
    n_features = _count(draw, n_features, 1, 4)
    n_pairs = draw(st.integers(1, max_pairs))
    points = draw(points_in_box(2 * n_pairs, n_features, box))
    return points.reshape(n_pairs, 2, n_features)


@st.composite
def triplets_in_box(draw, n_features=None, max_triplets=6, box=(0.0, 1.0)):
    """A strategy for triplets (anchor, positive, negative) of points in ``box``.

    Parameters
    ----------
    n_features : int or None, default=None
        Features; ``None`` draws it in 1..4.
    max_triplets : int, default=6
        At most this many triplets (at least 1).
    box : tuple (lo, hi), default=(0.0, 1.0)
        The box.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws float64 arrays of shape ``(n_triplets, 3, n_features)``.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import triplets_in_box
    >>> @settings(max_examples=10, deadline=None)
    ... @given(triplets=triplets_in_box(n_features=2, max_triplets=3))
    ... def test_triplets(triplets):
    ...     assert triplets.shape[1:] == (3, 2) and 1 <= len(triplets) <= 3
    >>> test_triplets()
    """
    n_features = _count(draw, n_features, 1, 4)
    n = draw(st.integers(1, max_triplets))
    return draw(points_in_box(3 * n, n_features, box)).reshape(n, 3, n_features)


def budgets():
    """A strategy for a budget kind: ``"shared"`` (eq. 4) or ``"per_point"``.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws one of :data:`BUDGETS`, the values of the ``budget`` parameter of
        :func:`~skrobust.perturbed_distance_bounds` and the attacks.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import BUDGETS, budgets
    >>> @settings(max_examples=10, deadline=None)
    ... @given(budget=budgets())
    ... def test_budget(budget):
    ...     assert budget in BUDGETS
    >>> test_budget()
    """
    return st.sampled_from(BUDGETS)


def eps_values(max_eps=0.5):
    """A strategy for a budget ``eps`` in ``[0, max_eps]``, 0 included.

    Parameters
    ----------
    max_eps : float, default=0.5
        The largest budget.

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws floats in ``[0, max_eps]``; ``0.0`` (no attack, where a bound must be
        exact) is one of its explicit choices, so it is tried early.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import eps_values
    >>> @settings(max_examples=10, deadline=None)
    ... @given(eps=eps_values(max_eps=0.1))
    ... def test_eps(eps):
    ...     assert 0.0 <= eps <= 0.1
    >>> test_eps()
    """
    return st.one_of(st.just(0.0), st.floats(0.0, max_eps, allow_nan=False))


@st.composite
def perturbations(draw, X, eps, box=(0.0, 1.0), budget="per_point"):
    """``X`` moved within the budget and the box, with vertices of the feasible set likely.

    ``X`` holds points ``(n, n_features)`` (each moves by ``||d||_inf <= eps``) or pairs
    ``(n, 2, n_features)``: ``budget="per_point"`` moves each point by up to ``eps``,
    ``"shared"`` splits ``eps`` between the two points of a pair at a drawn ratio (eq. 4).
    ``X`` must lie in ``box``; ``box=None`` is no box.

    Parameters
    ----------
    X : array-like of shape (n, n_features) or (n, 2, n_features)
        Points or pairs to move, inside ``box``.
    eps : float
        The L-infinity budget.
    box : tuple (lo, hi) or None, default=(0.0, 1.0)
        The box the moved points stay in; ``None`` for none.
    budget : {"per_point", "shared"}, default="per_point"
        How ``eps`` applies (``"shared"`` needs pairs).

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws float64 arrays of the shape of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import perturbations
    >>> X = np.array([[0.2, 0.95], [0.5, 0.0]])
    >>> @settings(max_examples=10, deadline=None)
    ... @given(moved=perturbations(X, eps=0.1))
    ... def test_moved(moved):
    ...     assert np.all(np.abs(moved - X) <= 0.1 + 1e-12)
    ...     assert np.all((0.0 <= moved) & (moved <= 1.0))
    >>> test_moved()
    """
    X = np.asarray(X, dtype=np.float64)
    lo, hi = (-np.inf, np.inf) if box is None else check_feature_range(box, name="box")
    radius = np.full(X.shape[:-1] + (1,), float(eps))
    if budget == "shared":
        if X.ndim != 3 or X.shape[1] != 2:
            raise ValueError("budget='shared' needs pairs of shape (n_pairs, 2, n_features).")
        share = draw(hnp.arrays(np.float64, (X.shape[0], 1), elements=_UNIT))
        radius[:, 0] = eps * share
        radius[:, 1] = eps - radius[:, 0]
    elif budget != "per_point":
        raise ValueError(f"budget must be one of {list(BUDGETS)}, got {budget!r}.")
    low, high = np.maximum(lo, X - radius), np.minimum(hi, X + radius)
    # Ends of each coordinate's range half of the time: the worst cases are at vertices.
    t = draw(
        hnp.arrays(np.float64, X.shape, elements=st.one_of(st.sampled_from([0.0, 1.0]), _UNIT))
    )
    return np.clip(low + t * (high - low), low, high)


@st.composite
def pairs_with_perturbations(
    draw, n_features=None, max_pairs=8, box=(0.0, 1.0), budget="shared", max_eps=0.5
):
    """A strategy for ``(pairs, eps, moved)``: pairs in ``box``, a budget, the pairs moved.

    Parameters
    ----------
    n_features : int or None, default=None
        Features; ``None`` draws it in 1..4.
    max_pairs : int, default=8
        At most this many pairs.
    box : tuple (lo, hi) or None, default=(0.0, 1.0)
        The box of the pairs and of the moved pairs.
    budget : {"shared", "per_point"}, default="shared"
        How ``eps`` applies to a pair (see :func:`perturbations`).
    max_eps : float, default=0.5
        The largest budget (see :func:`eps_values`).

    Returns
    -------
    strategy : hypothesis SearchStrategy
        Draws tuples ``(pairs, eps, moved)``: pairs of shape ``(n_pairs, 2, n_features)``
        (:func:`pairs_in_box`), a float ``eps`` (:func:`eps_values`) and the pairs moved
        within it (:func:`perturbations`).

    Examples
    --------
    The module's example property-tests a bound with it; ``tests/test_user_bound.py``
    does so at 1,000 examples. Here, the shared budget holds:

    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from skrobust.testing import pairs_with_perturbations
    >>> @settings(max_examples=10, deadline=None)
    ... @given(drawn=pairs_with_perturbations(n_features=2))
    ... def test_shared(drawn):
    ...     pairs, eps, moved = drawn
    ...     step = np.abs(moved - pairs).max(axis=2)
    ...     assert np.all(step.sum(axis=1) <= eps * (1 + 1e-9) + 1e-12)
    >>> test_shared()
    """
    pairs = draw(pairs_in_box(n_features, max_pairs, box))
    eps = draw(eps_values(max_eps))
    return pairs, eps, draw(perturbations(pairs, eps, box, budget))
