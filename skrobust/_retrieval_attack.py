"""The retrieval loss and its PGD: nearest positive and nearest negative of each query.

Shared by :func:`skrobust.retrieval.retrieval_attack` (queries against a gallery) and the
training attacks of the adversarial defences (anchors against their mini-batch in TLA,
against the whole training set in RML). The loss of a query ``q`` is the triplet margin

    ``D(f(q), f(p)) - D(f(q), f(n))``,

``p`` its nearest gallery point of its own class and ``n`` its nearest gallery point of
another class, both re-found at every step (the query's own point, when it is in the
gallery, is neither). Recall@1 misses ``q`` exactly when the loss is ``>= 0``. Its gradient
in the embedding is ``2 (f(n) - f(p))``, pulled back to the input by the model's
vector-Jacobian product. A query without a positive or without a negative in the gallery
has no loss and does not move.
"""

import numpy as np

__all__ = ["QUERY_BLOCK", "query_blocks", "query_distances", "retrieval_pgd"]

# Queries ranked at once: bounds the memory of a (queries x gallery) distance block.
QUERY_BLOCK = 1024


def query_blocks(n):
    """Slices of at most :data:`QUERY_BLOCK` queries."""
    for start in range(0, n, QUERY_BLOCK):
        yield slice(start, min(start + QUERY_BLOCK, n))


def query_distances(Eq, Eg, yq, yg, self_index):
    """Squared distances of a block of queries to the gallery, with the query's own point
    (``self_index``, -1 for none) set to NaN, and the mask of the gallery points of each
    query's class."""
    D = np.einsum("ij,ij->i", Eq, Eq)[:, None] + np.einsum("ij,ij->i", Eg, Eg)[None, :]
    D -= 2.0 * (Eq @ Eg.T)
    np.maximum(D, 0.0, out=D)
    rows = np.flatnonzero(self_index >= 0)
    D[rows, self_index[rows]] = np.nan
    return D, yq[:, np.newaxis] == yg[np.newaxis, :]


def nearest_positive_negative(Eq, Eg, yq, yg, self_index):
    """Per query: its nearest positive and nearest negative in the gallery (-1 if none)
    and their squared distances (inf if none)."""
    n = len(Eq)
    pos, neg = np.full(n, -1), np.full(n, -1)
    d_pos, d_neg = np.full(n, np.inf), np.full(n, np.inf)
    for block in query_blocks(n):
        D, same = query_distances(Eq[block], Eg, yq[block], yg, self_index[block])
        valid = ~np.isnan(D)
        for index, dist, mask in ((pos, d_pos, same & valid), (neg, d_neg, ~same & valid)):
            masked = np.where(mask, D, np.inf)
            best = np.argmin(masked, axis=1)
            found = mask.any(axis=1)
            index[block] = np.where(found, best, -1)
            dist[block] = np.where(found, masked[np.arange(len(best)), best], np.inf)
    return pos, neg, d_pos, d_neg


def retrieval_pgd(model, Xq, yq, Eg, yg, self_index, eps, step_size, max_iter, box):
    """PGD on the retrieval loss: signed-gradient ascent steps of ``step_size``, projected
    onto the L-infinity ball of radius ``eps`` around each query and onto ``box`` (or
    ``None``). Returns each query's iterate of largest loss, the clean one included.

    ``model`` has ``embed(X)`` and ``vjp(X, G)`` (a :class:`~skrobust.targets.MetricTarget`
    or a live view of a network in training); ``Eg`` is the embedded gallery.
    """
    lo, hi = Xq - eps, Xq + eps
    if box is not None:
        lo, hi = np.maximum(lo, box[0]), np.minimum(hi, box[1])
    X = Xq.copy()
    best, best_loss = X.copy(), np.full(len(X), -np.inf)
    for it in range(max_iter + 1):
        pos, neg, d_pos, d_neg = nearest_positive_negative(model.embed(X), Eg, yq, yg, self_index)
        movable = (pos >= 0) & (neg >= 0)
        loss = np.where(movable, d_pos - d_neg, -np.inf)
        better = loss > best_loss
        best[better], best_loss[better] = X[better], loss[better]
        if it == max_iter:
            break
        G = np.zeros((len(X), Eg.shape[1]))
        G[movable] = 2.0 * (Eg[neg[movable]] - Eg[pos[movable]])
        X = np.clip(X + step_size * np.sign(model.vjp(X, G)), lo, hi)
    return best
