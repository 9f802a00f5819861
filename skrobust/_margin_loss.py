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

from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = [
    "MinedMarginObjective",
    "MinedTriples",
    "TripleGeometry",
    "certified_margin_loss_grad",
    "mine_triples",
]

# LMNN's balance of pull and push.
MARGIN_PUSH_WEIGHT = 0.5


def _squared_distances(Z):
    sq = np.einsum("ij,ij->i", Z, Z)
    D = sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T)
    return np.maximum(D, 0.0)


@dataclass(frozen=True)
class MinedTriples:
    """Triples ``(z, a, b)`` stored as pairs: every target ``a`` of a point ``z`` meets
    every rival ``b`` of ``z``, so ``D(z, a)`` and ``D(z, b)`` are computed once per pair
    and the quadratic terms of the gradient reduce to the pairs (``n k + n r`` of them,
    not ``n k r``).

    Attributes
    ----------
    targets : ndarray of int, shape (n_target_pairs, 2)
        The ``(z, a)`` pairs (also the pull term's pairs).
    rivals : ndarray of int, shape (n_rival_pairs, 2)
        The ``(z, b)`` pairs.
    target_of, rival_of : ndarray of int, shape (n_triples,)
        For each triple, its row of ``targets`` and of ``rivals``.
    """

    targets: np.ndarray
    rivals: np.ndarray
    target_of: np.ndarray
    rival_of: np.ndarray

    @property
    def triples(self):
        """``(z, a, b)`` of each triple, shape (n_triples, 3)."""
        t, r = self.targets[self.target_of], self.rivals[self.rival_of]
        return np.stack([t[:, 0], t[:, 1], r[:, 1]], axis=1)


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
        when its class has fewer other members; a point alone in its class has none, and
        so no triple).
    n_rivals : int
        Rivals per point: its nearest points of the other classes.

    Returns
    -------
    mined : MinedTriples
        Ties in distance are broken by index (a stable sort), so mining is deterministic;
        triples come ordered by point, then target, then rival, nearest first.
    """
    D = _squared_distances(Z)
    n = Z.shape[0]
    same = y_idx[:, None] == y_idx[None, :]
    other = ~same
    np.fill_diagonal(same, False)
    k, r = min(n_targets, n - 1), min(n_rivals, n - 1)
    t_idx = np.argsort(np.where(same, D, np.inf), axis=1, kind="stable")[:, :k]
    b_idx = np.argsort(np.where(other, D, np.inf), axis=1, kind="stable")[:, :r]
    t_ok = np.take_along_axis(same, t_idx, axis=1)
    b_ok = np.take_along_axis(other, b_idx, axis=1) & t_ok.any(axis=1, keepdims=True)
    rows = np.arange(n)[:, None]
    targets = np.stack(np.broadcast_arrays(rows, t_idx), axis=-1)[t_ok]
    rivals = np.stack(np.broadcast_arrays(rows, b_idx), axis=-1)[b_ok]
    # Row numbers of the kept pairs, laid out (n, k) and (n, r), crossed per point.
    t_row = np.cumsum(t_ok).reshape(n, k) - 1
    b_row = np.cumsum(b_ok).reshape(n, r) - 1
    both = t_ok[:, :, None] & b_ok[:, None, :]
    target_of = np.broadcast_to(t_row[:, :, None], both.shape)[both]
    rival_of = np.broadcast_to(b_row[:, None, :], both.shape)[both]
    return MinedTriples(
        targets.astype(np.int64),
        rivals.astype(np.int64),
        target_of.astype(np.int64),
        rival_of.astype(np.int64),
    )


@dataclass(frozen=True, eq=False)
class TripleGeometry:
    """What the objective needs of ``X`` and the triples, fixed between two minings.

    Attributes
    ----------
    U_t, U_r : ndarray of shape (n_target_pairs, n_features), (n_rival_pairs, n_features)
        ``z - a`` of each target pair, ``z - b`` of each rival pair.
    A_B : ndarray of shape (n_triples, n_features)
        ``a - b`` of each triple.
    incidence : sparse matrix of shape (n_samples, n_triples)
        ``e_a - e_b`` of each triple, as a column.
    """

    U_t: np.ndarray
    U_r: np.ndarray
    A_B: np.ndarray
    incidence: sparse.csr_matrix

    @classmethod
    def of(cls, X, mined):
        """The geometry of triples ``mined`` over points ``X``."""
        targets, rivals = mined.targets, mined.rivals
        a, b = targets[mined.target_of, 1], rivals[mined.rival_of, 1]
        n_triples = len(a)
        incidence = sparse.csr_matrix(
            (
                np.repeat([1.0, -1.0], n_triples),
                (np.concatenate([a, b]), np.tile(np.arange(n_triples), 2)),
            ),
            shape=(len(X), n_triples),
        )
        return cls(
            X[targets[:, 0]] - X[targets[:, 1]],
            X[rivals[:, 0]] - X[rivals[:, 1]],
            X[a] - X[b],
            incidence,
        )


def certified_margin_loss_grad(X, W, mined, eps, gamma, mu=MARGIN_PUSH_WEIGHT, geometry=None):
    """The objective of the module docstring and its gradient in ``W``, for fixed triples.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    W : ndarray of shape (n_components, n_features)
    mined : MinedTriples
        From :func:`mine_triples`.
    eps : float
        The L-infinity radius certified training defends (``>= 0``).
    gamma : float
        The scale of ``D`` (the learner's ``gamma``).
    mu : float, default=0.5
        Weight of the push (hinge) term; ``1 - mu`` weighs the pull.
    geometry : TripleGeometry, default=None
        ``TripleGeometry.of(X, mined)``, when the caller keeps it between calls.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_components, n_features)
    """
    n_pairs, n_triples = len(mined.targets), len(mined.target_of)
    if n_pairs == 0:
        return 0.0, np.zeros_like(W)
    if geometry is None:
        geometry = TripleGeometry.of(X, mined)
    U_t = geometry.U_t
    V_t = U_t @ W.T
    D_t = np.einsum("ij,ij->i", V_t, V_t)
    pull = (1.0 - mu) / (gamma * n_pairs)
    loss = pull * D_t.sum()
    # Weight of each pair's u u^T in the gradient: d/dW sum_p w_p D_p = 2 sum_p w_p V_p U_p^T.
    w_t = np.full(n_pairs, pull)
    grad = np.zeros_like(W)
    if n_triples:
        U_r = geometry.U_r
        V_r = U_r @ W.T
        D_r = np.einsum("ij,ij->i", V_r, V_r)
        t_of, r_of = mined.target_of, mined.rival_of
        margin = D_r[r_of] - D_t[t_of]
        if eps > 0:
            Mw = geometry.A_B @ (W.T @ W)  # rows M (a - b)
            margin -= 2.0 * eps * np.abs(Mw).sum(axis=1)
        h = 1.0 - margin / gamma
        active = h > 0
        loss += mu * float(h[active].sum()) / n_triples
        push = mu / (gamma * n_triples)  # d h / d(-margin), times the mean's weight
        # -margin holds +D(z, a) and -D(z, b).
        w_t += push * np.bincount(t_of[active], minlength=n_pairs)
        w_r = -push * np.bincount(r_of[active], minlength=len(U_r))
        grad += 2.0 * ((V_r * w_r[:, None]).T @ U_r)
        if eps > 0 and active.any():
            # d ||M w||_1 / dW = (W w) s^T + (W s) w^T with s = sign(M w). Summed over the
            # active triples, with G = sum_t (e_a - e_b) s_t^T (n x d, scattered by the
            # incidence matrix): sum_t w s^T = X^T G, so the sum is Z^T G + W G^T X.
            S = np.sign(Mw)
            S[~active] = 0.0
            G = geometry.incidence @ S
            grad += (2.0 * eps * push) * ((X @ W.T).T @ G + W @ (G.T @ X))
    grad += 2.0 * ((V_t * w_t[:, None]).T @ U_t)
    return float(loss), grad


class MinedMarginObjective:
    """The objective as the optimiser sees it: re-mines the triples under the current ``W``
    on the first call and every ``remine_every`` calls after, so the targets and rivals
    follow the metric as it learns (one call per optimisation step). ``mined_anew`` tells
    whether the last call re-mined: objectives are comparable only between re-minings, so
    the learner picks its best iterate among those of the last mining."""

    def __init__(self, X, y_idx, eps, gamma, n_targets, n_rivals, remine_every):
        self.X, self.y_idx, self.eps, self.gamma = X, y_idx, eps, gamma
        self.n_targets, self.n_rivals, self.remine_every = n_targets, n_rivals, remine_every
        self.n_calls = 0

    def __call__(self, W):
        self.mined_anew = self.n_calls % self.remine_every == 0
        if self.mined_anew:
            self.mined = mine_triples(self.X @ W.T, self.y_idx, self.n_targets, self.n_rivals)
            self.geometry = TripleGeometry.of(self.X, self.mined)
        self.n_calls += 1
        return certified_margin_loss_grad(
            self.X, W, self.mined, self.eps, self.gamma, geometry=self.geometry
        )
