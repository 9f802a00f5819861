"""Sound bounds for ReLU-network metrics: interval bound propagation and a Lipschitz bound.

The core paper certifies linear metrics only ("we leave the derivation to the future
work"). For a network ``f`` (``skrobust._network``), two classical arguments bound how far
an L-infinity perturbation ``||delta||_inf <= eps`` moves the embedding; each is sound on
its own, so the tighter of the two is too.

**Lipschitz (the triangle bound of a network).** ReLU is 1-Lipschitz in each coordinate, so
``||relu(a) - relu(b)||_2 <= ||a - b||_2``, and
``||f(x + delta) - f(x)||_2 <= prod_{l >= 2} ||W_l||_2 * ||W_1 delta||_2
<= K eps`` with ``K = ||W_1||_{inf->2} prod_{l >= 2} ||W_l||_2`` (``||W_1||_{inf->2}`` from
:func:`~skrobust.inf_to_2_norm`, exact up to 16 features, and every norm rounded up). For a
pair whose points move by ``delta_i``, ``delta_j``,
``|sqrt(D') - sqrt(D)| <= K (||delta_i||_inf + ||delta_j||_inf) <= e K`` with ``e = eps``
(shared budget) or ``2 eps`` (per point), exactly the linear triangle bound with this
``K``; it needs no box.

**Interval bound propagation (IBP).** The inputs a point can reach form a box
``[max(lo, x - eps), min(hi, x + eps)]``. Through an affine layer, a box of centre ``mu``
and radius ``r`` maps into the box of centre ``W mu + b`` and radius ``|W| r``; ReLU is
monotone, so it maps ``[l, u]`` onto ``[relu(l), relu(u)]``. Layer by layer this gives a
box ``[L, U]`` holding ``f`` of every reachable input. Two boxes bound the pair's
difference coordinatewise, ``f(a') - f(b') in [L_a - U_b, U_a - L_b]``, so ``D'`` lies
between the squared distance from 0 to that box and the squared distance to its farthest
corner. IBP uses the box, which makes it tighter than the Lipschitz bound near the box's
faces and for small budgets; the Lipschitz bound does not widen with depth as IBP does.
Under the shared budget each point may move by the whole ``eps``, a relaxation.

**Rounding.** Each IBP layer widens its box by ``(n + 4) * machine eps`` times
``|W| (|mu| + r) + |b|``, more than the float error of the products (``gamma_n`` times the
same sums, Higham's bound for dot products of length ``n``) and of forming ``mu`` and ``r``.
Both bounds allow for the rounding of ``x + delta`` (each coordinate a few ulps past
``eps``): IBP's input boxes are widened by it, the Lipschitz reach grows by ``K`` times it.
The certificates built on these bounds keep the relative margin ``CERTIFICATE_RTOL`` on
top.
"""

import functools

import numpy as np

__all__ = [
    "NETWORK_BOUNDS",
    "interval_distance_bounds",
    "interval_embedding",
    "lipschitz_constant",
    "network_certified_radius",
    "network_certify_pairs",
    "network_distances_and_bounds",
    "network_of",
    "network_pair_bounds",
]

_MACHINE_EPS = np.finfo(np.float64).eps


@functools.lru_cache(maxsize=32)
def _lipschitz_of_bytes(shapes, *blobs):
    # _bounds imports this module, so its norms are imported here.
    from ._bounds import _ROUND_UP, inf_to_2_norm

    layers = [
        np.frombuffer(blob, dtype=np.float64).reshape(shape)
        for shape, blob in zip(shapes, blobs, strict=True)
    ]
    K, _ = inf_to_2_norm(layers[0])
    for W in layers[1:]:
        K *= float(np.linalg.norm(W, 2)) * _ROUND_UP
    return K * _ROUND_UP


