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

from ._validation import check_feature_range

__all__ = [
    "BUDGETS",
    "FixedMetric",
    "boxes",
    "budgets",
    "components",
    "eps_values",
    "fixed_metrics",
    "pairs_in_box",
    "pairs_with_perturbations",
    "perturbations",
    "points_in_box",
    "triplets_in_box",
]

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

    _skrobust_mahalanobis = True

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

        Returns
        -------
        self : FixedMetric
        """
        self.components_  # noqa: B018 - validates
        if self.threshold is not None and not np.isfinite(float(self.threshold)):
            raise ValueError(f"threshold must be finite or None, got {self.threshold!r}.")
        return self

    def transform(self, X):
        """Embed points: ``X @ W.T``."""
        return np.asarray(X, dtype=np.float64) @ self.components_.T

    def pair_distances(self, pairs):
        """Squared distances ``D = ||W (a - b)||^2`` of pairs ``(n_pairs, 2, n_features)``
        (as :meth:`skrobust.MahalanobisMetric.pair_distances`; thresholds are on ``D``)."""
        pairs = np.asarray(pairs, dtype=np.float64)
        diff = (pairs[:, 0] - pairs[:, 1]) @ self.components_.T
        return np.einsum("ij,ij->i", diff, diff)

    def get_mahalanobis_matrix(self):
        """``M = W^T W``."""
        W = self.components_
        return W.T @ W

    def __sklearn_is_fitted__(self):
        return True

    def _mahalanobis_parts(self):
        threshold = None if self.threshold is None else float(self.threshold)
        return self.components_, threshold


def _count(draw, value, low, high):
    return draw(st.integers(low, high)) if value is None else int(value)


@st.composite
def boxes(draw, unit=None):
    """A box ``(lo, hi)``: the unit box when ``unit`` is True, a random one (``lo`` in
    ``[-3, 3]``, width in ``[0.25, 4]``) when False, either when None."""
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
    """``W`` of shape ``(n_components, n_features)``.

    Parameters
    ----------
    n_features, n_components : int or None
        Shape; ``None`` draws ``n_features`` in 1..4 and ``n_components`` in
        1..``n_features + 1``.
    scale : float, default=2.0
        Largest entry (``condition=None``) or largest singular value.
    condition : float or None, default=None
        ``None``: entries drawn in ``[-scale, scale]`` (any ``W``, singular ones included).
        A number ``>= 1``: ``W = U diag(s) V^T`` with random rotations and singular values
        in ``[scale / condition, scale]``, so its condition number is at most ``condition``.
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
    """A :class:`FixedMetric` whose ``W`` is drawn by :func:`components` (same parameters)."""
    return FixedMetric(draw(components(n_features, n_components, scale, condition)))


@st.composite
def points_in_box(draw, n_points=None, n_features=None, box=(0.0, 1.0)):
    """An array ``(n_points, n_features)`` with every entry in ``box`` (ends included);
    ``None`` draws ``n_points`` in 1..8 and ``n_features`` in 1..4."""
    lo, hi = check_feature_range(box, name="box")
    n_points = _count(draw, n_points, 1, 8)
    n_features = _count(draw, n_features, 1, 4)
    u = draw(hnp.arrays(np.float64, (n_points, n_features), elements=_UNIT))
    return np.clip(lo + u * (hi - lo), lo, hi)


@st.composite
def pairs_in_box(draw, n_features=None, max_pairs=8, box=(0.0, 1.0)):
    """Pairs ``(n_pairs, 2, n_features)`` in ``box``, ``1 <= n_pairs <= max_pairs``."""
    n_features = _count(draw, n_features, 1, 4)
    n_pairs = draw(st.integers(1, max_pairs))
    points = draw(points_in_box(2 * n_pairs, n_features, box))
    return points.reshape(n_pairs, 2, n_features)


@st.composite
def triplets_in_box(draw, n_features=None, max_triplets=6, box=(0.0, 1.0)):
    """Triplets (anchor, positive, negative) ``(n_triplets, 3, n_features)`` in ``box``."""
    n_features = _count(draw, n_features, 1, 4)
    n = draw(st.integers(1, max_triplets))
    return draw(points_in_box(3 * n, n_features, box)).reshape(n, 3, n_features)


def budgets():
    """A budget kind: ``"shared"`` (eq. 4) or ``"per_point"``."""
    return st.sampled_from(BUDGETS)


def eps_values(max_eps=0.5):
    """A budget ``eps`` in ``[0, max_eps]``, 0 included."""
    return st.one_of(st.just(0.0), st.floats(0.0, max_eps, allow_nan=False))


@st.composite
def perturbations(draw, X, eps, box=(0.0, 1.0), budget="per_point"):
    """``X`` moved within the budget and the box, with vertices of the feasible set likely.

    ``X`` holds points ``(n, n_features)`` (each moves by ``||d||_inf <= eps``) or pairs
    ``(n, 2, n_features)``: ``budget="per_point"`` moves each point by up to ``eps``,
    ``"shared"`` splits ``eps`` between the two points of a pair at a drawn ratio (eq. 4).
    ``X`` must lie in ``box``; ``box=None`` is no box.
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
    """``(pairs, eps, moved)``: pairs in ``box``, a budget and the pairs moved within it."""
    pairs = draw(pairs_in_box(n_features, max_pairs, box))
    eps = draw(eps_values(max_eps))
    return pairs, eps, draw(perturbations(pairs, eps, box, budget))
