"""Certified kNN: points whose vote provably cannot flip within an L-infinity budget.

A fitted ``Pipeline(metric step, KNeighborsClassifier)`` stores its references embedded,
``e_j = W x_j + bias``. A test point ``z`` (embedding ``Z``) moves to ``z + delta`` with
``delta`` in ``[l, u] = [max(-eps, lo - z), min(eps, hi - z)]`` (the L-infinity ball of
``eps``, intersected with the box ``feature_range`` when there is one). Two arguments
certify a point; it is certified when either does (the interval one, cheaper, first).

**Interval argument** (no box). Moving ``z`` moves every distance to a reference by at most
``eps K`` (triangle bound, ``K`` an upper bound on ``||W||_{inf->2}``):
``r_j' in [l_j, u_j] = [r_j - eps K, r_j + eps K]``, treated as free within these intervals
(a relaxation, so it is sound). Let ``S'`` be the ``k`` nearest references after the attack
and ``rho = max_{j in S'} r_j'``. Every reference with ``r_j' < rho`` is in ``S'`` and ``S'``
holds only references with ``r_j' <= rho``; so ``#{u_j < rho} <= k - 1`` and
``#{l_j <= rho} >= k``, that is ``rho`` lies in ``[l_(k), u_(k)]`` (the ``k``-th smallest
lower and upper ends). For the predicted class ``c`` and a rival ``c'``:

- ``n_c >= A(rho) = max(#{j in c: u_j < rho}, k - #{j not in c: l_j <= rho})``,
- ``n_c' <= min(B(rho), k - n_c)`` with ``B(rho) = #{j in c': l_j <= rho}``.

So ``n_c' < n_c`` whenever ``B(rho) < A(rho)`` or ``2 A(rho) > k``. The point is certified
when this holds for every rival and every ``rho`` in ``[l_(k), u_(k)]``; the counts are step
functions whose worst values are at the interval ends ``l_j``, ``u_j``, which are all that
need checking.

**Pairwise argument** (distances move together). With ``D_j = ||Z - e_j||^2`` and
``P_j = 2 W^T e_j``, the quadratic terms cancel in a difference:
``D_b(delta) - D_a(delta) = D_b - D_a + c_ab . delta`` with ``c_ab = P_a - P_b
= 2 W^T (e_a - e_b)``, linear in ``delta``. Its minimum over ``[l, u]`` is exact and
separable, ``g_ab = D_b - D_a + sum_i min(c_i l_i, c_i u_i)``; without a box it is
``D_b - D_a - eps ||c_ab||_1``. Say own reference ``a`` (class ``c``) *beats* reference
``b`` of another class when ``g_ab`` exceeds the rounding slack: then ``a`` is strictly
nearer than ``b`` after every attack. Let ``A(b)`` be the own references that beat ``b``.

Take any attack and any ``k`` nearest references ``S'`` (any tie-breaking among equal
distances), with ``n_c`` own references and ``T = k - n_c`` others. If ``b`` is in ``S'``,
every ``a`` in ``A(b)`` is strictly nearer than ``b``, hence nearer than the farthest member
of ``S'``, hence in ``S'``: ``n_c >= |A(b)|``. Count a flip towards rival class ``c'`` as
``n_c' >= n_c`` (ties count as flips, whatever the classifier's tie-breaking), with
``m = n_c' >= 1`` (if ``n_c = 0`` some class has a vote, and it is that ``c'``). The ``m``
members of ``c'`` in ``S'`` are distinct, so ``n_c >= alpha_m``, the ``m``-th smallest
``|A(b)|`` over ``b`` in ``c'``; the ``T`` non-own members give ``n_c >= beta_T``, the
``T``-th smallest over all references not in ``c``. A flip towards ``c'`` therefore needs
integers ``1 <= m <= T <= k`` with ``m <= |c'|``, ``T - m <= #(not c) - |c'|``,
``k - T <= m`` and ``max(alpha_m, beta_T) <= k - T``. The point is certified when no rival
class admits such ``(m, T)``. This covers even ``k`` and any number of classes: each rival
class is checked on its own (lumping all rivals into one class would let votes split
between rivals count against ``c`` as one block, and lose the ``n_c' >= n_c`` per class).
For two classes and odd ``k`` it is Wang et al.'s combination (NeurIPS 2020): the point is
certified iff ``alpha_s >= s`` with ``s = (k + 1) // 2``. A pair with ``W (a - b) = 0`` has
``c_ab = 0``: ``a`` beats ``b`` only if it is strictly nearer already, so duplicates of
different classes are a permanent tie and never certified.

**Networks** (a ReLU-network metric, ``skrobust._network_bounds``). The interval argument
needs nothing but an interval ``[l_j, u_j]`` for each distance, so it holds unchanged with
``K`` the network's Lipschitz bound ``||W_1||_{inf->2} prod_{l >= 2} ||W_l||_2``; each
interval is intersected with the distances from ``e_j`` to the interval-bound-propagation
box of ``f(z + delta)`` (which uses the box when there is one). The pairwise argument and
exact verification rest on ``D_b - D_a`` being linear in ``delta``, true for linear metrics
only: they raise a ``TypeError`` on a network.

Rounding. Every comparison keeps a relative margin ``CERTIFICATE_RTOL`` plus the float error
of the expanded squared distances and of ``z + delta``, so ties are never certified and a
certified vote also survives the rounding of the classifier's own arithmetic. That error is
bounded at the perturbed point, whose embedding can be longer than the clean one's by
``eps K``: a margin far below the rounding of distances there (references ``1e-133`` apart,
found by hypothesis) is not certified.
"""

