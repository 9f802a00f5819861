"""The pair and triplet attack on nonlinear targets (eq. 4-6 with eq. 10-11).

For a linear metric ``D`` depends on ``x_i - x_j`` only and the two points' gradients tie
(eq. 7), which the numba kernels of ``skrobust._kernels`` exploit. For a network they do
not: each step moves one point, the one chosen by eq. (6),

    k = argmax { ||dD/dx_i||_1, ||dD/dx_j||_1 },

by a sign step of ``step_size`` along its gradient (ascent on ``D`` for a pair predicted
similar, descent for one predicted dissimilar), clipped to its feasible box. The gradients
come from the target's vector-Jacobian product (eq. 10-11): with ``g = 2 (f(x_i) - f(x_j))``,
``dD/dx_i = J_f(x_i)^T g`` and ``dD/dx_j = -J_f(x_j)^T g``.

Each point's feasible box is its budget around its clean value, intersected with the data
box. Per point, the budget is ``eps`` for each; under the shared budget
``||d_i||_inf + ||d_j||_inf <= eps`` a point may use what the other has left,
``eps - ||d_other||_inf``, so the whole budget can go to the point eq. (6) keeps choosing.
Eq. (6)'s L1 norms are taken over the coordinates along which the point's sign step can
still move (its first-order gain): inside the box that is eq. (6) itself, and a point
pinned at its box's face in every useful direction gives way to the other instead of
stalling the attack.

As for linear targets, each pair returns its first iterate that changed the prediction,
else the iterate with the best objective, never worse than the clean pair.
"""

import numpy as np

from ._loss_engine import SINGLE_THREAD_WORK
from ._threads import single_threaded

__all__ = ["attack_pairs"]


def _rowdot(A, B):
    return np.einsum("ij,ij->i", A, B)


def _start(X0, lower, upper, rng):
    """The clean points, or a uniform random point of their boxes (a restart)."""
    if rng is None:
        return X0.copy()
    X = lower + rng.random_sample(X0.shape) * (upper - lower)
    return np.clip(X, lower, upper, out=X)


def attack_pairs(target, X, thresholds, eps, shared, moving, step_size, max_iter, box, rng=None):
    """Attack pairs of a nonlinear target (module docstring).

    Parameters
    ----------
    target : MetricTarget
    X : ndarray of shape (n, 2, d)
        Clean pairs (or (anchor, positive) of triplets, with ``moving=(False, True)``).
    thresholds : ndarray of shape (n,)
        Decision thresholds on ``D``: ``D > thresholds`` is dissimilar.
    eps : float
        The budget.
    shared : bool
        Shared budget ``||d_i||_inf + ||d_j||_inf <= eps``; else ``eps`` per point.
    moving : (bool, bool)
        Which points may move.
    step_size : float
    max_iter : int
    box : tuple or None
    rng : RandomState or None
        A restart: the steps start from a uniformly random feasible point (each point within
        ``eps / 2`` under the shared budget).

    Returns
    -------
    D_clean, D_best : ndarray of shape (n,)
    adversarial : ndarray of shape (n, 2, d)
    """
    # A network's products per step are known; a wrapped model's are not (nor its threads).
    layers = getattr(target, "layers", None)
    small = layers is not None and len(X) * sum(W.size for W, _ in layers) < SINGLE_THREAD_WORK
    with single_threaded(small):
        return _attack_pairs(
            target, X, thresholds, eps, shared, moving, step_size, max_iter, box, rng
        )


def _attack_pairs(target, X, thresholds, eps, shared, moving, step_size, max_iter, box, rng):
    """:func:`attack_pairs`, under its thread limit."""
    lo, hi = box if box is not None else (-np.inf, np.inf)
    n = X.shape[0]
    clean = [X[:, 0, :], X[:, 1, :]]
    caps = [eps if move else 0.0 for move in moving]
    if shared and all(moving):
        start_caps = [eps / 2.0, eps / 2.0]
    else:
        start_caps = caps
    points = [
        _start(x0, np.maximum(lo, x0 - c), np.minimum(hi, x0 + c), rng)
        for x0, c in zip(clean, start_caps, strict=True)
    ]
    E0 = [target.embed(x0) for x0 in clean]
    diff0 = E0[0] - E0[1]
    D_clean = _rowdot(diff0, diff0)
    similar = D_clean <= thresholds
    direction = np.where(similar, 1.0, -1.0)
    best = [x0.copy() for x0 in clean]
    D_best = D_clean.copy()
    done = np.zeros(n, dtype=bool)
    for it in range(max_iter + 1):
        active = np.flatnonzero(~done)
        A, B = points[0][active], points[1][active]
        diff = target.embed(A) - target.embed(B)
        D = _rowdot(diff, diff)
        success = (D > thresholds[active]) == similar[active]
        better = success | (direction[active] * (D - D_best[active]) > 0)
        if it == 0 and rng is None:
            better[:] = success  # the clean pair is the fallback already
        rows = active[better]
        for k in range(2):
            best[k][rows] = points[k][rows]
        D_best[rows] = D[better]
        done[active[success]] = True
        keep = ~success
        if it == max_iter or not keep.any():
            break
        active, A, B, diff = active[keep], A[keep], B[keep], diff[keep]
        G = (2.0 * direction[active])[:, None] * diff
        grads = [target.vjp(A, G), -target.vjp(B, G)]
        current = [A, B]
        boxes, gains = [], []
        for k in range(2):
            if shared:
                used = np.abs(points[1 - k][active] - clean[1 - k][active]).max(axis=1)
                cap = np.maximum(caps[k] - used, 0.0)[:, None]
            else:
                cap = caps[k]
            lower = np.maximum(lo, clean[k][active] - cap)
            upper = np.minimum(hi, clean[k][active] + cap)
            g = grads[k]
            free = ((g > 0) & (current[k] < upper)) | ((g < 0) & (current[k] > lower))
            boxes.append((lower, upper))
            gains.append(np.where(free, np.abs(g), 0.0).sum(axis=1))
        first = gains[0] >= gains[1]  # eq. (6)
        for k, chosen in enumerate((first, ~first)):
            rows = active[chosen]
            lower, upper = boxes[k]
            step = current[k][chosen] + step_size * np.sign(grads[k][chosen])
            points[k][rows] = np.clip(step, lower[chosen], upper[chosen])
    adversarial = np.stack(best, axis=1)
    return D_clean, D_best, adversarial
