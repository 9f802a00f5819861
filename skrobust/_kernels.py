"""numba kernels of the AckMetric attack, nothing else.

Pure functions over arrays: the callers (:mod:`skrobust._pair_attack`,
:mod:`skrobust._eq23_attack`) validate, allocate and compute every matrix product with BLAS;
a kernel only does the per-element work between two products. numba's default ``workqueue``
threading layer aborts the process when two threads launch a parallel kernel at the same
time, so every call of a parallel kernel goes through :func:`skrobust._threads.run_parallel`.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def pair_step(Z, G, X, budget, threshold, state, step, Z_best, it):
    """Evaluate the current iterate of every pair, keep the best, then take a sign step.

    One iteration of eq. (8)-(9) written on the difference ``z = x_i - x_j`` of each pair:
    ``D(z) = z^T M z`` depends on ``z`` only, and moving ``x_i`` by ``+step sign(g)`` and
    ``x_j`` by ``-step sign(g)`` moves ``z`` by ``2 step sign(g)`` (the caller passes the
    step of ``z``). With ``d_i`` in ``[max(-eps_i, lo - x_i), min(eps_i, hi - x_i)]`` and
    ``d_j`` likewise, each coordinate of ``z`` has an interval, so budget and box together
    are one clip, computed on the fly from the clean pair.

    Parameters (rows are pairs; ``Z``, ``state`` and ``Z_best`` are written in place)
    ----------
    Z : (n, d) current differences; stepped unless the pair is done.
    G : (n, d) ``Z @ M``; the gradient of ``D`` with respect to ``x_i`` is ``2 G``.
    X : (n, 2, d) the clean pairs.
    budget : (4,) ``eps_i, eps_j, lo, hi`` (``-inf, inf`` for no box).
    threshold : (n,) threshold on ``D``: a pair is similar when ``D <= threshold``.
    state : (n, 5) per pair: direction (+1 push apart: clean pair similar, -1 pull
        together; set at ``it == 0``), objective ``direction * D`` of ``Z_best``, ``D`` of
        the current iterate, done (1 once an iterate flipped the prediction), iteration of
        ``Z_best``.
    step : float, size of the sign step of ``z``; 0 only evaluates.
    Z_best : (n, d) best iterate so far (the first successful one once done).
    it : int, iteration number; 0 is the clean input.
    """
    n, d = Z.shape
    eps_i, eps_j, lo, hi = budget[0], budget[1], budget[2], budget[3]
    for p in prange(n):
        if state[p, 3] != 0.0:
            continue
        dist = 0.0
        for k in range(d):
            dist += Z[p, k] * G[p, k]
        state[p, 2] = dist
        improved = it == 0
        if it == 0:
            state[p, 0] = 1.0 if dist <= threshold[p] else -1.0
            state[p, 1] = state[p, 0] * dist
        elif (dist > threshold[p]) == (state[p, 0] > 0.0):
            state[p, 1] = state[p, 0] * dist
            state[p, 3] = 1.0
            improved = True
        elif state[p, 0] * dist > state[p, 1]:
            state[p, 1] = state[p, 0] * dist
            improved = True
        if improved:
            state[p, 4] = it
            for k in range(d):
                Z_best[p, k] = Z[p, k]
        if state[p, 3] != 0.0 or step == 0.0:
            continue
        s = step * state[p, 0]
        for k in range(d):
            x_i = X[p, 0, k]
            x_j = X[p, 1, k]
            u = x_i - x_j
            z_lo = u + max(-eps_i, lo - x_i) - min(eps_j, hi - x_j)
            z_hi = u + min(eps_i, hi - x_i) - max(-eps_j, lo - x_j)
            g = G[p, k]
            z = Z[p, k]
            if g > 0.0:
                z += s
            elif g < 0.0:
                z -= s
            Z[p, k] = min(max(z, z_lo), z_hi)


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


@njit(cache=True, nogil=True)
def shared_vertex(G, X, Z_best, direction, eps, lo, hi, delta, split):
    """Frank-Wolfe direction toward the vertex of the shared budget set (eq. 4, all splits)
    that best follows the gradient, from the current best iterate.

    For a split ``a + (eps - a)`` (``a`` the share of ``x_i``), coordinate ``k`` of
    ``v = d_i - d_j`` reaches ``r_k(a) = min(a, A_k) + min(eps - a, B_k)`` in the direction
    ``sigma_k = direction sign(g_k)``, ``A_k`` and ``B_k`` being the room the box leaves
    ``x_i`` and ``x_j`` that way. The gain ``sum_k |g_k| r_k(a)`` is concave and piecewise
    linear; its slope is ``sum_k |g_k|`` minus the weight of the breakpoints ``A_k`` and
    ``eps - B_k`` that are ``<= a``, so the maximiser is the weighted median of the ``2 d``
    breakpoints, clipped to ``[0, eps]``. It is found by bisection over the breakpoints
    inside ``(0, eps)``, then snapped to the breakpoint it brackets, so it is exact. Writes
    ``(u + v) - z_best`` to ``delta`` and ``a`` to ``split``. Serial: it runs once per
    attack, between BLAS calls.
    """
    n, d = G.shape
    A = np.empty(d)
    B = np.empty(d)
    up = np.empty(d, dtype=np.bool_)
    inner = np.empty(2 * d)
    weight = np.empty(2 * d)
    for p in range(n):
        half = 0.0
        below = 0.0  # weight of the breakpoints <= 0
        m = 0
        for k in range(d):
            g = G[p, k] * direction[p]
            w = abs(g)
            half += w
            up[k] = g >= 0.0
            if up[k]:
                A[k] = hi - X[p, 0, k]
                B[k] = X[p, 1, k] - lo
            else:
                A[k] = X[p, 0, k] - lo
                B[k] = hi - X[p, 1, k]
            if A[k] <= 0.0:
                below += w
            elif A[k] < eps:
                inner[m] = A[k]
                weight[m] = w
                m += 1
            c = eps - B[k]
            if c <= 0.0:
                below += w
            elif c < eps:
                inner[m] = c
                weight[m] = w
                m += 1
        if below >= half:
            a = 0.0
        else:
            # Invariant: weight(<= a_lo) < half <= weight(<= a_hi), a_hi = eps counting as
            # reaching it (the gain only rises up to eps then).
            a_lo = 0.0
            a_hi = eps
            for _ in range(60):
                mid = 0.5 * (a_lo + a_hi)
                cum = below
                n_left = 0  # breakpoints in (a_lo, mid]
                n_right = 0  # and in (mid, a_hi]
                for t in range(m):
                    b = inner[t]
                    if b <= mid:
                        cum += weight[t]
                        if b > a_lo:
                            n_left += 1
                    elif b <= a_hi:
                        n_right += 1
                if cum >= half:
                    a_hi = mid
                    inside = n_left
                else:
                    a_lo = mid
                    inside = n_right
                if inside <= 1:
                    break  # at most one breakpoint left in (a_lo, a_hi): the snap finds it
            a = eps
            for t in range(m):
                if a_lo < inner[t] < a:
                    a = inner[t]
            # a_hi = eps only bounds the answer: eps itself is the maximiser when even the
            # weight up to the last breakpoint stays below half.
            cum = below
            for t in range(m):
                if inner[t] <= a:
                    cum += weight[t]
            if cum < half:
                a = eps
        split[p] = a
        for k in range(d):
            r = min(a, A[k]) + min(eps - a, B[k])
            v = r if up[k] else -r
            delta[p, k] = X[p, 0, k] - X[p, 1, k] + v - Z_best[p, k]


@njit(cache=True, nogil=True)
def split_pairs(X, Z_best, split, lo, hi, out):
    """Adversarial pairs from the best differences: ``v = z_best - u`` split into
    ``d_i - d_j`` as evenly as the intervals ``|d_i| <= split[p, 0]``,
    ``|d_j| <= split[p, 1]`` and the box allow, then clipped to the box."""
    n, d = Z_best.shape
    for p in range(n):
        e_i = split[p, 0]
        e_j = split[p, 1]
        for k in range(d):
            x_i = X[p, 0, k]
            x_j = X[p, 1, k]
            v = Z_best[p, k] - (x_i - x_j)
            i_lo = max(-e_i, lo - x_i)
            i_hi = min(e_i, hi - x_i)
            j_lo = max(-e_j, lo - x_j)
            j_hi = min(e_j, hi - x_j)
            d_i = min(max(min(max(0.5 * v, i_lo), i_hi), v + j_lo), v + j_hi)
            d_j = min(max(d_i - v, j_lo), j_hi)
            d_i = min(max(d_i, i_lo), i_hi)
            out[p, 0, k] = min(max(x_i + d_i, lo), hi)
            out[p, 1, k] = min(max(x_j + d_j, lo), hi)