import functools

import numpy as np
from scipy.spatial.distance import cdist, pdist, squareform

from ._bounds import CERTIFICATE_RTOL, MAX_EXACT_FEATURES, metric_norms
from ._network import ReluNetworkTarget
from ._network_bounds import interval_distance_bounds, lipschitz_constant
from ._target import LinearTarget, as_knn_target, check_linear
from ._validation import (
    _as_finite_float_array,
    check_eps,
    check_feature_range,
    check_in_box,
    check_scalar_choice,
)

__all__ = [
    "certified_knn_accuracy",
    "certified_knn_radius",
    "certify_knn",
    "make_certified_scorer",
]

METHODS = ("pairwise", "interval", "exact")

# Rows of test points whose distances to all references are held at once.
_CHUNK_ELEMENTS = 1 << 22

# Up to this many features the cheap bound on ||W||_{inf->2} also uses the spectral norm.
_SVD_FEATURES = 256

# Up to this many references, ||P_a - P_b||_1 is computed for all pairs at once.
_FULL_L1_REFERENCES = 4096

# Float error of an expanded squared distance, relative to the squares it is made of.
_EXPANSION_RTOL = 1e-12


def _certify_point(lower, upper, ref_classes, c, n_classes, k):
    """The certificate of module docstring for one point (see there)."""
    l_k = np.partition(lower, k - 1)[k - 1]
    u_k = np.partition(upper, k - 1)[k - 1]
    rho = np.concatenate([lower, upper])
    rho = rho[(rho >= l_k) & (rho <= u_k)]
    own = ref_classes == c
    at_least = np.maximum(
        np.searchsorted(np.sort(upper[own]), rho, side="left"),
        k - np.searchsorted(np.sort(lower[~own]), rho, side="right"),
    )
    safe = 2 * at_least > k
    if safe.all():
        return True
    for rival in range(n_classes):
        if rival == c:
            continue
        at_most = np.searchsorted(np.sort(lower[ref_classes == rival]), rho, side="right")
        if not np.all(safe | (at_most < at_least)):
            return False
    return True


@functools.lru_cache(maxsize=16)
def _cached_inf_to_2(components_bytes, shape):
    """``metric_norms(W).inf_to_2`` for the ``W`` of these bytes: the sign-vector search
    costs seconds beyond 16 features, and tables certify one model many times."""
    W = np.frombuffer(components_bytes, dtype=np.float64).reshape(shape)
    return metric_norms(LinearTarget(W.copy())).inf_to_2