def lipschitz_constant(layers):
    """``K = ||W_1||_{inf->2} prod_{l >= 2} ||W_l||_2``, rounded up.

    ``||f(x') - f(x)||_2 <= K ||x' - x||_inf`` for every ``x, x'`` (module docstring). Cached
    per network: the sign-vector search of ``||W_1||_{inf->2}`` costs ``2^15`` products per
    block of 16 features.

    Parameters
    ----------
    layers : sequence of (W, b)

    Returns
    -------
    K : float

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._network_bounds import lipschitz_constant
    >>> layers = [(np.array([[1.0, 1.0], [1.0, -1.0]]), np.zeros(2)),
    ...           (np.array([[3.0, 0.0]]), np.zeros(1))]
    >>> round(lipschitz_constant(layers), 9)  # ||W_1||_{inf->2} = 2, ||W_2||_2 = 3
    6.0
    """
    weights = [np.ascontiguousarray(W, dtype=np.float64) for W, _ in layers]
    return _lipschitz_of_bytes(tuple(W.shape for W in weights), *(W.tobytes() for W in weights))


def interval_embedding(layers, lower, upper):
    """A box ``[L, U]`` holding ``f(x)`` for every ``x`` in ``[lower, upper]`` (IBP).

    Parameters
    ----------
    layers : sequence of (W, b)
    lower, upper : ndarray of shape (n, d)
        Input boxes, one per row, ``lower <= upper``.

    Returns
    -------
    L, U : ndarray of shape (n, n_components)
        Sound bounds, widened for float rounding (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._network_bounds import interval_embedding
    >>> layers = [(np.array([[1.0, -1.0]]), np.zeros(1)), (np.array([[2.0]]), np.zeros(1))]
    >>> L, U = interval_embedding(layers, np.array([[0.0, 0.0]]), np.array([[1.0, 0.5]]))
    >>> # 2 relu(x1 - x2) lies in [0, 2]; the bounds are that, widened by a few ulps.
    >>> bool(-1e-12 < L[0, 0] <= 0.0), bool(2.0 <= U[0, 0] < 2.0 + 1e-12)
    (True, True)
    """
    L, U = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    last = len(layers) - 1
    for index, (W, b) in enumerate(layers):
        mu = (L + U) / 2.0
        r = np.maximum(U - mu, mu - L)
        A = np.abs(W)
        centre = mu @ W.T + b
        radius = r @ A.T
        slack = (W.shape[1] + 4) * _MACHINE_EPS * ((np.abs(mu) + r) @ A.T + np.abs(b))
        radius += slack
        L, U = centre - radius, centre + radius
        if index < last:
            np.maximum(L, 0.0, out=L)
            np.maximum(U, 0.0, out=U)
    return L, U


def input_boxes(X, eps, feature_range):
    """The inputs within ``eps`` of each row of ``X`` (and inside the box), widened by the
    rounding of ``x + delta``. ``eps`` is a float or one value per row."""
    eps = np.asarray(eps, dtype=np.float64).reshape(-1, *([1] * (X.ndim - 1)))
    reach = eps * (1.0 + 4.0 * _MACHINE_EPS) + 4.0 * _MACHINE_EPS * np.abs(X)
    lower, upper = X - reach, X + reach
    if feature_range is not None:
        np.maximum(lower, feature_range[0], out=lower)
        np.minimum(upper, feature_range[1], out=upper)
    return lower, upper


def _pair_distances(layers, pairs):
    """``D`` of each pair, embedding both points in one pass."""
    from ._network import relu_forward

    n = pairs.shape[0]
    embedded = relu_forward(layers, pairs.reshape(2 * n, -1)).reshape(n, 2, -1)
    U = embedded[:, 0] - embedded[:, 1]
    return np.einsum("ij,ij->i", U, U)


def _box_distance_bounds(L_a, U_a, L_b, U_b):
    """Bounds on ``||p - q||^2`` for ``p`` in ``[L_a, U_a]`` and ``q`` in ``[L_b, U_b]``."""
    low_diff, high_diff = L_a - U_b, U_a - L_b
    gap = np.maximum(np.maximum(low_diff, -high_diff), 0.0)
    far = np.maximum(np.abs(low_diff), np.abs(high_diff))
    return np.einsum("...j,...j->...", gap, gap), np.einsum("...j,...j->...", far, far)


