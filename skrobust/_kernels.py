"""numba kernels of the AckMetric attack, nothing else.

Pure functions over arrays: the caller (:mod:`skrobust._attack`) validates, allocates and
computes every matrix product with BLAS; a kernel only does the per-element work between
two products. numba's default ``workqueue`` threading layer aborts the process when two
threads launch a parallel kernel at the same time, so every call of a parallel kernel goes
through :func:`run_parallel`, which holds :data:`PARALLEL_LOCK`.
"""

import threading

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

#: Serialises parallel kernel launches (numba's workqueue layer is not thread-safe).
PARALLEL_LOCK = threading.Lock()


def run_parallel(kernel, *args, n_threads=None):
    """Call a parallel kernel under :data:`PARALLEL_LOCK`, on ``n_threads`` threads."""
    with PARALLEL_LOCK:
        if n_threads is None:
            return kernel(*args)
        previous = get_num_threads()
        set_num_threads(n_threads)
        try:
            return kernel(*args)
        finally:
            set_num_threads(previous)


@njit(cache=True, parallel=True)
def pair_step(Z, G, Z_lo, Z_hi, threshold, direction, step, Z_best, best_obj, done, D, first):
    """Evaluate the current iterate of every pair, keep the best, then take a sign step.

    One iteration of eq. (8)-(9) written on the difference ``z = x_i - x_j`` of each pair:
    ``D(z) = z^T M z`` depends on ``z`` only, and moving ``x_i`` by ``+step sign(g)`` and
    ``x_j`` by ``-step sign(g)`` moves ``z`` by ``2 step sign(g)`` (the caller passes the
    step of ``z``). The budget and the box are a per-coordinate interval
    ``[Z_lo, Z_hi]`` of ``z``, so the projection is a clip.

    Parameters (all rows are pairs; arrays are written in place)
    ----------
    Z : (n, d) current differences; stepped unless the pair is done.
    G : (n, d) ``Z @ M``; the gradient of ``D`` with respect to ``x_i`` is ``2 G``.
    Z_lo, Z_hi : (n, d) the feasible interval of each coordinate of ``z``.
    threshold : (n,) threshold on ``D``: a pair is similar when ``D <= threshold``.
    direction : (n,) +1 (push apart: clean pair similar), -1 (pull together); set when
        ``first`` is true.
    step : float, size of the sign step of ``z``; 0 only evaluates.
    Z_best : (n, d) best iterate so far (the first successful one once ``done``).
    best_obj : (n,) ``direction * D`` of ``Z_best``.
    done : (n,) uint8, 1 once an iterate flipped the prediction.
    D : (n,) output, ``D`` of the current iterate.
    first : bool, the current iterate is the clean input.
    """
    n, d = Z.shape
    for p in prange(n):
        if done[p]:
            continue
        dist = 0.0
        for k in range(d):
            dist += Z[p, k] * G[p, k]
        D[p] = dist
        improved = False
        if first:
            direction[p] = 1.0 if dist <= threshold[p] else -1.0
            best_obj[p] = direction[p] * dist
            improved = True
        else:
            if direction[p] > 0.0:
                success = dist > threshold[p]
            else:
                success = dist <= threshold[p]
            if success:
                done[p] = 1
                improved = True
            elif direction[p] * dist > best_obj[p]:
                best_obj[p] = direction[p] * dist
                improved = True
        if improved:
            for k in range(d):
                Z_best[p, k] = Z[p, k]
        if done[p] or step == 0.0:
            continue
        s = step * direction[p]
        for k in range(d):
            g = G[p, k]
            z = Z[p, k]
            if g > 0.0:
                z += s
            elif g < 0.0:
                z -= s
            Z[p, k] = min(max(z, Z_lo[p, k]), Z_hi[p, k])


@njit(cache=True, parallel=True)
def shared_split(G, X_i, X_j, direction, eps, lo, hi, V_out, split_out):
    """The vertex of the shared budget set that best follows the gradient (one exact
    Frank-Wolfe step of eq. 4 over all splits of the budget).

    For a split ``a + b = eps`` (``a`` the share of ``x_i``), coordinate ``k`` of
    ``v = d_i - d_j`` can move by at most ``r_k(a) = min(a, A_k) + min(eps - a, B_k)`` in the
    direction ``sigma_k = direction * sign(g_k)``, where ``A_k``, ``B_k`` are the room the
    box leaves to ``x_i`` and ``x_j`` in that direction. The linear gain
    ``sum_k |g_k| r_k(a)`` is concave and piecewise linear in ``a``: its maximiser is where
    the slope ``sum_{A_k > a} |g_k| - sum_{B_k >= eps - a} |g_k|`` turns non-positive, found
    by bisection to float precision. Writes the vertex ``v`` to ``V_out`` and ``a`` to
    ``split_out``.
    """
    n, d = G.shape
    for p in prange(n):
        A = np.empty(d)
        B = np.empty(d)
        w = np.empty(d)
        for k in range(d):
            g = G[p, k] * direction[p]
            w[k] = abs(g)
            if g >= 0.0:
                A[k] = hi - X_i[p, k]
                B[k] = X_j[p, k] - lo
            else:
                A[k] = X_i[p, k] - lo
                B[k] = hi - X_j[p, k]
        a_lo = 0.0
        a_hi = eps
        for _ in range(60):
            a = 0.5 * (a_lo + a_hi)
            slope = 0.0
            for k in range(d):
                if A[k] > a:
                    slope += w[k]
                if B[k] >= eps - a:
                    slope -= w[k]
            if slope > 0.0:
                a_lo = a
            else:
                a_hi = a
        a = 0.5 * (a_lo + a_hi)
        b = eps - a
        split_out[p] = a
        for k in range(d):
            r = min(a, A[k]) + min(b, B[k])
            if G[p, k] * direction[p] >= 0.0:
                V_out[p, k] = r
            else:
                V_out[p, k] = -r