class _KnnParts:
    """What every certificate of one fitted kNN needs, computed once."""

    def __init__(self, estimator, method="pairwise"):
        self.knn_target = as_knn_target(estimator)
        target = self.knn_target.target
        self.network = None
        if method == "interval" and isinstance(target, ReluNetworkTarget):
            self.network = self.metric = target
        else:
            self.metric = check_linear(
                target,
                f"The kNN certificate with method={method!r}",
                "method='interval' (a ReLU network), or the attack CascadeKNNAttack (an upper "
                "bound)",
            )
        self.knn = self.knn_target.knn
        self.predict = self.knn_target.predict
        self.references = self.knn_target.references
        self.ref_classes = self.knn_target.reference_labels
        self.k = self.knn_target.n_neighbors
        self.n_classes = self.knn_target.n_classes
        self.ref_sq = np.einsum("ij,ij->i", self.references, self.references)
        self._inf_to_2 = None
        self._cheap_inf_to_2 = None
        self._P = None
        self._l1 = {}

    @property
    def P(self):
        """``P_j = 2 W^T e_j`` of every reference (linear metrics only)."""
        if self._P is None:
            self._P = 2.0 * self.references @ self.metric.components
        return self._P

    @property
    def inf_to_2(self):
        """An upper bound on ``||W||_{inf->2}``: exact up to ``MAX_EXACT_FEATURES``
        features (see :func:`~skrobust.inf_to_2_norm`), cached per ``W``."""
        if self._inf_to_2 is None and self.network is not None:
            self._inf_to_2 = lipschitz_constant(self.network.layers)
        elif self._inf_to_2 is None:
            self._inf_to_2 = _cached_inf_to_2(
                self.metric.components.tobytes(), self.metric.components.shape
            )
        return self._inf_to_2

    @property
    def moved_norm_bound(self):
        """How far a unit of budget can move the embedding, ``||f(z + d) - f(z)|| <= eps L``:
        the network's Lipschitz constant, or the cheap bound on ``||W||_{inf->2}``."""
        return self.inf_to_2 if self.network is not None else self.cheap_inf_to_2

    @property
    def cheap_inf_to_2(self):
        """A looser upper bound on ``||W||_{inf->2}``, cheap to compute (once):
        ``||W t|| <= sum_i ||w_i|| |t_i| <= sum_i ||w_i||`` and
        ``||W t|| <= ||W||_2 ||t||_2 <= ||W||_2 sqrt(d)`` for ``||t||_inf <= 1`` (the second
        only up to ``_SVD_FEATURES`` features, where its SVD is cheap)."""
        if self._cheap_inf_to_2 is None:
            W = self.metric.components
            bound = np.sqrt(np.einsum("ij,ij->j", W, W)).sum()
            if 0 < W.shape[1] <= _SVD_FEATURES:
                bound = min(bound, np.linalg.norm(W, 2) * np.sqrt(W.shape[1]))
            self._cheap_inf_to_2 = float(bound * (1.0 + 1e-12))
        return self._cheap_inf_to_2

    def l1(self, c):
        """``||P_a - P_b||_1`` for own ``a`` (class ``c``) and the others ``b``: it does not
        depend on the test point, so it is computed once per class."""
        if c not in self._l1:
            own = self.ref_classes == c
            if self.n_classes > 2 and self.P.shape[0] <= _FULL_L1_REFERENCES:
                # Many classes: all pairs once (half of them, by symmetry) beats every
                # class's block apart.
                if "all" not in self._l1:
                    self._l1["all"] = squareform(pdist(self.P, "cityblock"))
                self._l1[c] = self._l1["all"][np.ix_(own, ~own)]
            else:
                self._l1[c] = cdist(self.P[own], self.P[~own], "cityblock")
        return self._l1[c]

    def check_X(self, X, feature_range):
        """``(X, box)``: the points as floats, and the box widened by the few ulps they
        may overshoot it (``check_in_box``; sound: a larger box only helps the attacker)."""
        X = _as_finite_float_array(X, "X")
        if X.ndim != 2 or X.shape[1] != self.metric.n_features:
            raise ValueError(
                f"X must have shape (n_samples, {self.metric.n_features}), got shape {X.shape}."
            )
        return X, check_in_box(X, feature_range)