def network_pair_bounds(layers, pairs, eps_values, bound, budget, feature_range):
    """``D`` of each pair and bounds on ``D'`` under every perturbation within the budget.

    Parameters
    ----------
    layers : sequence of (W, b)
    pairs : ndarray of shape (n_pairs, 2, n_features)
    eps_values : ndarray of shape (n_eps,)
    bound : {"best", "interval", "lipschitz"}
    budget : {"shared", "per_point"}
    feature_range : tuple or None

    Returns
    -------
    D : ndarray of shape (n_pairs,)
    lower, upper : ndarray of shape (n_eps, n_pairs)
    """
    n = pairs.shape[0]
    D = _pair_distances(layers, pairs)
    lowers, uppers = [], []
    if bound in ("best", "lipschitz"):
        e = (1.0 if budget == "shared" else 2.0) * eps_values[:, None]
        K = lipschitz_constant(layers)
        # The rounding of x + delta moves each point a few ulps more (IBP's input boxes
        # hold it already); see skrobust._bounds.rounding_slack.
        scale = np.abs(pairs).max(axis=(1, 2))[None, :] + eps_values[:, None]
        root, reach = np.sqrt(D), e * K + 4.0 * _MACHINE_EPS * scale * K
        lowers.append(np.maximum(root - reach, 0.0) ** 2)
        uppers.append((root + reach) ** 2)
    if bound in ("best", "interval"):
        flat = pairs.reshape(2 * n, -1)
        low, up = np.empty((len(eps_values), n)), np.empty((len(eps_values), n))
        for e, eps in enumerate(eps_values):
            L, Up = interval_embedding(layers, *input_boxes(flat, eps, feature_range))
            L, Up = L.reshape(n, 2, -1), Up.reshape(n, 2, -1)
            low[e], up[e] = _box_distance_bounds(L[:, 0], Up[:, 0], L[:, 1], Up[:, 1])
        lowers.append(low)
        uppers.append(up)
    lower, upper = lowers[0], uppers[0]
    for low, up in zip(lowers[1:], uppers[1:], strict=True):
        lower, upper = np.maximum(lower, low), np.minimum(upper, up)
    return D, lower, upper


def interval_distance_bounds(layers, X, eps, references, feature_range):
    """IBP bounds on ``||f(x + delta) - e_j||`` (not squared), per point and reference.

    The distances from each reference ``e_j`` to the nearest and the farthest point of the
    IBP box of ``f(x + delta)``, widened by the relative margin ``CERTIFICATE_RTOL``. The
    kNN certificate intersects them with the Lipschitz intervals ``r_j -+ eps K``.

    Parameters
    ----------
    layers : sequence of (W, b)
    X : ndarray of shape (n, d)
    eps : ndarray of shape (n,)
        One budget per point.
    references : ndarray of shape (n_references, n_components)
        Embedded references.
    feature_range : tuple or None

    Returns
    -------
    lower, upper : ndarray of shape (n, n_references)
    """
    from ._bounds import CERTIFICATE_RTOL

    L, U = interval_embedding(layers, *input_boxes(X, eps, feature_range))
    lower = np.empty((X.shape[0], references.shape[0]))
    upper = np.empty_like(lower)
    for i in range(X.shape[0]):
        near, far = _box_distance_bounds(L[i][None], U[i][None], references, references)
        lower[i], upper[i] = np.sqrt(near), np.sqrt(far)
    return lower * (1.0 - CERTIFICATE_RTOL), upper * (1.0 + CERTIFICATE_RTOL)


