"""Exact robustness of a kNN vote: one LP per rival (1-NN), one MILP per rival class (k-NN).

Notation of :mod:`skrobust._knn_certificate`: a test point ``z`` with embedding
``Z = W z + bias``, stored (embedded) references ``e_j`` with ``D_j = ||Z - e_j||^2``, and
``P_j = 2 W^T e_j``. A perturbation ``delta`` lies in the feasible box
``[lower, upper] = [max(-eps, lo - z), min(eps, hi - z)]`` (the L-infinity ball intersected with
``feature_range``). Then ``D_j(delta) = ||W (z + delta) - e_j||^2 =
||W delta||^2 + 2 delta^T W^T Z + D_j - P_j . delta``: the first two terms are common to all
references, so the order of the references is that of the linear functions
``f_j(delta) = D_j - P_j . delta``.

1-NN. The vote flips (or ties) iff some rival ``b`` (another class than the predicted ``c``)
gets ``f_b <= f_a`` for every own reference ``a``. The max-margin LP

    maximise t  subject to  f_b(delta) - f_a(delta) + t <= 0  (a in c),  delta in [lower, upper]

has optimum ``t* > 0`` iff ``b`` can become strictly nearer than all of ``c``; its solution
is an adversarial point, which ``predict`` then confirms. Any ``lambda`` in the simplex over
``a`` proves ``t* <= -L(lambda)`` with ``L(lambda) = min_delta sum_a lambda_a (f_b - f_a)``,
computed exactly per coordinate (weak duality); the LP's dual values give such a
``lambda``, so a rival is declared unable to win only when this exact bound, not the
solver's word, exceeds the rounding slack. A rival that a single own reference already
beats over the whole box (the pairwise test, ``lambda`` a vertex) needs no LP.

k-NN. A selection ``S`` of ``k`` references, a level ``rho`` and a margin ``t`` with
``f_j + t <= rho`` on ``S`` and ``f_j - t >= rho`` off it are the k nearest references with
margin ``t``; big-M constraints with binary ``s_j`` encode this, and
``n_c' - n_c >= 0`` asks for a tie or a flip towards rival class ``c'``. Maximising ``t``
(``scipy.optimize.milp``, HiGHS): a bound ``t <= -tol`` on every rival class proves the
vote (ties, among distances or votes, count as flips), ``t* > tol`` gives a point to
confirm with ``predict``, anything else is undecided within the solver's tolerance.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from ._bounds import CERTIFICATE_RTOL
from ._knn_certificate import _certify, _KnnParts
from ._validation import check_eps, check_feature_range

__all__ = ["KnnVerification", "verify_knn"]

ROBUST, BROKEN, UNDECIDED = "robust", "broken", "undecided"
_CANDIDATE = "candidate"

# Largest reference set the MILP of a k-NN vote is run on by default.
MAX_MILP_REFERENCES = 40

# Relative tolerance of the solvers' answers (HiGHS works to about 1e-7 absolute).
_SOLVER_RTOL = 1e-6


@dataclass(frozen=True, eq=False)
class KnnVerification:
    """The exact answer of :func:`verify_knn` for each test point.

    Attributes
    ----------
    status : ndarray of str, shape (n_samples,)
        ``"robust"`` (no perturbation within the budget changes the vote or ties it),
        ``"broken"`` (``adversarial`` holds a point the classifier's own ``predict``
        classifies differently) or ``"undecided"``: a tie is reachable but no flip is
        confirmed (for ``k > 1`` mostly a reachable vote tie that the classifier's
        tie-breaking, towards the first class, resolves to the clean class), or the
        answer lies within the solver's tolerance.
    adversarial : ndarray of shape (n_samples, n_features)
        The confirmed adversarial points of the broken rows; NaN elsewhere.
    predictions : ndarray of shape (n_samples,)
        The classifier's clean predictions.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust.certificates import verify_knn
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> result = verify_knn(knn, [[0.1], [0.45]], eps=0.1)
    >>> result.status.tolist()
    ['robust', 'broken']
    >>> result.adversarial[result.broken], result.n_undecided
    (array([[0.55]]), 0)
    """

    status: np.ndarray
    adversarial: np.ndarray
    predictions: np.ndarray

    @property
    def robust(self):
        """Boolean mask of the points proven robust."""
        return self.status == ROBUST

    @property
    def broken(self):
        """Boolean mask of the points with a confirmed adversarial point."""
        return self.status == BROKEN

    @property
    def n_undecided(self):
        """How many points the solver's tolerance left undecided."""
        return int(np.sum(self.status == UNDECIDED))


