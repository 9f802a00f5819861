"""numba kernels of the learner's loss (eq. 20), nothing else.

Pure functions over arrays: the caller validates and allocates.
"""

from math import sqrt

from numba import njit

# "reassoc" lets LLVM vectorise the row sums, "contract" fuse the multiply-adds; no flag
# that assumes finite values (masked lanes divide by zero).
_FASTMATH = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _plain_row(c, sq, y, y_i, sq_i, gamma):
    """One row of a tile for the paper's loss (``D' = D``); returns the sum of active terms.

    Written without branches (the selects compile to masks) so that LLVM vectorises it.
    Its vectoriser is sensitive to the form: here the slope must go through a local before
    the store (``_certified_row`` vectorises the other way round); check with
    ``inspect_asm`` of an uncached copy after any edit.
    """
    total = 0.0
    for k in range(c.shape[0]):
        # Rounding can make D of a coincident pair slightly negative.
        d = max(sq_i + sq[k] - 2.0 * c[k], 0.0)
        y_ik = 1.0 if y_i == y[k] else -1.0
        h = 1.0 + y_ik * (d - gamma)
        slope = y_ik if h > 0.0 else 0.0
        total += h if h > 0.0 else 0.0
        c[k] = slope
    return total


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _certified_row(c, sq, y, y_i, sq_i, gamma, eK):
    """One row of a tile for certified training (``D' = t |t|``, ``t = sqrt(D) + y eK``).

    Returns the sum of active terms and the sum of ``2 |t|`` over them.
    """
    total = 0.0
    k_slope = 0.0
    for k in range(c.shape[0]):
        s = sqrt(max(sq_i + sq[k] - 2.0 * c[k], 0.0))
        y_ik = 1.0 if y_i == y[k] else -1.0
        t = s + y_ik * eK
        abs_t = abs(t)
        h = 1.0 + y_ik * (t * abs_t - gamma)
        slope = abs_t / s if s > 0.0 else 0.0
        total += h if h > 0.0 else 0.0
        k_slope += 2.0 * abs_t if h > 0.0 else 0.0
        c[k] = y_ik * slope if h > 0.0 else 0.0
    return total, k_slope


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def hinge_slopes_tile(C, sq_rows, y_rows, sq_cols, y_cols, diagonal, gamma, eK):
    """Turn a tile of the Gram matrix into slopes of the hinge loss, in place.

    ``C`` holds ``Z_rows @ Z_cols.T``, so ``D_ij = sq_rows[i] + sq_cols[j] - 2 C_ij``. Each
    pair enters through ``h_ij = 1 + y_ij (D'_ij - gamma)``, where ``D' = D`` when
    ``eK == 0`` and otherwise the certified worst case ``D' = t |t|``,
    ``t = sqrt(D) + y eK`` (see ``certified_hinge``). ``diagonal`` says the rows and columns
    are the same points: only the strict upper triangle (each pair once) counts.

    On return ``C`` holds ``y_ij dD'/dD`` where ``h_ij > 0`` and 0 elsewhere. Returns the
    sum of the active hinge terms and the sum of ``2 |t|`` over active pairs (the slope in
    ``eK``). Serial: the caller runs tiles on several threads.
    """
    total = 0.0
    k_slope = 0.0
    for r in range(C.shape[0]):
        lo = r + 1 if diagonal else 0
        C[r, :lo] = 0.0
        row = C[r, lo:]
        if eK == 0.0:
            total += _plain_row(row, sq_cols[lo:], y_cols[lo:], y_rows[r], sq_rows[r], gamma)
        else:
            row_total, row_slope = _certified_row(
                row, sq_cols[lo:], y_cols[lo:], y_rows[r], sq_rows[r], gamma, eK
            )
            total += row_total
            k_slope += row_slope
    return total, k_slope
