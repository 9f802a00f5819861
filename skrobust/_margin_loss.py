"""Certified training on the pairwise kNN margin: mined triples and their loss.

For a linear metric the quadratic terms cancel in a difference of squared distances
(``skrobust.certificates``, pairwise certificate): for a point ``z``, an own-class reference
``a`` and a rival ``b``, a perturbation ``||delta||_inf <= eps`` of ``z`` changes

    g_ab = D(z, b) - D(z, a)   by   2 delta^T M (a - b),   at most 2 eps ||M (a - b)||_1,

so ``a`` provably stays ahead of ``b`` when the *certified margin*
``m = D(z, b) - D(z, a) - 2 eps ||M (a - b)||_1`` is positive. Certified training hinges it,
LMNN-style, over mined triples ``(z, a, b)``:

    L = (1 - mu) mean_{(z, a)} D(z, a) / gamma  +  mu mean_{(z, a, b)} max(0, 1 - m / gamma)

- target neighbours ``a``: the ``n_targets`` nearest points of ``z``'s class under the
  current metric (``z`` excluded), the references that decide a kNN vote at ``z``;
- rivals ``b``: the ``n_rivals`` nearest points of the other classes under the current
  metric, the ones within reach of the vote.

**Why a pull term.** Every term of ``m`` is quadratic in ``W``: replacing ``W`` by ``c W``
multiplies ``m`` by ``c^2``, so the hinge alone is driven to zero by inflating ``W``, which
changes neither the kNN nor its robustness (the certificate ``m > 0`` is scale-free). The
pull term (the mean target distance) grows with ``c^2`` and pins the scale, exactly as in
LMNN (Weinberger & Saul 2009), whose push-pull form this is; dividing by ``gamma`` keeps
the learner's convention that the initial mean ``D`` equals ``gamma``, so the unit margin
is measured against that scale. ``mu = 1/2`` is LMNN's default weighting.

**Cost.** Mining costs one ``N x N`` distance matrix, done every ``remine_every`` steps;
between minings one evaluation costs ``O(N k r m d)`` for ``N k r`` triples (``k`` targets,
``r`` rivals), not ``O(N^3)``: the gradient is assembled from the triples' embedded
differences in two products.

The gradient. With ``u = z - a``, ``v = z - b``, ``w = a - b`` and ``s = sign(M w)``,
``dD(z,a)/dW = 2 W u u^T`` and ``d ||M w||_1 / dW = (W w) s^T + (W s) w^T`` (from
``||M w||_1 = (W s) . (W w)`` with ``s`` held at its sign; a subgradient where an entry of
``M w`` is 0).
"""

import numpy as np

__all__ = ["certified_margin_loss_grad", "mine_triples"]

# LMNN's balance of pull and push.
MARGIN_PUSH_WEIGHT = 0.5


def _squared_distances(Z):
    sq = np.einsum("ij,ij->i", Z, Z)
    D = sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T)
    return np.maximum(D, 0.0)