def feasible_box(z, eps, feature_range):
    """``(lower, upper)``: the range of each coordinate of ``delta`` (ball of ``eps``, box)."""
    if feature_range is None:
        return np.full(z.shape, -eps), np.full(z.shape, eps)
    lo, hi = feature_range
    return np.maximum(-eps, lo - z), np.minimum(eps, hi - z)


def linear_min(c, lower, upper):
    """``min_{l <= delta <= u} c . delta``, exact per coordinate, for rows of ``c``."""
    return np.minimum(c * lower, c * upper).sum(axis=-1)


def pair_slack(D_a, D_b, c, lower, upper, z, eps):
    """How far rounding can move ``f_b - f_a`` (``c = P_a - P_b``): a relative margin of
    ``CERTIFICATE_RTOL`` on every term, and the error of ``z + delta`` in floating point."""
    reach = np.maximum(np.abs(lower), np.abs(upper))
    c_abs = np.abs(c)
    rounding = 4.0 * np.finfo(np.float64).eps * (np.abs(z).max(initial=0.0) + eps)
    return CERTIFICATE_RTOL * (np.abs(D_a) + np.abs(D_b) + c_abs @ reach) + rounding * (
        c_abs.sum(axis=-1)
    )


def adversarial_point(z, delta, eps, feature_range):
    """``z + delta`` kept inside the ball and the box in floating point."""
    lower, upper = feasible_box(z, eps, feature_range)
    x = z + np.clip(delta, lower, upper)
    lo = z - eps if feature_range is None else np.maximum(z - eps, feature_range[0])
    hi = z + eps if feature_range is None else np.minimum(z + eps, feature_range[1])
    for _ in range(4):  # z + eps may round past the ball by an ulp
        out = (np.abs(x - z) > eps) | (x < lo) | (x > hi)
        if not out.any():
            break
        x[out] = np.nextafter(x[out], z[out])
    return x


def _verify_1nn_point(z, Z, E, P, ref_class, c, label, eps, feature_range, predict):
    """Status and adversarial point of one test point of a 1-NN (see module docstring):
    ``c`` the index of its predicted class, ``label`` the class itself. With
    ``predict=None`` the first adversarial point found comes back unconfirmed, as
    ``(_CANDIDATE, x)``, for the caller to confirm in one batch."""
    lower, upper = feasible_box(z, eps, feature_range)
    D = np.einsum("ij,ij->i", Z - E, Z - E)
    own = np.flatnonzero(ref_class == c)
    rivals = np.flatnonzero(ref_class != c)
    P_own = P[own]
    status = ROBUST
    for b in rivals[np.argsort(D[rivals], kind="stable")]:  # the nearest rivals break first
        C = P_own - P[b]  # c_ab = P_a - P_b: g_ab(delta) = D_b - D_a + c_ab . delta
        g0 = D[b] - D[own]
        pair_min = g0 + linear_min(C, lower, upper)
        if np.any(pair_min > pair_slack(D[own], D[b], C, lower, upper, z, eps)):
            continue  # one own reference stays strictly nearer than b: no LP needed
        d = z.shape[0]
        res = linprog(
            np.append(np.zeros(d), -1.0),
            A_ub=np.hstack([C, np.ones((len(own), 1))]),
            b_ub=-g0,
            bounds=[*zip(lower, upper, strict=True), (None, None)],
            method="highs",
        )
        if res.status != 0:
            status = UNDECIDED
            continue
        lam = np.maximum(-res.ineqlin.marginals, 0.0)
        if lam.sum() > 0:
            lam = lam / lam.sum()
            C_lam = lam @ C
            bound = lam @ g0 + linear_min(C_lam, lower, upper)
            slack = lam @ pair_slack(D[own], D[b], C, lower, upper, z, eps)
            if bound > slack:
                continue  # proven: b never gets as near as the nearest own reference
        if -res.fun > 0:
            x = adversarial_point(z, res.x[:d], eps, feature_range)
            if predict is None:
                return _CANDIDATE, x
            if predict(x[np.newaxis])[0] != label:
                return BROKEN, x
        status = UNDECIDED
    return status, None


