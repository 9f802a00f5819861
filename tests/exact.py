"""Exact worst cases of the squared distance under a budget, for small ``n_features``.

The tests check every bound against these (notation of :mod:`skrobust._bounds`):

- maximum of ``D``: ``D`` is convex in ``w = x_i' - x_j'``. Per point, the reachable ``w``
  form a box, so the maximum is at one of its ``2^d`` vertices. Under the shared budget the
  reachable set is the union over splits ``s`` (``||d_i|| <= s``, ``||d_j|| <= eps - s``)
  of such boxes; for a fixed choice of vertex, ``w(s)`` is piecewise linear in ``s`` with
  kinks where a coordinate meets the box, and ``D(w(s))`` is convex on each piece, so the
  maximum is at ``s`` in ``{0, eps}`` or at one of those breakpoints.
- minimum of ``D``: not at a vertex. The feasible set of ``(d_i, d_j)`` is convex (a norm
  ball intersected with the box) and ``D`` is convex in it, so a local solver finds the
  minimum; the Frank-Wolfe gap ``min_{z' feasible} grad f(z) . (z' - z)`` at its answer
  ``z`` turns it into a *proven* lower bound ``f(z) + gap`` on the true minimum (the
  linear minimum over the set is attained at the same split breakpoints and box vertices).
"""

import itertools

import numpy as np
from scipy.optimize import minimize

# The fixed-W model of the tests is the public one (it used to be a double here).
from skrobust.testing import FixedMetric  # noqa: F401


def _as_box(feature_range):
    return (-np.inf, np.inf) if feature_range is None else feature_range


def split_candidates(xi, xj, eps, budget, feature_range):
    """Splits ``s`` (the budget of ``x_i``) where the worst cases can lie."""
    if budget == "per_point":
        return np.array([np.nan])
    lo, hi = _as_box(feature_range)
    s = np.concatenate([[0.0, eps], xi - lo, hi - xi, eps - (xj - lo), eps - (hi - xj)])
    s = s[np.isfinite(s) & (s >= 0.0) & (s <= eps)]
    return np.unique(s)


def _ranges(xi, xj, eps, s, budget, feature_range):
    """Per-coordinate ranges of ``x_i'`` and ``x_j'`` for the split ``s``, (n_s, d) each."""
    lo, hi = _as_box(feature_range)
    if budget == "per_point":
        ri = np.full((1, 1), eps)
        rj = ri
    else:
        ri = s[:, None]
        rj = eps - s[:, None]
    return (
        np.maximum(lo, xi - ri),
        np.minimum(hi, xi + ri),
        np.maximum(lo, xj - rj),
        np.minimum(hi, xj + rj),
    )


def exact_max_distance(W, pair, eps, budget, feature_range):
    """The maximum of ``||W (x_i' - x_j')||^2`` over the budget and the box."""
    xi, xj = pair
    d = xi.shape[0]
    s = split_candidates(xi, xj, eps, budget, feature_range)
    ilo, ihi, jlo, jhi = _ranges(xi, xj, eps, s, budget, feature_range)
    wlo, whi = ilo - jhi, ihi - jlo  # (n_s, d)
    choose = np.array(list(itertools.product((0.0, 1.0), repeat=d)))  # (2^d, d)
    w = wlo[:, None, :] + choose[None, :, :] * (whi - wlo)[:, None, :]
    v = w @ W.T
    return float(np.einsum("...i,...i->...", v, v).max())


def _linear_min(gi, gj, xi, xj, eps, budget, feature_range):
    """``min gi . d_i + gj . d_j`` over the feasible perturbations (exact)."""
    s = split_candidates(xi, xj, eps, budget, feature_range)
    ilo, ihi, jlo, jhi = _ranges(xi, xj, eps, s, budget, feature_range)
    di = np.minimum(gi * (ilo - xi), gi * (ihi - xi)).sum(axis=1)
    dj = np.minimum(gj * (jlo - xj), gj * (jhi - xj)).sum(axis=1)
    return float((di + dj).min())