def _interval_certify(parts, Zc, sq, z_sq, eps, predicted, inf_to_2, X=None, box=None):
    """The interval argument for a chunk of points (``eps`` one budget per point); for a
    network, the intervals of ``inf_to_2`` (its Lipschitz constant) intersected with those
    of interval bound propagation from the points ``X`` inside the box ``box``."""
    dist = np.sqrt(np.maximum(sq, 0.0))
    reach = (eps * inf_to_2)[:, None]
    # Widen by the float error of the expanded squares, plus the relative margin.
    slack = CERTIFICATE_RTOL * (dist + reach) + np.sqrt(
        _EXPANSION_RTOL * (np.abs(sq) + parts.ref_sq + z_sq[:, None])
    )
    lower = np.maximum(dist - reach - slack, 0.0)
    upper = dist + reach + slack
    if parts.network is not None:
        ibp_lower, ibp_upper = interval_distance_bounds(
            parts.network.layers, X, eps, parts.references, box
        )
        np.maximum(lower, ibp_lower, out=lower)
        np.minimum(upper, ibp_upper, out=upper)
    return np.array(
        [
            _certify_point(
                lower[i], upper[i], parts.ref_classes, predicted[i], parts.n_classes, parts.k
            )
            for i in range(Zc.shape[0])
        ],
        dtype=bool,
    )


def _beaten_counts(parts, X, sq, z_sq, eps, c, feature_range):
    """``|A(b)|`` (capped at ``k + 1``) for each reference ``b`` not of class ``c``, for
    points ``X`` predicted ``c`` (see the pairwise argument in the module docstring).

    Own ``a`` beats ``b`` over the ball when ``D_b - D_a - eps ||c_ab||_1`` exceeds the
    slack ``RTOL (|D_a| + |D_b| + eps ||c_ab||_1) + rounding ||c_ab||_1 + expansion error``;
    the terms are regrouped so that a point costs one outer difference and one scaled copy
    of the precomputed ``||c_ab||_1``.
    """
    own = parts.ref_classes == c
    D_own, D_other = sq[:, own], sq[:, ~own]
    expansion = _EXPANSION_RTOL * z_sq[:, None]
    # Terms of b (lowered) and of a (raised) by their share of the slack.
    high = D_other - CERTIFICATE_RTOL * np.abs(D_other) - _EXPANSION_RTOL * parts.ref_sq[~own]
    low = D_own + CERTIFICATE_RTOL * np.abs(D_own) + _EXPANSION_RTOL * parts.ref_sq[own]
    high, low = high - expansion, low + expansion
    rounding = 4.0 * np.finfo(np.float64).eps * (np.abs(X).max(axis=1) + eps)
    scale = eps * (1.0 + CERTIFICATE_RTOL) + rounding
    l1 = parts.l1(c)
    counts = np.empty(D_other.shape, dtype=np.int64)
    for i in range(X.shape[0]):
        margin = high[i][None, :] - low[i][:, None] - scale[i] * l1
        beats = margin > 0
        if feature_range is not None:
            clean = high[i][None, :] - low[i][:, None]
            _box_refine(parts, X[i], eps[i], feature_range, own, margin, clean, beats)
        counts[i] = np.minimum(beats.sum(axis=0), parts.k + 1)
    return counts


# Pairs times binding coordinates held at once by the box refinement.
_BOX_ELEMENTS = 1 << 21