@njit(cache=True, parallel=True)
def knn_evaluate(
    dist,
    E,
    E_ref,
    ref_labels,
    y_idx,
    n_vote,
    n_attack,
    n_classes,
    X,
    X_best,
    best_count,
    best_loss,
    done,
    H,
    first,
):
    """Evaluate the current kNN iterate of every point, keep the best, build eq. (23).

    For each point: find its ``max(n_vote, n_attack)`` nearest references (squared
    distances ``dist``, shape (n, n_ref)); the ``n_vote`` nearest give the classifier's
    majority vote (ties to the smallest class index, as scikit-learn); the ``n_attack``
    nearest give the loss of eq. (23), ``sum_r s_r D(x, x_r)`` with ``s_r = +1`` for a
    reference of the point's label ``y_idx`` and ``-1`` otherwise, whose gradient in the
    embedding is ``2 h`` with ``h = sum_r s_r (e - e_r)``, written to ``H``.

    The objective of an iterate is lexicographic: how many of the ``n_vote`` nearest have
    another label, then the loss. An iterate whose vote is not ``y_idx`` succeeds and ends
    the point's attack (``done``). ``X_best`` keeps the best iterate.
    """
    n, n_ref = dist.shape
    k_max = max(n_vote, n_attack)
    k_eff = min(k_max, n_ref)
    n_emb = E.shape[1]
    for p in prange(n):
        if done[p]:
            continue
        idx = np.empty(k_eff, dtype=np.int64)
        val = np.empty(k_eff)
        m = 0
        for r in range(n_ref):
            v = dist[p, r]
            if m < k_eff:
                pos = m
                m += 1
            elif v < val[m - 1]:
                pos = m - 1
            else:
                continue
            while pos > 0 and val[pos - 1] > v:
                val[pos] = val[pos - 1]
                idx[pos] = idx[pos - 1]
                pos -= 1
            val[pos] = v
            idx[pos] = r
        votes = np.zeros(n_classes, dtype=np.int64)
        other = 0
        for t in range(min(n_vote, k_eff)):
            c = ref_labels[idx[t]]
            votes[c] += 1
            if c != y_idx[p]:
                other += 1
        pred = 0
        for c in range(n_classes):
            if votes[c] > votes[pred]:
                pred = c
        loss = 0.0
        s_total = 0.0
        for k in range(n_emb):
            H[p, k] = 0.0
        for t in range(min(n_attack, k_eff)):
            r = idx[t]
            s = 1.0 if ref_labels[r] == y_idx[p] else -1.0
            loss += s * max(val[t], 0.0)
            s_total += s
            for k in range(n_emb):
                H[p, k] -= s * E_ref[r, k]
        for k in range(n_emb):
            H[p, k] += s_total * E[p, k]
        improved = False
        if first:
            best_count[p] = other
            best_loss[p] = loss
            improved = True
            if pred != y_idx[p]:
                # Already misclassified: nothing to attack.
                done[p] = 1
        elif pred != y_idx[p]:
            done[p] = 1
            improved = True
        elif other > best_count[p] or (other == best_count[p] and loss > best_loss[p]):
            best_count[p] = other
            best_loss[p] = loss
            improved = True
        if improved:
            for k in range(X.shape[1]):
                X_best[p, k] = X[p, k]


@njit(cache=True, parallel=True)
def sign_step(X, G, X_lo, X_hi, step, done):
    """``x <- clip(x + step sign(g), X_lo, X_hi)`` for every row not ``done``."""
    n, d = X.shape
    for p in prange(n):
        if done[p]:
            continue
        for k in range(d):
            g = G[p, k]
            x = X[p, k]
            if g > 0.0:
                x += step
            elif g < 0.0:
                x -= step
            X[p, k] = min(max(x, X_lo[p, k]), X_hi[p, k])