def network_of(model, bound):
    """The :class:`~skrobust.targets.ReluNetworkTarget` the pair certificates work on, or
    ``None`` for the linear bounds.

    A network takes the network bounds (``"best"``, ``"interval"``, ``"lipschitz"``) and
    refuses the linear-only ones; a linear metric asked for ``"interval"`` or
    ``"lipschitz"`` is the network of one layer; any other target (a
    :class:`~skrobust.targets.CallableTarget`) has no layers to bound.
    """
    from ._bounds import MetricNorms
    from ._network import ReluNetworkTarget
    from ._target import LinearTarget, as_target

    if isinstance(model, MetricNorms):
        target = LinearTarget(model.components, threshold=model.threshold)
    else:
        target = as_target(model)
    if isinstance(target, ReluNetworkTarget):
        if bound not in NETWORK_BOUNDS:
            raise TypeError(
                f"bound={bound!r} is linear-only: it needs the matrix W of a linear metric, "
                "and the model is a ReLU network; for a network use bound='best' (the "
                "tighter of 'interval' and 'lipschitz'), 'interval' or 'lipschitz'."
            )
        return target
    if target.is_linear:
        if bound in ("interval", "lipschitz"):
            return ReluNetworkTarget([(target.components, target.bias)], target.threshold)
        return None
    raise TypeError(
        f"The certificates need the layers of a ReLU network (ReluNetworkTarget) or a "
        f"linear metric, and {type(target).__name__} exposes only its embedding and VJP; "
        "for it use the attack (AckMetricAttack, CascadeKNNAttack), an upper bound."
    )


NETWORK_BOUNDS = ("best", "interval", "lipschitz")


def _checked_pairs(target, pairs, feature_range):
    from ._validation import check_in_box, check_pairs

    pairs = check_pairs(pairs, n_features=target.n_features)
    return pairs, check_in_box(pairs, feature_range, name="pairs")


def network_distances_and_bounds(target, pairs, eps_values, bound, budget, feature_range):
    """Validate, then :func:`network_pair_bounds` on ``target``'s layers."""
    pairs, box = _checked_pairs(target, pairs, feature_range)
    return network_pair_bounds(target.layers, pairs, eps_values, bound, budget, box)


def network_certify_pairs(target, pairs, eps, threshold, bound, budget, feature_range):
    """:func:`skrobust.certificates.certify_pairs` for a network."""
    from ._bounds import certify_from_bounds

    pairs, box = _checked_pairs(target, pairs, feature_range)
    D, lower, upper = network_pair_bounds(
        target.layers, pairs, np.array([eps]), bound, budget, box
    )
    # Both bounds hold the rounding of x + delta already.
    return certify_from_bounds(D, lower[0], upper[0], threshold)


def network_certified_radius(target, pairs, threshold, budget, rtol=1e-6):
    """:func:`skrobust.certified_radius` for a network: the larger, per pair, of the
    Lipschitz radius (closed form) and the interval radius (the largest budget, found by
    bisection to a relative ``rtol``, at which the interval bound certifies the pair; each
    value returned was itself certified). Without a box, as the linear radius."""
    from ._bounds import _radius_from_distances, certify_from_bounds, rounding_slack

    pairs, _ = _checked_pairs(target, pairs, None)
    layers = target.layers
    K = lipschitz_constant(layers)
    D = _pair_distances(layers, pairs)
    radius = _radius_from_distances(D, threshold, K, budget, rounding_slack(pairs, K))
    if threshold < 0:
        return radius

    def certified(rows, eps):
        flat = pairs[rows].reshape(2 * len(rows), -1)
        L, U = interval_embedding(layers, *input_boxes(flat, np.repeat(eps, 2), None))
        L, U = L.reshape(len(rows), 2, -1), U.reshape(len(rows), 2, -1)
        lower, upper = _box_distance_bounds(L[:, 0], U[:, 0], L[:, 1], U[:, 1])
        return certify_from_bounds(D[rows], lower, upper, threshold)

    low = np.zeros(len(pairs))
    high = np.maximum(2.0 * radius, 1e-3)
    active = certified(np.arange(len(pairs)), low)
    growing = active.copy()
    for _ in range(64):  # a budget the interval bound does not certify
        rows = np.flatnonzero(growing)
        if not rows.size:
            break
        ok = certified(rows, high[rows])
        low[rows[ok]] = high[rows[ok]]
        high[rows[ok]] *= 4.0
        growing[rows[~ok]] = False
    low[growing] = np.inf
    active &= ~growing
    while active.any():
        rows = np.flatnonzero(active)
        mid = (low[rows] + high[rows]) / 2.0
        ok = certified(rows, mid)
        low[rows[ok]] = mid[ok]
        high[rows[~ok]] = mid[~ok]
        active[rows] = high[rows] - low[rows] > rtol * high[rows]
    return np.maximum(radius, low)