def _milp_flip(z, D, P, ref_class, c, rival, k, eps, feature_range, strict):
    """Max margin ``t`` of a k-nearest selection voting ``n_rival - n_c >= strict``.

    Returns ``(upper bound on t, t*, delta*)``; ``t*`` and ``delta*`` are None when the
    solver found no feasible selection.
    """
    d, n = z.shape[0], D.shape[0]
    lower, upper = feasible_box(z, eps, feature_range)
    f_lo = D + linear_min(-P, lower, upper)
    f_hi = D - linear_min(P, lower, upper)
    rho_lo, rho_hi = f_lo.min(), f_hi.max()
    T = rho_hi - rho_lo + 1.0
    M = np.maximum(f_hi - rho_lo, rho_hi - f_lo) + T
    # Variables: delta (d), s (n), rho, t.
    n_var = d + n + 2
    i_rho, i_t = d + n, d + n + 1
    rows, lb, ub = [], [], []
    for j in range(n):
        # Selected: D_j - P_j . delta - rho + t + M_j s_j <= M_j.
        row = np.zeros(n_var)
        row[:d] = -P[j]
        row[d + j] = M[j]
        row[i_rho] = -1.0
        row[i_t] = 1.0
        rows.append(row)
        lb.append(-np.inf)
        ub.append(M[j] - D[j])
        # Not selected: rho - D_j + P_j . delta + t - M_j s_j <= 0.
        row = np.zeros(n_var)
        row[:d] = P[j]
        row[d + j] = -M[j]
        row[i_rho] = 1.0
        row[i_t] = 1.0
        rows.append(row)
        lb.append(-np.inf)
        ub.append(D[j])
    row = np.zeros(n_var)
    row[d : d + n] = 1.0
    rows.append(row)
    lb.append(k)
    ub.append(k)
    row = np.zeros(n_var)
    row[d : d + n] = (ref_class == rival).astype(float) - (ref_class == c)
    rows.append(row)
    lb.append(float(strict))
    ub.append(np.inf)
    bounds_lo = np.concatenate([lower, np.zeros(n), [rho_lo - T, -T]])
    bounds_hi = np.concatenate([upper, np.ones(n), [rho_hi + T, T]])
    objective = np.zeros(n_var)
    objective[i_t] = -1.0
    integrality = np.zeros(n_var)
    integrality[d : d + n] = 1
    res = milp(
        objective,
        integrality=integrality,
        bounds=Bounds(bounds_lo, bounds_hi),
        constraints=LinearConstraint(np.array(rows), lb, ub),
        options={"mip_rel_gap": 0.0},
    )
    if res.status == 2:  # infeasible: no selection votes that way at all
        return -np.inf, None, None
    t_bound = -res.mip_dual_bound if res.mip_dual_bound is not None else np.inf
    if res.x is None:
        return t_bound, None, None
    return t_bound, -res.fun, res.x[:d]


def _verify_knn_point(z, Z, E, P, ref_class, c, label, n_classes, k, eps, feature_range, predict):
    """Status and adversarial point of one test point of a k-NN, by MILP per rival class."""
    D = np.einsum("ij,ij->i", Z - E, Z - E)
    tol = _SOLVER_RTOL * (1.0 + np.abs(D).max())
    status = ROBUST
    for rival in range(n_classes):
        if rival == c or not np.any(ref_class == rival):
            continue
        t_bound, t, delta = _milp_flip(z, D, P, ref_class, c, rival, k, eps, feature_range, 0)
        if t_bound < -tol:
            continue
        if t is not None and t > tol:
            x = adversarial_point(z, delta, eps, feature_range)
            if predict(x[np.newaxis])[0] != label:
                return BROKEN, x
            # A tie in the vote that predict resolved to c: look for a strict flip.
            _, t, delta = _milp_flip(z, D, P, ref_class, c, rival, k, eps, feature_range, 1)
            if t is not None and t > tol:
                x = adversarial_point(z, delta, eps, feature_range)
                if predict(x[np.newaxis])[0] != label:
                    return BROKEN, x
        status = UNDECIDED
    return status, None


