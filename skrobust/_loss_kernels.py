"""numba kernels of the learner's loss (eq. 20), nothing else.

Pure functions over arrays: the caller validates and allocates.
"""

from numba import njit


@njit(cache=True, nogil=True)
def hinge_slopes_block(G, sq, y_idx, start, gamma, degree):
    """Turn a block of the Gram matrix into slopes of the hinge loss, in place.

    ``G`` holds ``Z[start:start + b] @ Z[start:].T`` (rows ``i``, columns ``j >= start``).
    On return it holds, for each pair ``i < j`` once,
    ``C_ij = y_ij [1 + y_ij (D_ij - gamma) > 0]`` with ``D_ij = sq_i + sq_j - 2 G_ij``, and
    0 where ``j <= i``. Adds the row and column sums of ``C`` to ``degree`` (so ``degree``
    ends as the row sums of the symmetric ``C``) and returns the sum of the active hinge
    terms. Serial on purpose: it runs between two BLAS calls, whose spinning threads make a
    parallel kernel here slower, not faster.
    """
    b, n_cols = G.shape
    total = 0.0
    for r in range(b):
        i = start + r
        sq_i = sq[i]
        y_i = y_idx[i]
        acc = 0.0
        s = 0.0
        for jj in range(r + 1):
            G[r, jj] = 0.0
        for jj in range(r + 1, n_cols):
            j = start + jj
            d = sq_i + sq[j] - 2.0 * G[r, jj]
            if y_i == y_idx[j]:
                h = 1.0 + d - gamma
                c = 1.0 if h > 0.0 else 0.0
            else:
                # Rounding can make d of a coincident pair slightly negative.
                h = 1.0 - max(d, 0.0) + gamma
                c = -1.0 if h > 0.0 else 0.0
            acc += max(h, 0.0)
            s += c
            degree[j] += c
            G[r, jj] = c
        total += acc
        degree[i] += s
    return total
