"""Certificates: bounds on the squared distance an attacker can reach, and certified radii.

Notation. ``u = x_i - x_j``, ``v = d_i - d_j``, ``w = u + v``, so
``D = u^T M u`` and ``D' = w^T M w`` with ``M = W^T W``. The budget bounds ``||v||_inf`` by
``e``: ``e = eps`` for the shared budget ``||d_i||_inf + ||d_j||_inf <= eps`` (eq. 4) and
``e = 2 eps`` for the per-point budget ``||d_i||_inf <= eps, ||d_j||_inf <= eps``. The box
``[lo, hi]^d`` has width ``b = hi - lo``, so ``u`` and ``w`` lie in ``[-b, b]^d``.
``K = ||W||_{inf->2} = max_{||t||_inf <= 1} ||W t||``, ``lam_max = ||M||_2``.

Derivations of the four bounds (each also holds for the lower side, without the ``e^2``
term, because ``|D' - D|`` is bounded by the same quantity):

- triangle: ``||W w|| <= ||W u|| + ||W v|| <= sqrt(D) + e K``, and
  ``||W w|| >= sqrt(D) - e K``. Needs no box.
- paper (eq. 12-19): ``D' - D = v^T M (u + w)``, and
  ``|v^T M u| <= ||W v|| ||W u|| <= (e K)(b K)``, likewise for ``w``, so
  ``|D' - D| <= 2 e b K^2 <= 2 d e b lam_max`` (eq. 18: ``K^2 <= d lam_max``). With
  ``b = 1`` this is eq. (19) for the shared budget and ``4 d eps lam_max`` per point: the
  paper's ``2 d eps lam_max`` is false per point (d=1, W=1, x=(0.9, 0.1), eps=0.1: D goes
  from 0.64 to 1.0 > 0.84).
- spectral (eq. 24, appendix A eq. 26-29): ``D' - D = 2 v^T M u + v^T M v`` with
  ``||v||_2 <= e sqrt(d)``, ``||u||_2 <= b sqrt(d)``, so
  ``D' - D <= d ||M||_2 (2 e b + e^2)``. Per point (``e = 2 eps``) and ``b = 1`` this is
  eq. (24), ``4 d (eps^2 + eps) ||M||_2``; under the shared budget ``e = eps`` halves it.
- Frobenius (eq. 25): the same with ``||M||_F >= ||M||_2``.

The paper's, spectral and Frobenius bounds need the box (``b``); without one
(``feature_range=None``) only the triangle bound holds.

ReLU networks have their own bounds, interval bound propagation and a Lipschitz bound
(``skrobust._network_bounds``); the public functions below dispatch to them.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from ._network_bounds import (
    network_certified_radius,
    network_certify_pairs,
    network_distances_and_bounds,
    network_of,
)
from ._target import LinearTarget, as_target, check_linear, resolve_threshold
from ._threads import single_threaded
from ._validation import (
    check_eps,
    check_feature_range,
    check_in_box,
    check_pairs,
    check_scalar_choice,
)

__all__ = [
    "MetricNorms",
    "certified_radius",
    "certify_pairs",
    "inf_to_2_norm",
    "metric_norms",
    "perturbed_distance_bounds",
]

BOUNDS = ("best", "paper", "spectral", "frobenius", "triangle", "interval", "lipschitz")
# Bounds that need no box.
_BOXLESS = ("best", "triangle", "interval", "lipschitz")
BUDGETS = ("shared", "per_point")

# Exact ||W||_{inf->2} by enumerating sign vectors up to this many features (2^(d-1) of
# them); larger W are split into blocks of at most this many features.
MAX_EXACT_FEATURES = 16

# Norms are rounded up by this factor so float rounding never makes a bound too small.
_ROUND_UP = 1.0 + 1e-12

# Relative safety margin of certificates: a pair whose bound misses the threshold by less
# than this (relative to the distances involved) is not certified.
CERTIFICATE_RTOL = 1e-9


def _sign_vectors(n):
    """All ``2^(n-1)`` sign vectors of length ``n`` with a first entry of +1, ``(m, n)``."""
    if n == 1:
        return np.ones((1, 1))
    rest = np.array(list(itertools.product((1.0, -1.0), repeat=n - 1)))
    return np.hstack([np.ones((rest.shape[0], 1)), rest])


def _exact_inf_to_2(W):
    """``max_{t in {-1, 1}^d} ||W t||`` (the max of a convex function is at a vertex)."""
    T = _sign_vectors(W.shape[1])
    best = 0.0
    for start in range(0, T.shape[0], 4096):
        V = T[start : start + 4096] @ W.T
        best = max(best, float(np.einsum("ij,ij->i", V, V).max()))
    return np.sqrt(best)


def inf_to_2_norm(components, max_exact_features=MAX_EXACT_FEATURES):
    """An upper bound on ``||W||_{inf->2} = max_{||t||_inf <= 1} ||W t||_2``.

    The norm is NP-hard in general. Up to ``max_exact_features`` features it is computed
    exactly by enumerating the ``2^(d-1)`` sign vectors (``||W t||`` is convex, so its
    maximum over the cube is at a vertex). Beyond that, the features are split into blocks
    ``a`` of at most ``max_exact_features`` with exact norms ``K_a``; then
    ``t^T M t = sum_{a,b} t_a^T M_ab t_b`` and each cross term is at most both
    ``K_a K_b`` (Cauchy-Schwarz) and ``sum |M_ab|`` (``|t| <= 1``), so
    ``K^2 <= sum_a K_a^2 + sum_{a != b} min(K_a K_b, sum |M_ab|)``. This is never above
    ``sum of the column norms of W`` nor ``sqrt(sum |M_kl|)``; the smaller of it and
    ``sqrt(d lam_max)`` (eq. 18) is returned.

    Parameters
    ----------
    components : array-like of shape (n_components, n_features)
        ``W``.
    max_exact_features : int, default=16
        Largest number of features (per block) whose norm is found by enumeration.

    Returns
    -------
    norm : float
        An upper bound on ``||W||_{inf->2}``, rounded up by a relative ``1e-12``.
    exact : bool
        Whether the bound is the exact norm (up to that rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import inf_to_2_norm
    >>> norm, exact = inf_to_2_norm(np.array([[1.0, 1.0], [1.0, -1.0]]))
    >>> round(norm, 6), exact
    (2.0, True)
    """
    W = np.asarray(components, dtype=np.float64)
    # The norm is homogeneous: computed on W / max|W|, so squares neither underflow into
    # subnormals (which lose the digits an upper bound needs) nor overflow.
    unit = float(np.abs(W).max()) if W.size else 0.0
    if unit == 0.0 or not np.isfinite(unit):
        unit = 1.0
    norm, exact = _inf_to_2_norm(W / unit, max_exact_features)
    return float(norm * unit * _ROUND_UP), exact


def _inf_to_2_norm(W, max_exact_features):
    """:func:`inf_to_2_norm` of ``W`` before rounding up, with entries of order 1."""
    d = W.shape[1]
    if d <= max_exact_features:
        return _exact_inf_to_2(W), True
    blocks = np.array_split(np.arange(d), -(-d // max_exact_features))
    K = np.array([_exact_inf_to_2(W[:, block]) for block in blocks])
    M = W.T @ W
    total = 0.0
    for a, block_a in enumerate(blocks):
        for b, block_b in enumerate(blocks):
            if a == b:
                total += K[a] ** 2
            else:
                total += min(K[a] * K[b], np.abs(M[np.ix_(block_a, block_b)]).sum())
    lam_max = np.linalg.norm(M, 2) if d else 0.0
    return min(np.sqrt(total), np.sqrt(d * lam_max)), False


@dataclass(frozen=True, eq=False)
class MetricNorms:
    """The norms of a linear metric that the certificates need, computed once per model.

    Build it with :func:`metric_norms` and pass it in place of the model to
    :func:`perturbed_distance_bounds` and :func:`certified_radius`, so that many calls do
    not recompute the norms (the sign-vector enumeration costs ``2^(d-1)`` products).

    Parameters
    ----------
    components : ndarray of shape (n_components, n_features)
        ``W`` in the raw input space.
    inf_to_2 : float
        An upper bound on ``K = ||W||_{inf->2}`` (see :func:`inf_to_2_norm`).
    inf_to_2_exact : bool
        Whether ``inf_to_2`` is exact.
    spectral : float
        ``lam_max = ||M||_2``, rounded up.
    frobenius : float
        ``||M||_F``, rounded up.
    threshold : float or None
        The model's own threshold on the squared distance, if any.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import metric_norms, perturbed_distance_bounds
    >>> from skrobust import MahalanobisMetric
    >>> norms = metric_norms(MahalanobisMetric(np.diag([3.0, 4.0]), np.zeros(2)))
    >>> round(norms.inf_to_2, 6), round(norms.spectral, 6)
    (5.0, 16.0)
    >>> pairs = np.zeros((3, 2, 2))
    >>> lower, upper = perturbed_distance_bounds(norms, pairs, 0.1, bound="triangle")
    >>> np.round(upper, 6).tolist()
    [0.25, 0.25, 0.25]
    """

    components: np.ndarray
    inf_to_2: float
    inf_to_2_exact: bool
    spectral: float
    frobenius: float
    threshold: float | None = None

    @property
    def n_features(self):
        """Number of input features, the columns of ``components``."""
        return self.components.shape[1]

    def __skrobust_target__(self):
        """The linear target of these norms (the model protocol).

        Returns
        -------
        target : LinearTarget
            ``components`` with ``threshold``.
        """
        return LinearTarget(self.components, threshold=self.threshold)


def metric_norms(model, max_exact_features=MAX_EXACT_FEATURES):
    """Compute the :class:`MetricNorms` of a fitted Mahalanobis model.

    Parameters
    ----------
    model : estimator, LinearTarget or MetricNorms
        Any linear model :func:`~skrobust.targets.as_target` reads (a fitted skrobust,
        metric-learn or scikit-learn NCA model, a ``FrozenEstimator``, a ``Pipeline`` of
        affine scalers and a metric step, a :class:`~skrobust.CertifiedPairClassifier`, a
        :class:`~skrobust.targets.LinearTarget`). A ``MetricNorms`` is returned as it is;
        a target keeps its norms, so passing the same target again does not recompute them.
    max_exact_features : int, default=16
        Passed to :func:`inf_to_2_norm`.

    Returns
    -------
    norms : MetricNorms

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from skrobust import metric_norms
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [0.9, 1.0]])
    >>> nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X, [0, 0, 1, 1])
    >>> norms = metric_norms(nca)
    >>> norms.inf_to_2_exact, norms.inf_to_2 ** 2 <= 2 * norms.spectral
    (True, True)
    """
    if isinstance(model, MetricNorms):
        return model
    target = check_linear(
        as_target(model), "The pair bounds", "the attack (AckMetricAttack) for an upper bound"
    )
    key = ("norms", max_exact_features)
    cached = target._cache.get(key)
    if cached is None:
        cached = _norms_of(target.components, max_exact_features)
        target._cache[key] = cached
    if cached.threshold == target.threshold:
        return cached
    return MetricNorms(*(getattr(cached, f) for f in _NORM_FIELDS), target.threshold)


_NORM_FIELDS = ("components", "inf_to_2", "inf_to_2_exact", "spectral", "frobenius")


def _norms_of(components, max_exact_features):
    """The :class:`MetricNorms` of ``W`` (without a threshold)."""
    W = np.ascontiguousarray(components, dtype=np.float64)
    # Norms of W / scale, scaled back: squares of tiny entries would underflow to 0.
    scale = float(np.abs(W).max()) if W.size else 0.0
    if scale == 0.0:
        return MetricNorms(W, 0.0, True, 0.0, 0.0)
    unit = W / scale
    M = unit.T @ unit
    K, exact = inf_to_2_norm(unit, max_exact_features)
    spectral = float(np.linalg.norm(M, 2))
    frobenius = float(np.linalg.norm(M, "fro"))
    square = scale * scale * _ROUND_UP
    return MetricNorms(W, K * scale, exact, spectral * square, frobenius * square)


# Pairs per block of the distance computation: the block's temporaries stay in cache and
# are reused (allocating fresh (n_pairs, n_features) arrays costs more than the arithmetic).
_BLOCK_PAIRS = 1 << 13


def checked_squared_distances(components, pairs, feature_range=None):
    """Validate pairs and return their squared distances ``D``, in one blocked pass.

    The same checks and messages as ``check_pairs`` and ``check_in_box`` (finite values,
    shape, number of features, inside the box), but each block is checked while it is in
    cache. Matrix products run on one BLAS thread: on blocks this small, more threads only
    add synchronisation.
    """
    n_features = components.shape[1]
    try:
        X = np.asarray(pairs, dtype=np.float64)
    except (TypeError, ValueError):
        return check_pairs(pairs, n_features=n_features)  # raises the canonical TypeError
    if X.ndim != 3 or X.shape[1] != 2 or X.shape[0] == 0 or X.shape[2] != n_features:
        check_pairs(X, n_features=n_features)  # raises the canonical ValueError
    n_pairs = X.shape[0]
    WT = np.ascontiguousarray(components.T)
    D = np.empty(n_pairs)
    block = min(n_pairs, _BLOCK_PAIRS)
    diff = np.empty((block, n_features))
    embedded = np.empty((block, WT.shape[1]))
    one_thread = n_pairs > block  # threadpoolctl costs ~1 ms: only for many blocks
    with single_threaded(one_thread):
        for start in range(0, n_pairs, block):
            stop = min(n_pairs, start + block)
            chunk = X[start:stop]
            low, high = chunk.min(), chunk.max()
            if not (np.isfinite(low) and np.isfinite(high)):
                check_pairs(chunk)  # raises: NaN or infinite values
            if feature_range is not None and (low < feature_range[0] or high > feature_range[1]):
                check_in_box(X, feature_range, name="pairs")  # raises, with the whole range
            u, v = diff[: stop - start], embedded[: stop - start]
            np.subtract(chunk[:, 0], chunk[:, 1], out=u)
            np.matmul(u, WT, out=v)
            np.einsum("ij,ij->i", v, v, out=D[start:stop])
    return D


def _budget_factor(budget):
    """``e / eps``: how far ``||d_i - d_j||_inf`` can go per unit of budget."""
    return 1.0 if budget == "shared" else 2.0


def _bounds_from_distances(norms, D, eps, bound, budget, feature_range):
    """Lower and upper bounds on ``D'`` for squared distances ``D`` and budgets ``eps``.

    ``D`` has shape (n_pairs,), ``eps`` shape (n_eps,); the results (n_eps, n_pairs).
    """
    e = _budget_factor(budget) * eps[:, np.newaxis]
    d = norms.n_features
    lowers, uppers = [], []
    if bound in ("best", "triangle"):
        root = np.sqrt(D)
        reach = e * norms.inf_to_2
        uppers.append((root + reach) ** 2)
        # Floor before squaring: sqrt(D') >= max(0, sqrt(D) - e K).
        lowers.append(np.maximum(root - reach, 0.0) ** 2)
    if feature_range is not None:
        b = feature_range[1] - feature_range[0]
        if bound in ("best", "paper"):
            increment = 2.0 * d * e * b * norms.spectral
            uppers.append(D + increment)
            lowers.append(np.maximum(D - increment, 0.0))
        for name, norm in (("spectral", norms.spectral), ("frobenius", norms.frobenius)):
            if bound in ("best", name):
                linear = 2.0 * d * e * b * norm
                uppers.append(D + linear + d * e * e * norm)
                lowers.append(np.maximum(D - linear, 0.0))
    lower, upper = lowers[0], uppers[0]
    for low, up in zip(lowers[1:], uppers[1:], strict=True):
        lower, upper = np.maximum(lower, low), np.minimum(upper, up)
    return lower, upper


def distances_and_bounds(model, pairs, eps, bound, budget, feature_range):
    """Validate, then return ``D`` (n_pairs,) and the bounds (n_eps, n_pairs) on ``D'``.

    ``bound``, ``budget`` and ``eps`` (a 1-d array) must be validated already.
    """
    norms = metric_norms(model)
    feature_range = check_feature_range(feature_range)
    D = checked_squared_distances(norms.components, pairs, feature_range)
    lower, upper = _bounds_from_distances(norms, D, eps, bound, budget, feature_range)
    return D, lower, upper


def perturbed_distance_bounds(
    model, pairs, eps, bound="best", budget="shared", feature_range=(0.0, 1.0)
):
    """Bounds on the squared distance ``D`` any perturbation within the budget can reach.

    For each pair ``(x_i, x_j)``, every perturbation ``(d_i, d_j)`` within the budget that
    keeps both points in the box gives ``lower <= D(x_i + d_i, x_j + d_j) <= upper``.
    ``D`` is the squared Mahalanobis distance ``||W (a - b)||^2`` (eq. 1).

    With ``e = eps`` (shared budget) or ``2 eps`` (per point), ``b = hi - lo`` the width
    of the box, ``d`` the number of features, ``K`` an upper bound on
    ``||W||_{inf->2}`` and ``lam_max = ||W^T W||_2``:

    ========= ============================================ ==============================
    bound     upper                                        lower (floored at 0)
    ========= ============================================ ==============================
    paper     ``D + 2 d e b lam_max`` (eq. 19)             ``D - 2 d e b lam_max``
    spectral  ``D + d (2 e b + e^2) ||M||_2`` (eq. 24)     ``D - 2 d e b ||M||_2``
    frobenius ``D + d (2 e b + e^2) ||M||_F`` (eq. 25)     ``D - 2 d e b ||M||_F``
    triangle  ``(sqrt(D) + e K)^2``                        ``max(0, sqrt(D) - e K)^2``
    ========= ============================================ ==============================

    For the unit box and the per-point budget, the spectral and Frobenius rows are the
    paper's eq. (24)-(25); the shared budget halves ``e``. The paper's eq. (19) is
    ``D + 2 d eps lam_max``, which holds for the shared budget only: per point the constant
    doubles (``d=1, W=1, x=(0.9, 0.1), eps=0.1`` reaches ``D' = 1.0 > 0.84``). The
    derivations are in the module docstring of ``skrobust._bounds``.

    For a ReLU network (``D = ||f(x) - f(x')||^2``, eq. 2) the bounds above are linear-only
    and raise a ``TypeError``; two others hold (derivations in ``skrobust._network_bounds``):

    ========= ==========================================================================
    lipschitz the triangle row with ``K = ||W_1||_{inf->2} prod_{l >= 2} ||W_l||_2`` (ReLU
              is 1-Lipschitz); needs no box
    interval  interval bound propagation: a box holding ``f`` of every reachable input
              (the ``eps`` ball inside the box), and the nearest and farthest squared
              distances between the two points' boxes
    ========= ==========================================================================

    ``"best"`` takes the tighter of the two per pair. On a linear metric ``"lipschitz"``
    is ``"triangle"`` and ``"interval"`` is the same propagation through one layer.

    Parameters
    ----------
    model : fitted model, MetricTarget or MetricNorms
        Any model :func:`~skrobust.targets.as_target` reads whose metric is linear or a ReLU
        network (:class:`~skrobust.ReluMetricLearner`,
        :class:`~skrobust.targets.ReluNetworkTarget`, a pipeline of affine scalers and one),
        or the :class:`MetricNorms` of a linear one (precomputed by :func:`metric_norms`, to
        skip recomputing the norms).
    pairs : array-like of shape (n_pairs, 2, n_features)
        Clean pairs, inside the box.
    eps : float or array-like of shape (n_eps,)
        Budget(s) in the L-infinity norm, ``>= 0``.
    bound : {"best", "paper", "spectral", "frobenius", "triangle", "interval", \
            "lipschitz"}, default="best"
        Which bound; ``"best"`` takes, per pair, the tightest of those valid for the box
        (the largest lower and the smallest upper bound: all are valid, so these are too):
        of the first four for a linear metric, of ``"interval"`` and ``"lipschitz"`` for a
        network (the others raise a ``TypeError`` there).
    budget : {"shared", "per_point"}, default="shared"
        ``"shared"``: ``||d_i||_inf + ||d_j||_inf <= eps`` (eq. 4). ``"per_point"``:
        ``||d_i||_inf <= eps`` and ``||d_j||_inf <= eps``.
    feature_range : (float, float) or None, default=(0.0, 1.0)
        The box the clean and the perturbed points lie in. ``None`` (no box) leaves only
        the triangle, interval and Lipschitz bounds valid: ``"best"`` then uses those, and
        the other bounds raise a ``ValueError``.

    Returns
    -------
    lower, upper : ndarray of shape (n_pairs,), or (n_eps, n_pairs) for several eps
        Bounds on the squared distance of the perturbed pair. They bound the exact
        ``D'``; the norms they use are rounded up, but compare them with a small relative
        tolerance (``CertifiedPairClassifier.certify`` uses ``1e-9``).

    Raises
    ------
    ValueError
        For an unknown ``bound`` or ``budget``, a box-dependent bound without a box, pairs
        outside the box, or an invalid ``eps``.
    TypeError
        For a linear-only bound on a network, or a model without a linear metric or the
        layers of a ReLU network (a :class:`~skrobust.targets.CallableTarget`: attack it
        instead, for an upper bound).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import perturbed_distance_bounds
    >>> from skrobust import MahalanobisMetric
    >>> identity = MahalanobisMetric(np.eye(1), np.zeros(1))
    >>> pairs = np.array([[[0.9], [0.1]]])
    >>> lower, upper = perturbed_distance_bounds(
    ...     identity, pairs, eps=0.1, bound="triangle", budget="per_point")
    >>> np.round([lower[0], upper[0]], 6).tolist()
    [0.36, 1.0]
    >>> lower, upper = perturbed_distance_bounds(
    ...     identity, pairs, eps=0.1, bound="paper", budget="per_point")
    >>> np.round([lower[0], upper[0]], 6).tolist()
    [0.24, 1.04]
    """
    bound = check_scalar_choice(bound, "bound", BOUNDS)
    budget = check_scalar_choice(budget, "budget", BUDGETS)
    eps_values, scalar = check_eps(eps)
    _check_box_needed(bound, feature_range)
    network = network_of(model, bound)
    if network is not None:
        feature_range = check_feature_range(feature_range)
        _, lower, upper = network_distances_and_bounds(
            network, pairs, eps_values, bound, budget, feature_range
        )
    else:
        _, lower, upper = distances_and_bounds(
            model, pairs, eps_values, bound, budget, feature_range
        )
    if scalar:
        return lower[0], upper[0]
    return lower, upper


def _check_box_needed(bound, feature_range):
    if feature_range is None and bound not in _BOXLESS:
        raise ValueError(
            f"bound={bound!r} needs a box (its increment scales with the box width); with "
            "feature_range=None only bound='triangle', 'interval' or 'lipschitz' is valid, "
            "and bound='best' uses those."
        )


def rounding_slack(pairs, inf_to_2, eps=0.0):
    """How far float rounding of ``x + delta`` alone can move ``sqrt(D)``, per pair.

    An attacker computes ``x + delta`` in floating point: each coordinate is off by up to half
    an ulp of its magnitude, so each point moves by up to ``u (max|x| + eps)`` more in the
    L-infinity norm (``u`` the machine epsilon), and ``sqrt(D)`` by ``K`` times that for each
    of the two points. Negligible for real budgets, it decides pairs whose margin is a few
    ulps wide (found by hypothesis: a pair ``4e-16`` apart, ``eps = 1.4e-16``). Doubled for
    safety.
    """
    scale = np.abs(np.asarray(pairs, dtype=np.float64)).max(axis=(1, 2)) + eps
    return 4.0 * np.finfo(np.float64).eps * scale * inf_to_2


def _radius_from_distances(D, threshold, inf_to_2, budget, slack=0.0):
    """Triangle-bound radius for squared distances ``D`` (see :func:`certified_radius`);
    ``slack`` (see :func:`rounding_slack`) is taken off the margin in ``sqrt(D)``."""
    root = np.sqrt(D)
    if threshold < 0:
        # No pair is similar and no perturbation makes D negative.
        return np.full(D.shape, np.inf)
    t_root = np.sqrt(threshold)
    gap = np.where(D <= threshold, t_root - root, root - t_root)
    gap = gap - CERTIFICATE_RTOL * (t_root + root) - slack
    reach = _budget_factor(budget) * inf_to_2
    radius = np.zeros(D.shape)
    positive = gap > 0
    with np.errstate(divide="ignore"):
        radius[positive] = gap[positive] / reach
    return radius


def certified_radius(model, pairs, threshold=None, budget="shared"):
    """Per pair, a budget below which its predicted label provably cannot change.

    A pair is predicted similar when ``D <= threshold``. By the triangle bound
    (``|sqrt(D') - sqrt(D)| <= e K``, ``K`` an upper bound on ``||W||_{inf->2}``, ``e``
    the budget factor), the prediction cannot change for any ``eps`` strictly below

    - ``(sqrt(threshold) - sqrt(D)) / K`` for a pair predicted similar,
    - ``(sqrt(D) - sqrt(threshold)) / K`` for a pair predicted dissimilar,

    halved for the per-point budget. The radius is 0 at the threshold, and grows as the
    pair moves away from it. The triangle bound needs no box, so the radius holds with or
    without one (a box can only make the attacker weaker). A relative safety margin of
    ``1e-9`` is subtracted so that float rounding never certifies a breakable pair; a pair
    within that margin of the threshold gets radius 0 (ties are never certified).

    For a ReLU network, ``K`` is the Lipschitz bound
    ``||W_1||_{inf->2} prod_{l >= 2} ||W_l||_2``, and the radius is the larger of that
    closed form and the interval radius: the largest budget at which interval bound
    propagation (without a box) certifies the pair, found by bisection to a relative
    ``1e-6``, every returned value itself certified.

    Parameters
    ----------
    model : fitted model, MetricTarget or MetricNorms
        Any model :func:`~skrobust.targets.as_target` reads whose metric is linear or a ReLU
        network, or the :class:`MetricNorms` of a linear one.
    pairs : array-like of shape (n_pairs, 2, n_features)
        Pairs to certify; any finite values (the triangle bound needs no box).
    threshold : float or None, default=None
        Threshold on the squared distance; ``None`` uses the model's own (a metric-learn
        pair learner's ``threshold_`` squared, a :class:`~skrobust.CertifiedPairClassifier`'s
        ``threshold_``), and raises a ``ValueError`` when it has none.
    budget : {"shared", "per_point"}, default="shared"
        The attacker's budget: ``"shared"`` bounds the sum of both points' perturbations by
        ``eps`` (the paper's eq. 4), ``"per_point"`` each point's.

    Returns
    -------
    radius : ndarray of shape (n_pairs,)
        The pair is certified at every ``eps < radius``. ``inf`` when nothing can change
        the prediction (``W = 0``, or a negative threshold).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import certified_radius
    >>> from skrobust import MahalanobisMetric
    >>> identity = MahalanobisMetric(np.eye(1), np.zeros(1))
    >>> pairs = np.array([[[0.0], [0.1]], [[0.0], [0.5]], [[0.0], [0.3]]])
    >>> np.round(certified_radius(identity, pairs, threshold=0.09), 6).tolist()
    [0.2, 0.2, 0.0]
    """
    budget = check_scalar_choice(budget, "budget", BUDGETS)
    network = network_of(model, "best")
    if network is not None:
        threshold = resolve_threshold(network, threshold)
        return network_certified_radius(network, pairs, threshold, budget)
    norms = metric_norms(model)
    threshold = resolve_threshold(norms, threshold)
    D = checked_squared_distances(norms.components, pairs)
    slack = rounding_slack(pairs, norms.inf_to_2)
    return _radius_from_distances(D, threshold, norms.inf_to_2, budget, slack)


def certify_from_bounds(D, lower, upper, threshold, slack=0.0):
    """Whether the predicted label of each pair provably survives, given bounds on ``D'``.

    Predicted similar (``D <= threshold``): certified when ``upper`` stays strictly below
    the threshold; predicted dissimilar: when ``lower`` stays strictly above it. Both with
    the relative safety margin ``CERTIFICATE_RTOL``, so ties are never certified, and with
    ``slack`` (see :func:`rounding_slack`) added to the bounds in ``sqrt(D)``.
    """
    margin = CERTIFICATE_RTOL * (abs(threshold) + D)
    upper = (np.sqrt(np.maximum(upper, 0.0)) + slack) ** 2
    lower = np.maximum(np.sqrt(np.maximum(lower, 0.0)) - slack, 0.0) ** 2
    return np.where(D <= threshold, upper < threshold - margin, lower > threshold + margin)


def certify_pairs(
    model, pairs, eps, threshold=None, bound="best", budget="shared", feature_range=(0.0, 1.0)
):
    """Whether each pair's predicted label provably survives every attack within ``eps``.

    A pair is predicted similar when ``D <= threshold``; it is certified when the bound on
    the squared distance any perturbation within the budget reaches
    (:func:`perturbed_distance_bounds`) stays strictly on the same side of the threshold,
    with the relative margin ``CERTIFICATE_RTOL`` and the rounding slack of ``x + delta``
    (ties are never certified).

    Parameters
    ----------
    model : fitted model, MetricTarget or MetricNorms
        Any model :func:`~skrobust.targets.as_target` reads whose metric is linear or a ReLU
        network, or the :class:`MetricNorms` of a linear one.
    pairs : array-like of shape (n_pairs, 2, n_features)
        Clean pairs, inside the box.
    eps : float
        The L-infinity budget, ``>= 0``.
    threshold : float or None, default=None
        Threshold on the squared distance; ``None`` uses the model's own.
    bound : {"best", "paper", "spectral", "frobenius", "triangle", "interval", \
            "lipschitz"}, default="best"
        See :func:`perturbed_distance_bounds` (a network takes the last two and ``"best"``).
    budget : {"shared", "per_point"}, default="shared"
        See :func:`perturbed_distance_bounds`.
    feature_range : (float, float) or None, default=(0.0, 1.0)
        See :func:`perturbed_distance_bounds`.

    Returns
    -------
    certified : ndarray of bool, shape (n_pairs,)

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.certificates import certify_pairs
    >>> from skrobust import MahalanobisMetric
    >>> identity = MahalanobisMetric(np.eye(1), np.zeros(1))
    >>> pairs = np.array([[[0.0], [0.1]], [[0.0], [0.5]], [[0.0], [0.3]]])
    >>> certify_pairs(identity, pairs, 0.1, threshold=0.09, bound="triangle").tolist()
    [True, True, False]
    """
    bound = check_scalar_choice(bound, "bound", BOUNDS)
    budget = check_scalar_choice(budget, "budget", BUDGETS)
    eps_values, scalar = check_eps(eps)
    if not scalar:
        raise ValueError(f"eps must be a single number, got {eps!r}.")
    _check_box_needed(bound, feature_range)
    network = network_of(model, bound)
    if network is not None:
        threshold = resolve_threshold(network, threshold)
        feature_range = check_feature_range(feature_range)
        eps = float(eps_values[0])
        return network_certify_pairs(network, pairs, eps, threshold, bound, budget, feature_range)
    norms = metric_norms(model)
    threshold = resolve_threshold(norms, threshold)
    D, lower, upper = distances_and_bounds(norms, pairs, eps_values, bound, budget, feature_range)
    slack = rounding_slack(pairs, norms.inf_to_2, float(eps_values[0]))
    return certify_from_bounds(D, lower[0], upper[0], threshold, slack)