def verify_knn(estimator, X, eps, *, feature_range=None, max_references=MAX_MILP_REFERENCES):
    """Exact robustness of a kNN vote at each point: robust, broken or undecided.

    For a 1-NN, one max-margin LP per rival reference (``scipy.optimize.linprog``, HiGHS),
    after the pairwise test has discarded the rivals that one own reference always beats;
    a rival is discarded only by an exact weak-duality bound, never on the solver's word.
    For ``k > 1``, one MILP per rival class (``scipy.optimize.milp``) over all references,
    so only for small reference sets (``max_references``). The formulations are in the
    module docstring of ``skrobust._exact``. A vote that can be tied, among distances or
    among votes, is not robust (whatever the classifier's tie-breaking would do); a point
    is broken only when the classifier's own ``predict`` confirms the adversarial point.

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        As for :func:`~skrobust.certificates.certify_knn`.
    X : array-like of shape (n_samples, n_features)
        Test points (inside ``feature_range`` when one is given).
    eps : float
        The L-infinity budget, ``>= 0``.
    feature_range : tuple (lo, hi) or None, default=None
        The box the adversarial points must stay in; ``None`` (the convention of the kNN
        certificates and scorers) is no box.
    max_references : int, default=40
        Largest number of stored references for the MILP of ``k > 1`` (its size grows
        with it): fit the classifier on a subsample for larger sets.

    Returns
    -------
    result : KnnVerification
        ``status``, confirmed ``adversarial`` points and clean ``predictions``.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.certificates import verify_knn
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(1))
    >>> pipe = pipe.fit(X[::2], y[::2])
    >>> result = verify_knn(pipe, X[1::2], eps=0.05, feature_range=(0.0, 1.0))
    >>> bool((pipe.predict(result.adversarial[result.broken]) != result.predictions[
    ...     result.broken]).all())
    True
    """
    eps_values, scalar = check_eps(eps)
    if not scalar:
        raise ValueError(f"eps must be a single number, got {eps!r}.")
    eps = float(eps_values[0])
    feature_range = check_feature_range(feature_range)
    parts = _KnnParts(estimator, "exact")
    metric, knn = parts.metric, parts.knn
    X, feature_range = parts.check_X(X, feature_range)
    E, ref_class, k = parts.references, parts.ref_classes, parts.k
    if k > 1 and E.shape[0] > max_references:
        raise ValueError(
            f"The exact k-NN check (k={k}) solves a MILP over all {E.shape[0]} references, "
            f"more than max_references={max_references}: fit the classifier on a subsample, "
            "or raise max_references."
        )
    P = parts.P
    Z = metric.transform(X)
    # The pairwise certificate settles most robust points of a k-NN without a MILP.
    certified = np.zeros(X.shape[0], dtype=bool)
    if k > 1:
        certified = _certify(parts, X, np.full(X.shape[0], eps), "pairwise", feature_range)
    predictions = parts.predict(X)
    classes = list(knn.classes_)
    status = np.empty(X.shape[0], dtype=object)
    adversarial = np.full(X.shape, np.nan)
    for i in range(X.shape[0]):
        c = classes.index(predictions[i])
        if k > 1 and certified[i]:
            s, x = ROBUST, None
        elif k == 1:
            # Candidates are confirmed below in one call: each predict call costs
            # scikit-learn's thread start-up.
            s, x = _verify_1nn_point(
                X[i], Z[i], E, P, ref_class, c, predictions[i], eps, feature_range, None
            )
        else:
            s, x = _verify_knn_point(
                X[i], Z[i], E, P, ref_class, c, predictions[i], len(classes), k, eps,
                feature_range, parts.predict,
            )  # fmt: skip
        status[i] = s
        if x is not None:
            adversarial[i] = x
    candidates = np.flatnonzero(status == _CANDIDATE)
    if candidates.size:
        flipped = parts.predict(adversarial[candidates]) != predictions[candidates]
        status[candidates[flipped]] = BROKEN
        for i in candidates[~flipped]:  # rare: rounding undid the flip; search all rivals
            adversarial[i] = np.nan
            c = classes.index(predictions[i])
            status[i], x = _verify_1nn_point(
                X[i], Z[i], E, P, ref_class, c, predictions[i], eps, feature_range,
                parts.predict,
            )  # fmt: skip
            if x is not None:
                adversarial[i] = x
    return KnnVerification(status.astype(str), adversarial, predictions)
