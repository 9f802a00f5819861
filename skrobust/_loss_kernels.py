"""numba kernels of the learner's loss (eq. 20), nothing else.

Pure functions over arrays: the caller validates and allocates.
"""

from math import sqrt

from numba import njit


@njit(cache=True, nogil=True)
def hinge_slopes_block(G, sq, y_idx, start, gamma, eK, degree):
    """Turn a block of the Gram matrix into slopes of the hinge loss, in place.

    ``G`` holds ``Z[start:start + b] @ Z[start:].T`` (rows ``i``, columns ``j >= start``),
    so ``D_ij = sq_i + sq_j - 2 G_ij``. Each pair ``i < j`` enters once through
    ``h_ij = 1 + y_ij (D'_ij - gamma)``, where ``D' = D`` when ``eK == 0`` and otherwise the
    certified worst case ``D' = t |t|``, ``t = sqrt(D) + y eK`` (see ``certified_hinge``).

    On return ``G`` holds ``C_ij = y_ij dD'/dD`` where ``h_ij > 0`` (0 elsewhere and where
    ``j <= i``); the row and column sums of ``C`` are added to ``degree``. Returns the sum of
    the active hinge terms and the sum of ``2 |t|`` over active pairs (the slope in ``eK``).
    Serial on purpose: it runs between two BLAS calls, whose spinning threads make a
    parallel kernel here slower, not faster.
    """
    b, n_cols = G.shape
    total = 0.0
    k_slope = 0.0
    for r in range(b):
        i = start + r
        sq_i = sq[i]
        y_i = y_idx[i]
        row_total = 0.0
        row_sum = 0.0
        for jj in range(r + 1):
            G[r, jj] = 0.0
        for jj in range(r + 1, n_cols):
            j = start + jj
            # Rounding can make D of a coincident pair slightly negative.
            d = max(sq_i + sq[j] - 2.0 * G[r, jj], 0.0)
            y = 1.0 if y_i == y_idx[j] else -1.0
            slope = 1.0
            abs_t = 0.0
            if eK > 0.0:
                s = sqrt(d)
                t = s + y * eK
                abs_t = abs(t)
                d = t * abs_t
                slope = abs_t / s if s > 0.0 else 0.0
            h = 1.0 + y * (d - gamma)
            c = 0.0
            if h > 0.0:
                row_total += h
                c = y * slope
                k_slope += 2.0 * abs_t
            row_sum += c
            degree[j] += c
            G[r, jj] = c
        total += row_total
        degree[i] += row_sum
    return total, k_slope