def mine_triples(Z, y_idx, n_targets, n_rivals):
    """The training triples of certified margin training, mined in the embedding ``Z``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_components)
        The training points embedded by the current ``W``.
    y_idx : ndarray of int, shape (n_samples,)
        Class index of each point.
    n_targets : int
        Target neighbours per point: its nearest own-class points, itself excluded (fewer
        when its class has fewer other members; a point alone in its class has none).
    n_rivals : int
        Rivals per point: its nearest points of the other classes.

    Returns
    -------
    targets : ndarray of int, shape (n_pairs, 2)
        The ``(z, a)`` index pairs of the pull term.
    triples : ndarray of int, shape (n_triples, 3)
        ``(z, a, b)``: every target ``a`` of ``z`` with every rival ``b`` of ``z``. Ties in
        distance are broken by index (a stable sort), so mining is deterministic.
    """
    D = _squared_distances(Z)
    n = Z.shape[0]
    same = y_idx[:, None] == y_idx[None, :]
    np.fill_diagonal(same, False)
    own = np.where(same, D, np.inf)
    other = np.where(y_idx[:, None] != y_idx[None, :], D, np.inf)
    np.fill_diagonal(other, np.inf)
    k = min(n_targets, n - 1)
    r = min(n_rivals, n - 1)
    t_idx = np.argsort(own, axis=1, kind="stable")[:, :k]
    b_idx = np.argsort(other, axis=1, kind="stable")[:, :r]
    t_ok = np.isfinite(np.take_along_axis(own, t_idx, axis=1))
    b_ok = np.isfinite(np.take_along_axis(other, b_idx, axis=1))
    rows = np.repeat(np.arange(n), k).reshape(n, k)
    targets = np.stack([rows[t_ok], t_idx[t_ok]], axis=1)
    # Every (target, rival) of each point: (n, k, r) broadcast, masked by both validities.
    z3 = np.broadcast_to(np.arange(n)[:, None, None], (n, k, r))
    a3 = np.broadcast_to(t_idx[:, :, None], (n, k, r))
    b3 = np.broadcast_to(b_idx[:, None, :], (n, k, r))
    ok = t_ok[:, :, None] & b_ok[:, None, :]
    triples = np.stack([z3[ok], a3[ok], b3[ok]], axis=1)
    return targets.astype(np.int64), triples.astype(np.int64)


def certified_margin_loss_grad(X, W, targets, triples, eps, gamma, mu=MARGIN_PUSH_WEIGHT):
    """The objective of the module docstring and its gradient in ``W``, for fixed triples.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    W : ndarray of shape (n_components, n_features)
    targets : ndarray of int, shape (n_pairs, 2)
    triples : ndarray of int, shape (n_triples, 3)
        From :func:`mine_triples`.
    eps : float
        The L-infinity radius certified training defends (``>= 0``).
    gamma : float
        The scale of ``D`` (the learner's ``gamma``).
    mu : float, default=0.5
        Weight of the push (hinge) term; ``1 - mu`` weighs the pull.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_components, n_features)
    """
    E = X @ W.T
    grad = np.zeros_like(W)
    loss = 0.0
    if len(targets):
        U = X[targets[:, 0]] - X[targets[:, 1]]
        V = E[targets[:, 0]] - E[targets[:, 1]]
        loss += (1.0 - mu) * np.einsum("ij,ij->", V, V) / (gamma * len(targets))
        grad += (2.0 * (1.0 - mu) / (gamma * len(targets))) * (V.T @ U)
    if len(triples):
        z, a, b = triples.T
        Ea, Eb = E[z] - E[a], E[z] - E[b]
        Ew = E[a] - E[b]
        Mw = Ew @ W  # M (a - b) = W^T W (a - b), one row per triple
        s = np.sign(Mw)
        margin = (
            np.einsum("ij,ij->i", Eb, Eb)
            - np.einsum("ij,ij->i", Ea, Ea)
            - 2.0 * eps * np.abs(Mw).sum(axis=1)
        )
        h = 1.0 - margin / gamma
        active = h > 0
        n_t = len(triples)
        loss += mu * float(h[active].sum()) / n_t
        if active.any():
            c = mu / (gamma * n_t)
            zi, ai, bi = z[active], a[active], b[active]
            Ua, Ub, Uw = X[zi] - X[ai], X[zi] - X[bi], X[ai] - X[bi]
            Va, Vb, Vw = Ea[active], Eb[active], Ew[active]
            Sa = s[active]
            # d(-margin)/dW = 2 W u u^T - 2 W v v^T + 2 eps ((W w) s^T + (W s) w^T).
            g = Va.T @ Ua - Vb.T @ Ub
            if eps > 0:
                g = g + eps * (Vw.T @ Sa + (Sa @ W.T).T @ Uw)
            grad += 2.0 * c * g
    return float(loss), grad