def proven_min_distance(W, pair, eps, budget, feature_range):
    """A proven lower bound on the minimum of ``D'`` (and the minimiser's value).

    Returns ``(lower, value)``: ``value`` is ``D'`` at the best feasible point found,
    ``lower <= true minimum <= value``. For this convex problem they agree closely.
    """
    xi, xj = (np.asarray(p, dtype=np.float64) for p in pair)
    d = xi.shape[0]
    M = W.T @ W
    u = xi - xj
    lo, hi = _as_box(feature_range)

    def f(z):
        w = u + z[:d] - z[d : 2 * d]
        return float(w @ M @ w)

    def grad(z):
        g = 2.0 * M @ (u + z[:d] - z[d : 2 * d])
        out = np.concatenate([g, -g])
        return out if budget == "per_point" else np.append(out, 0.0)

    if budget == "per_point":
        bounds = [(max(lo - a, -eps), min(hi - a, eps)) for a in np.concatenate([xi, xj])]
        res = minimize(
            f,
            np.zeros(2 * d),
            jac=grad,
            bounds=bounds,
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 500},
        )
        z = np.clip(res.x, [b[0] for b in bounds], [b[1] for b in bounds])
    else:
        bounds = [(max(lo - a, -eps), min(hi - a, eps)) for a in np.concatenate([xi, xj])]
        bounds.append((0.0, eps))
        eye = np.eye(d)
        zero = np.zeros((d, d))
        col = np.ones((d, 1))
        # s - d_i >= 0, s + d_i >= 0, (eps - s) - d_j >= 0, (eps - s) + d_j >= 0
        A = np.vstack(
            [
                np.hstack([-eye, zero, col]),
                np.hstack([eye, zero, col]),
                np.hstack([zero, -eye, -col]),
                np.hstack([zero, eye, -col]),
            ]
        )
        b = np.concatenate([np.zeros(2 * d), np.full(2 * d, eps)])
        cons = {"type": "ineq", "fun": lambda z: A @ z + b, "jac": lambda z: A}
        res = minimize(
            lambda z: f(z),
            np.append(np.zeros(2 * d), eps / 2),
            jac=grad,
            bounds=bounds,
            constraints=[cons],
            method="SLSQP",
            options={"ftol": 1e-15, "maxiter": 500},
        )
        z = res.x
    # Frank-Wolfe gap at z (the gap only needs the gradient, feasibility of z matters
    # for `value` alone): true minimum >= f(z) + min_{z'} g . (z' - z).
    g = 2.0 * M @ (u + z[:d] - z[d : 2 * d])
    gap = _linear_min(g, -g, xi, xj, eps, budget, feature_range) - g @ z[:d] + g @ z[d : 2 * d]
    value = f(z)
    # D >= 0 always, which also covers a minimum of 0 (there the gap shrinks only like
    # sqrt(f(z))).
    return max(value + gap, 0.0), value


def _linear_parts(W, references, z):
    """``D_j`` and ``P_j`` of the module docstring of ``skrobust._exact`` (embedded refs)."""
    E = references @ W.T
    Z = z @ W.T
    return np.einsum("ij,ij->i", Z - E, Z - E), 2.0 * E @ W


def _delta_box(z, eps, feature_range):
    lo, hi = _as_box(feature_range)
    return np.maximum(-eps, lo - z), np.minimum(eps, hi - z)


def max_margin_by_vertices(C, g0, lower, upper):
    """``max t`` over ``{C delta + t <= -g0, l <= delta <= u}``, by every vertex.

    Each vertex of the polyhedron in ``(delta, t)`` makes ``d + 1`` of its constraints
    active; the maximum of ``t`` is at one of them.
    """
    d = lower.shape[0]
    A = np.vstack([np.hstack([C, np.ones((len(C), 1))]), np.hstack([np.eye(d), np.zeros((d, 1))]),
                   np.hstack([-np.eye(d), np.zeros((d, 1))])])  # fmt: skip
    b = np.concatenate([-g0, upper, -lower])
    scale = 1.0 + np.abs(b).max() + np.abs(A).max()
    best = -np.inf
    for rows in itertools.combinations(range(len(A)), d + 1):
        sub = A[list(rows)]
        if abs(np.linalg.det(sub)) < 1e-12:
            continue
        x = np.linalg.solve(sub, b[list(rows)])
        if np.all(A @ x <= b + 1e-9 * scale):
            best = max(best, x[-1])
    return best


def one_nn_margin_by_vertices(W, references, ref_class, z, c, eps, feature_range):
    """The largest margin by which any rival of class ``!= c`` can become strictly the
    nearest reference of ``z + delta`` (> 0: the 1-NN vote flips; < 0: it cannot tie)."""
    D, P = _linear_parts(W, references, z)
    lower, upper = _delta_box(z, eps, feature_range)
    own = ref_class == c
    best = -np.inf
    for b in np.flatnonzero(~own):
        best = max(best, max_margin_by_vertices(P[own] - P[b], D[b] - D[own], lower, upper))
    return best


def knn_margin_by_subsets(W, references, ref_class, z, c, k, eps, feature_range, strict=False):
    """The largest margin of a k-nearest selection whose vote some rival ties or wins
    (``strict``: whose vote scikit-learn gives to another class, ties to the first class),
    by enumerating every k-subset (one LP each: nearest ``S`` with margin ``t``)."""
    from scipy.optimize import linprog

    D, P = _linear_parts(W, references, z)
    lower, upper = _delta_box(z, eps, feature_range)
    n, d = P.shape
    classes = np.unique(ref_class)
    best = -np.inf
    for S in itertools.combinations(range(n), k):
        votes = np.array([np.sum(ref_class[list(S)] == cl) for cl in classes])
        own = votes[classes == c].sum()
        if strict:
            flips = classes[np.argmax(votes)] != c
        else:
            flips = np.any((votes >= own) & (classes != c))
        if not flips:
            continue
        out = [j for j in range(n) if j not in S]
        if not out:
            return np.inf  # every reference votes, whatever delta does
        # f_j - f_m + t <= 0 for j in S, m not in S; f_j = D_j - P_j . delta.
        rows = [np.append(P[m] - P[j], 1.0) for j in S for m in out]
        rhs = [D[m] - D[j] for j in S for m in out]
        res = linprog(
            np.append(np.zeros(d), -1.0),
            A_ub=np.array(rows),
            b_ub=np.array(rhs),
            bounds=[*zip(lower, upper, strict=True), (None, None)],
            method="highs",
        )
        if res.status == 0:
            best = max(best, -res.fun)
    return best