def _box_refine(parts, z, eps, feature_range, own, margin, clean, beats):
    """Add the box to the pairs the ball alone does not decide (in place).

    The box only shrinks ``[l, u]``; on a coordinate where it binds, the exact minimum rises
    by ``c_i m_i + |c_i| (eps - r_i) >= 0`` (``m``, ``r`` the centre and half-width of
    ``[l_i, u_i]``). Pruning: only binding coordinates are summed; only references ``b``
    whose count is still ``<= k`` (more is never needed); and only pairs not yet decided
    whose clean margin ``clean`` (the value at ``delta = 0``, an upper bound on the
    minimum) is positive.
    """
    lo, hi = feature_range
    lower, upper = np.maximum(-eps, lo - z), np.minimum(eps, hi - z)
    bind = np.flatnonzero((lower > -eps) | (upper < eps))
    if bind.size == 0:
        return
    open_b = beats.sum(axis=0) <= parts.k
    rows, cols = np.nonzero(~beats & open_b[None, :] & (clean > 0))
    if rows.size == 0:
        return
    mid, rest = (lower[bind] + upper[bind]) / 2.0, eps - (upper[bind] - lower[bind]) / 2.0
    P_own = parts.P[own][:, bind]
    P_other = parts.P[~own][:, bind]
    step = max(1, _BOX_ELEMENTS // bind.size)
    for start in range(0, rows.size, step):
        r, q = rows[start : start + step], cols[start : start + step]
        C = P_own[r] - P_other[q]
        rise = C @ mid + np.abs(C) @ rest
        beats[r, q] = margin[r, q] + rise > 0


def _pairwise_certify(parts, counts, c):
    """Whether no rival class admits a flip ``(m, T)`` (module docstring), per point."""
    k = parts.k
    other = parts.ref_classes[parts.ref_classes != c]
    n_other = other.shape[0]
    if n_other == 0:
        return np.ones(counts.shape[0], dtype=bool)
    # beta[:, T - 1]: T-th smallest count over all others (T <= k).
    beta = np.sort(counts, axis=1)[:, : min(k, n_other)]
    certified = np.ones(counts.shape[0], dtype=bool)
    for rival in range(parts.n_classes):
        members = other == rival
        size = int(members.sum())
        if rival == c or size == 0:
            continue
        alpha = np.sort(counts[:, members], axis=1)[:, : min(k, size)]
        for m in range(1, min(k, size) + 1):
            for T in range(max(m, k - m), min(k, n_other) + 1):
                if T - m > n_other - size:
                    continue
                worst = np.maximum(alpha[:, m - 1], beta[:, T - 1])
                certified &= worst > k - T
    return certified


def _certify(parts, X, eps, method, feature_range, use_interval=True):
    """Certificates of ``method`` for points ``X`` with one budget per point
    (``use_interval=False``: the pairwise argument alone, for tests)."""
    Z = parts.metric.transform(X)
    E = parts.references
    k = parts.k
    certified = np.zeros(X.shape[0], dtype=bool)
    rows = max(1, _CHUNK_ELEMENTS // max(1, E.shape[0]))
    for start in range(0, X.shape[0], rows):
        stop = min(X.shape[0], start + rows)
        Zc = Z[start:stop]
        z_sq = np.einsum("ij,ij->i", Zc, Zc)
        sq = z_sq[:, None] + parts.ref_sq - 2.0 * Zc @ E.T
        # The classifier's own rounding is that of the perturbed point, whose embedding has
        # norm at most ||z|| + eps K: the expansion error is bounded at that norm.
        z_sq_moved = (np.sqrt(z_sq) + eps[start:stop] * parts.moved_norm_bound) ** 2
        # The vote of the clean point. Where it is ambiguous (tied distances or counts) the
        # certificates fail anyway, so they agree with knn.predict wherever they certify.
        nearest = np.argpartition(sq, k - 1, axis=1)[:, :k]
        votes = np.zeros((Zc.shape[0], parts.n_classes), dtype=np.int64)
        np.add.at(votes, (np.arange(Zc.shape[0])[:, None], parts.ref_classes[nearest]), 1)
        predicted = votes.argmax(axis=1)
        done = np.zeros(Zc.shape[0], dtype=bool)
        # Interval first where ||W||_{inf->2} is cheap and exact; beyond MAX_EXACT_FEATURES
        # the pairwise argument goes first and the interval one uses a cheap bound on it.
        exact_norm = method == "interval" or parts.metric.n_features <= MAX_EXACT_FEATURES
        if use_interval and exact_norm:
            done = _interval_certify(
                parts, Zc, sq, z_sq_moved, eps[start:stop], predicted, parts.inf_to_2,
                X[start:stop], feature_range,
            )  # fmt: skip
        if method == "pairwise":
            for c in np.unique(predicted[~done]):
                todo = np.flatnonzero(~done & (predicted == c))
                counts = _beaten_counts(
                    parts, X[start:stop][todo], sq[todo], z_sq_moved[todo], eps[start:stop][todo],
                    c, feature_range,
                )  # fmt: skip
                done[todo] = _pairwise_certify(parts, counts, c)
            if use_interval and not exact_norm and not done.all():
                todo = np.flatnonzero(~done)
                done[todo] = _interval_certify(
                    parts, Zc[todo], sq[todo], z_sq_moved[todo], eps[start:stop][todo],
                    predicted[todo], parts.cheap_inf_to_2,
                )  # fmt: skip
        certified[start:stop] = done
    return certified


def _check_single_eps(eps):
    eps_values, scalar = check_eps(eps)
    if not scalar:
        raise ValueError(f"eps must be a single number, got {eps!r}.")
    return float(eps_values[0])


def certify_knn(estimator, X, eps, *, method="pairwise", feature_range=None):
    """Whether the kNN vote at each point provably survives every attack within ``eps``.

    Sound: no perturbation with ``||delta||_inf <= eps`` (inside ``feature_range``, if
    given) changes the predicted class of a certified point, or ties its vote. The
    arguments are in the module docstring of ``skrobust._knn_certificate``.

    Parameters
    ----------
    estimator : fitted Pipeline, KNeighborsClassifier or KnnTarget
        A ``Pipeline`` of a metric step (a Mahalanobis model, or a ReLU network such as
        :class:`~skrobust.ReluMetricLearner`; affine scalers may precede it) and a
        ``KNeighborsClassifier`` with ``weights="uniform"`` and the Euclidean metric; or such
        a ``KNeighborsClassifier`` alone (the identity metric); optionally in a
        ``FrozenEstimator``; or a :class:`~skrobust.targets.KnnTarget`.
    X : array-like of shape (n_samples, n_features)
        Test points.
    eps : float
        The L-infinity budget of the test point, ``>= 0``.
    method : {"pairwise", "interval", "exact"}, default="pairwise"
        ``"interval"``: each distance moves within its own triangle-bound interval (loose,
        ignores the box); for a network, the Lipschitz interval intersected with the one
        of interval bound propagation (which uses the box). ``"pairwise"``: the interval
        argument, and for the points it leaves, the exact per-pair minima of ``D_b - D_a``
        over the ball and the box combined over the vote. ``"exact"``: the points
        :func:`~skrobust.certificates.verify_knn` proves robust (an LP per rival for 1-NN;
        a MILP for ``k > 1``, on at most 40 references). ``"pairwise"`` and ``"exact"`` are
        linear-only: on a network they raise a ``TypeError`` (use ``"interval"``).
    feature_range : tuple (lo, hi) or None, default=None
        The box the attacker is confined to; ``None`` (no box) certifies against every
        perturbation in the ball, so test points need not lie in any box. A box can only
        certify more.

    Returns
    -------
    certified : ndarray of bool, shape (n_samples,)

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.certificates import certify_knn
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(3))
    >>> pipe = pipe.fit(X[::2], y[::2])
    >>> pairwise = certify_knn(pipe, X[1::2], eps=0.05)
    >>> interval = certify_knn(pipe, X[1::2], eps=0.05, method="interval")
    >>> pairwise.shape, bool(pairwise.sum() >= interval.sum())
    ((89,), True)
    """
    eps = _check_single_eps(eps)
    method = check_scalar_choice(method, "method", METHODS)
    feature_range = check_feature_range(feature_range)
    if method == "exact":
        from ._exact import verify_knn

        return verify_knn(estimator, X, eps, feature_range=feature_range).robust
    parts = _KnnParts(estimator, method)
    X, feature_range = parts.check_X(X, feature_range)
    return _certify(parts, X, np.full(X.shape[0], eps), method, feature_range)


def certified_knn_radius(estimator, X, *, method="pairwise", rtol=1e-6):
    """Per point, a budget below which its kNN vote provably cannot flip.

    The largest ``eps`` (to a relative ``rtol``) at which :func:`certify_knn` certifies
    the point, found by bisection on ``eps``; the certificates shrink as ``eps`` grows, so
    the point is certified at every budget up to the radius. The radius ignores any box
    (it holds for the ball alone, so it is sound with a box too; with a box
    :func:`certify_knn` may certify beyond it).

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        See :func:`certify_knn`.
    X : array-like of shape (n_samples, n_features)
        Test points, in the raw input space of ``estimator``.
    method : {"pairwise", "interval"}, default="pairwise"
        The certificate whose radius is computed (see :func:`certify_knn`): ``"pairwise"``
        certifies a point when the pairwise or the interval argument does, ``"interval"``
        uses the interval argument alone (the one for networks).
    rtol : float, default=1e-6
        Relative precision of the bisection.

    Returns
    -------
    radius : ndarray of shape (n_samples,)
        0 where even ``eps = 0`` is not certified (a tie), ``inf`` where no budget flips
        the vote (a single class of references).

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust.certificates import certified_knn_radius, certify_knn
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> [round(float(r), 4) for r in certified_knn_radius(knn, [[0.3], [0.5]])]
    [0.2, 0.0]
    """
    method = check_scalar_choice(method, "method", METHODS[:2])
    if not (isinstance(rtol, float | int) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}.")
    parts = _KnnParts(estimator, method)
    X, _ = parts.check_X(X, None)
    return knn_radius(parts, X, method, rtol)


def knn_radius(parts, X, method, rtol):
    """:func:`certified_knn_radius` of validated points, per point (each point's bisection
    sees only its own certificates, so the result does not depend on the other points)."""
    n = X.shape[0]
    low = np.zeros(n)
    at_zero = _certify(parts, X, low, method, None)
    high = np.ones(n)
    growing = at_zero.copy()
    for _ in range(64):  # a budget that breaks each certified point
        if not growing.any():
            break
        still = _certify(parts, X[growing], high[growing], method, None)
        idx = np.flatnonzero(growing)
        low[idx[still]] = high[idx[still]]
        high[idx[still]] *= 16.0
        growing[idx[~still]] = False
    radius = np.where(at_zero, low, 0.0)
    radius[growing] = np.inf
    active = at_zero & ~growing
    while active.any():
        idx = np.flatnonzero(active)
        mid = (low[idx] + high[idx]) / 2.0
        ok = _certify(parts, X[idx], mid, method, None)
        low[idx[ok]] = mid[ok]
        high[idx[~ok]] = mid[~ok]
        active[idx] = high[idx] - low[idx] > rtol * high[idx]
    radius[at_zero & np.isfinite(radius)] = low[at_zero & np.isfinite(radius)]
    return radius


def certified_knn_accuracy(estimator, X, y, eps, *, method="pairwise", feature_range=None):
    """Fraction of points both correctly classified and certified at ``eps``.

    A lower bound on the accuracy under any attack within the budget; accuracy under a
    particular attack (``skrobust.metrics.make_robust_scorer``) is an upper bound.

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        See :func:`certify_knn`.
    X : array-like of shape (n_samples, n_features)
        Test points.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        The L-infinity budget of the test point, ``>= 0``.
    method : {"pairwise", "interval", "exact"}, default="pairwise"
        See :func:`certify_knn`.
    feature_range : tuple (lo, hi) or None, default=None
        See :func:`certify_knn`.

    Returns
    -------
    certified_accuracy : float

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.certificates import certified_knn_accuracy
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(3))
    >>> pipe = pipe.fit(X[::2], y[::2])
    >>> clean = pipe.score(X[1::2], y[1::2])
    >>> bool(certified_knn_accuracy(pipe, X[1::2], y[1::2], eps=0.01) <= clean)
    True
    """
    certified = certify_knn(estimator, X, eps, method=method, feature_range=feature_range)
    y = np.asarray(y)
    if y.shape != certified.shape:
        raise ValueError(f"y must have shape {certified.shape}, got {y.shape}.")
    return float(np.mean(certified & (as_knn_target(estimator).predict(X) == y)))


def make_certified_scorer(eps=0.1, *, method="pairwise", feature_range=None):
    """A scorer of certified kNN accuracy at ``eps``, for ``GridSearchCV`` and friends.

    Parameters
    ----------
    eps : float, default=0.1
        The L-infinity budget.
    method : {"pairwise", "interval", "exact"}, default="pairwise"
        See :func:`certify_knn`.
    feature_range : tuple (lo, hi) or None, default=None
        See :func:`certify_knn`. ``None`` keeps test folds outside the training box from
        failing.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returns :func:`certified_knn_accuracy` of the fitted
        pipeline on ``(X, y)``.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.metrics import make_certified_scorer
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(max_iter=50), KNeighborsClassifier(3))
    >>> search = GridSearchCV(pipe, {"robustmetriclearner__alpha": [0.0, 1.0]}, cv=2,
    ...                       scoring={"clean": "accuracy",
    ...                                "certified": make_certified_scorer(eps=0.01)},
    ...                       refit="certified").fit(X, y)
    >>> bool(0.0 <= search.best_score_ <= 1.0)
    True
    """
    eps = _check_single_eps(eps)
    method = check_scalar_choice(method, "method", METHODS)
    feature_range = check_feature_range(feature_range)

    def certified_scorer(estimator, X, y):
        return certified_knn_accuracy(
            estimator, X, y, eps, method=method, feature_range=feature_range
        )

    certified_scorer.eps = eps
    certified_scorer.method = method
    return certified_scorer
