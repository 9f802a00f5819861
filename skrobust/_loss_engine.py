"""The learner's loss engine: eq. (20) over all pairs in tiles, lanes and threads.

The per-element work of a tile is the numba kernel of :mod:`skrobust._loss_kernels`; this
module deals the tiles of the ``N x N`` pair matrix to lanes, runs the lanes (on threads when
the products are large), and turns the slopes into the gradient in ``W`` through the
Laplacian identity ``X^T L X``. The pair-list form (``fit_pairs``) shares the loss core
:func:`certified_hinge`. Threads follow the package's one policy (:mod:`skrobust._threads`).
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from ._loss_kernels import hinge_slopes_tile
from ._threads import blas_threads, on_main_thread, single_threaded

__all__ = [
    "N_LANES",
    "TILE",
    "all_pairs_loss_grad",
    "certified_hinge",
    "inf_to_2_norm_bound",
    "lane_map",
    "lane_threads",
    "loss_threads",
    "pair_list_loss_grad",
]

# Side of the square tiles of the N x N pair matrix: a tile of doubles (1.2 MB) stays in a
# core's cache through the Gram product, the hinge kernel and the two slope products; 256 to
# 384 ran fastest for N = 5,000, m = 64 on two cores (benchmarks/bench_fit.py).
TILE = 384
# Independent sums the tiles are dealt to; threads run whole lanes, so the result is the
# same for any number of threads. The loss's memory is one tile per running lane and
# 2 + (running lanes) arrays of N x (m + 1) doubles, whatever N is.
N_LANES = 4
# Below this many multiply-adds per step (n_points^2 x n_components), BLAS runs on one
# thread: small products gain nothing from threads, and on a busy machine (GridSearchCV
# workers, other processes) waking them costs far more than the product.
SINGLE_THREAD_WORK = 5e7


def certified_hinge(D, sign, gamma, eK):
    """The loss core: per-pair terms of eq. (20) and their slopes, for both training forms.

    Each pair contributes ``max(0, 1 + y (D' - gamma))``. With ``eK == 0``, ``D' = D``, the
    paper's loss. With ``eK = eps K > 0`` (``K >= ||W||_{inf->2}``), ``D'`` is the triangle
    bound's worst case when one point of the pair moves by ``||delta||_inf <= eps``:
    ``t = sqrt(D) + y eK`` (a similar pair pushed apart, a dissimilar one pulled together)
    and ``D' = t |t|`` (the signed square keeps a slope where ``sqrt(D) < eK``).

    Returns ``(sum of the terms, y dD'/dD per pair where active, sum of the active dD'/d(eK)``
    ``= 2 |t| y^2)``. The kernel ``hinge_slopes_tile`` computes the same in one fused pass.
    """
    D = np.maximum(D, 0.0)
    if eK > 0:
        s = np.sqrt(D)
        t = s + sign * eK
        abs_t = np.abs(t)
        D = t * abs_t
        slope = np.divide(abs_t, s, out=np.zeros_like(s), where=s > 0)
    else:
        abs_t, slope = np.zeros_like(D), 1.0
    h = 1.0 + sign * (D - gamma)
    active = h > 0
    return (
        float(h[active].sum()),
        np.where(active, sign * slope, 0.0),
        float(2.0 * abs_t[active].sum()),
    )


def inf_to_2_norm_bound(W):
    """``K = sum of the column norms of W``, an upper bound on ``||W||_{inf->2}``, and its
    gradient in ``W`` (zero columns get the subgradient 0)."""
    norms = np.linalg.norm(W, axis=0)
    grad = np.divide(W, norms, out=np.zeros_like(W), where=norms > 0)
    return float(norms.sum()), grad


def all_pairs_loss_grad(X, y_idx, W, gamma, eps=0.0, map_lanes=map):
    """L1 of eq. (20) over all pairs ``i < j`` of ``X`` and its gradient with respect to W.

    ``sum_{i<j} c_ij (x_i - x_j)(x_i - x_j)^T = X^T L X`` with ``L = diag(C 1) - C`` the
    Laplacian of the symmetric slope matrix ``C``, so the gradient
    ``2 W X^T L X = 2 (L Z)^T X`` needs only the embedding ``Z = X W^T``: no ``N^2 x d``
    tensor. ``C`` is built in square tiles of its upper triangle (each pair once; a tile
    stays in cache through its three products), so memory stays bounded and the cost is
    ``O(3 N^2 m / 2 + N d m)``. A column of ones appended to ``Z`` makes the same products
    return the degrees ``C 1``. ``eps > 0`` trains the certified worst case of
    :func:`certified_hinge`.

    The tiles are dealt to ``N_LANES`` lanes, each summing into its own buffer in a fixed
    order; ``map_lanes`` (``map``, or a thread pool's ``map``: lazy, in lane order) runs the
    lanes, whose sums are added in lane order as they come, so the result does not depend
    on how many threads ran them.
    """
    n = X.shape[0]
    K, dK = inf_to_2_norm_bound(W) if eps > 0 else (0.0, None)
    Z = X @ W.T
    m = Z.shape[1]
    Z1 = np.ones((n, m + 1))
    Z1[:, :m] = Z
    sq = np.einsum("ij,ij->i", Z, Z)
    eK = eps * K
    edges = range(0, n, TILE)
    tiles = [(i, j) for i in edges for j in edges if j >= i]
    lanes = [tiles[k::N_LANES] for k in range(min(N_LANES, len(tiles)))]

    def run_lane(lane):
        CZ1 = np.zeros((n, m + 1))
        buffer = np.empty(TILE * TILE)
        total = k_slope = 0.0
        for i, j in lane:
            rows, cols = slice(i, min(n, i + TILE)), slice(j, min(n, j + TILE))
            C = buffer[: (rows.stop - i) * (cols.stop - j)].reshape(rows.stop - i, -1)
            np.matmul(Z[rows], Z[cols].T, out=C)
            loss, slope = hinge_slopes_tile(
                C, sq[rows], y_idx[rows], sq[cols], y_idx[cols], i == j, float(gamma), eK
            )
            total += loss
            k_slope += slope
            CZ1[rows] += C @ Z1[cols]
            # (Z_i^T C)^T is C^T Z_i; BLAS runs this orientation faster.
            CZ1[cols] += (Z1[rows].T @ C).T
        return CZ1, total, k_slope

    CZ1, total, k_slope = None, 0.0, 0.0
    for lane_CZ1, lane_total, lane_slope in map_lanes(run_lane, lanes):
        if CZ1 is None:
            CZ1 = lane_CZ1
        else:
            CZ1 += lane_CZ1
        total += lane_total
        k_slope += lane_slope
    n_pairs = n * (n - 1) / 2.0
    LZ = CZ1[:, m:] * Z - CZ1[:, :m]
    grad = 2.0 * (LZ.T @ X) / n_pairs
    if eps > 0:
        grad += (eps * k_slope / n_pairs) * dK
    return total / n_pairs, grad


def lane_threads():
    """Threads to run the lanes on: as many as BLAS may use, rounded down to a divisor of
    ``N_LANES`` (the lanes are equal: 3 threads would finish no sooner than 2). One off the
    main thread: a fit there is already one of several parallel jobs, and the thread policy
    (``skrobust._threads``) sets no BLAS limit there, so lane threads would oversubscribe."""
    if not on_main_thread():
        return 1
    n_threads = min(N_LANES, blas_threads())
    while N_LANES % n_threads:
        n_threads -= 1
    return n_threads


@contextmanager
def lane_map(n_threads):
    """A ``map`` over the all-pairs loss's lanes: the builtin, or ``n_threads`` threads with
    BLAS on one thread inside each while the context lasts (threads of threads would
    oversubscribe the cores, and switching BLAS's threads at each call costs more than a
    small product)."""
    if n_threads <= 1:
        yield map
        return
    with (
        single_threaded(),
        ThreadPoolExecutor(n_threads, thread_name_prefix="skrobust-loss") as pool,
    ):
        yield pool.map


@contextmanager
def loss_threads(n_samples, n_components, lanes):
    """The threads of one fit: yields ``(map_lanes, n_threads)``.

    Below ``SINGLE_THREAD_WORK`` multiply-adds per step, or when the lanes run on threads,
    BLAS runs on one thread for the whole fit (so a threaded fit gives the same ``W``, to the
    last bit, as a single-thread one); ``lanes`` says whether the objective is the all-pairs
    loss, whose lanes may run on :func:`lane_threads` threads.
    """
    small = n_samples**2 * n_components < SINGLE_THREAD_WORK
    n_threads = 1 if small or not lanes else lane_threads()
    with single_threaded(small), lane_map(n_threads) as map_lanes:
        yield map_lanes, n_threads


def pair_list_loss_grad(U, sign, W, gamma, eps=0.0):
    """L1 over a given list of labelled pairs, ``U`` holding their differences."""
    K, dK = inf_to_2_norm_bound(W) if eps > 0 else (0.0, None)
    V = U @ W.T
    D = np.einsum("ij,ij->i", V, V)
    loss, c, k_slope = certified_hinge(D, sign, gamma, eps * K)
    n_pairs = U.shape[0]
    grad = 2.0 * ((V * c[:, None]).T @ U) / n_pairs
    if eps > 0:
        grad += (eps * k_slope / n_pairs) * dK
    return loss / n_pairs, grad
