"""The AckMetric attack on pairs (eq. 4-9, 22) and on triplets (appendix C).

For a linear metric both move the difference ``z`` of two points of a tuple: a pair's
``x_i - x_j`` (both points move), a triplet's ``anchor - positive`` (the positive moves; the
anchor and the negative stay, so ``D(anchor, negative)`` is the fixed threshold the
positive's distance must cross). The gradient of a whole chunk is one BLAS product; the sign
step, box clip, budget and success test are one numba kernel
(:func:`skrobust._kernels.pair_step`). A nonlinear metric (a ReLU network, a wrapped model)
has no ``z``: its tuples go to :func:`skrobust._network_attack.attack_pairs` (eq. 6 with the
gradients of eq. 10-11).
"""

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from . import _kernels
from ._attack_core import (
    CHUNK_ELEMENTS,
    SignGradientAttack,
    TaskResult,
    first_success,
    restart_rng,
)
from ._mahalanobis import decision_threshold
from ._network_attack import attack_pairs
from ._target import metric_of, resolve_threshold, unwrap_frozen
from ._threads import run_parallel
from ._validation import check_pairs, check_triplets

__all__ = ["PairAttack", "PairAttackResult", "TripletAttack", "TripletAttackResult"]


@dataclass(eq=False)
class PairAttackResult(TaskResult):
    """What :meth:`PairAttack.attack` returns, for every eps of one call.

    Every eps starts from the clean pairs. The leading axis of the per-eps fields runs over
    ``eps``, the next one over the pairs.

    Attributes
    ----------
    eps : ndarray of shape (n_eps,)
        The budgets, in the order given.
    adversarial : ndarray of shape (n_eps, n_pairs, 2, n_features)
        Per pair the first iterate that changed the prediction, else the iterate with the
        best objective (never worse than the clean pair, which is returned when no iterate
        improved on it).
    success : ndarray of bool, shape (n_eps, n_pairs)
        Whether the prediction (similar ``D <= threshold`` or dissimilar) changed.
    distances_before : ndarray of shape (n_pairs,)
        Squared distance ``D`` of each clean pair.
    distances_after : ndarray of shape (n_eps, n_pairs)
        ``D`` of the adversarial pairs.
    thresholds : ndarray of shape (n_pairs,)
        What ``D`` is compared with (``D > thresholds`` is dissimilar): the threshold widened
        by the tie band ``TIE_RTOL * |threshold|`` (a pair within rounding of the threshold is
        a tie, predicted similar in every batch).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import PairAttack
    >>> from skrobust.targets import LinearTarget
    >>> pairs = np.array([[[0.5, 0.5], [0.4, 0.5]]])
    >>> result = PairAttack(LinearTarget(np.eye(2), threshold=0.02)).fit().attack(
    ...     pairs, eps=[0.0, 0.1])
    >>> result.success.tolist(), np.round(result.distances_after, 4).tolist()
    ([[False], [True]], [[0.01], [0.0256]])

    The first iterate that flips is returned: ``z = x_i - x_j`` grows by ``2 * 0.01`` per
    step, so ``D`` goes 0.01, 0.0144, 0.0196, then 0.0256 > 0.02.
    """

    distances_before: np.ndarray
    distances_after: np.ndarray
    thresholds: np.ndarray


@dataclass(eq=False)
class TripletAttackResult(TaskResult):
    """What :meth:`TripletAttack.attack` returns, for every eps of one call.

    Attributes
    ----------
    eps : ndarray of shape (n_eps,)
        The budgets, in the order given.
    adversarial : ndarray of shape (n_eps, n_triplets, 3, n_features)
        The triplets with the adversarial positive (anchor and negative unchanged).
    success : ndarray of bool, shape (n_eps, n_triplets)
        Whether the order of ``D(anchor, positive)`` and ``D(anchor, negative)`` flipped.
    distances_before : ndarray of shape (n_triplets,)
        ``D(anchor, positive)`` of the clean triplets.
    distances_after : ndarray of shape (n_eps, n_triplets)
        ``D(anchor, positive)`` of the adversarial triplets.
    thresholds : ndarray of shape (n_triplets,)
        ``D(anchor, negative)``, which the anchor-positive distance must cross.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import TripletAttack
    >>> from skrobust.targets import LinearTarget
    >>> triplets = np.array([[[0.5, 0.5], [0.45, 0.5], [0.6, 0.5]]])
    >>> result = TripletAttack(LinearTarget(np.eye(2)), eps=0.1).fit().attack(triplets)
    >>> bool(result.success[0, 0]), bool(result.distances_after[0, 0] > result.thresholds[0])
    (True, True)
    """

    distances_before: np.ndarray
    distances_after: np.ndarray
    thresholds: np.ndarray


def _rowdot(A, B):
    return np.einsum("ij,ij->i", A, B)


def _random_differences(X, eps_i, eps_j, lo, hi, rng, out):
    """Random starts of restarts in pair space: ``z = x_i - x_j`` drawn uniformly from the
    interval each coordinate can reach (``d_i`` and ``d_j`` within ``eps_i``, ``eps_j``
    and the box), with the bounds written as the step kernel writes them, so the start
    satisfies the kernel's clip exactly."""
    x_i, x_j = X[:, 0, :], X[:, 1, :]
    u = x_i - x_j
    z_lo = u + np.maximum(-eps_i, lo - x_i) - np.minimum(eps_j, hi - x_j)
    z_hi = u + np.minimum(eps_i, hi - x_i) - np.maximum(-eps_j, lo - x_j)
    np.add(z_lo, rng.random_sample(u.shape) * (z_hi - z_lo), out=out)
    np.clip(out, z_lo, z_hi, out=out)


@dataclass(eq=False)
class _TupleRun:
    """One call's state: the moving two points of each tuple, their thresholds, the outputs
    per eps, and work buffers of one chunk reused by every chunk and eps."""

    X: np.ndarray
    thresholds: np.ndarray
    negatives: np.ndarray | None
    adversarial: np.ndarray
    distances_after: np.ndarray
    rows: int
    buffers: list
    distances_before: np.ndarray | None = None


class _TupleAttack(SignGradientAttack):
    """Pairs and triplets: sign-gradient steps on the difference ``z`` of two points."""

    _triplets = False

    def _resolve(self, X, y):
        target = metric_of(self.estimator_)
        self.target_ = target
        self.n_features_in_ = target.n_features
        self._M, self._lam_max = None, 0.0
        if not target.is_linear:
            return
        W = target.components
        # Z @ M costs n d^2, (Z @ W.T) @ W costs 2 n d k: keep the cheaper.
        self._M = np.ascontiguousarray(W.T @ W) if 2 * W.shape[0] >= W.shape[1] else None
        # Largest eigenvalue of M: the curvature bound of the shared-budget re-split.
        self._lam_max = float(np.linalg.norm(W, 2) ** 2) if self._reshares() and W.size else 0.0

    def _reshares(self):
        """Whether the shared budget is re-split after the fixed split (pairs only)."""
        return False

    def _split(self, eps):
        """``(eps_i, eps_j, step of z)``: the budgets of the two points and the step."""
        return 0.0, eps, self.step_size

    def _gram(self, Z, out=None):
        """``Z @ M`` (half the gradient of D), as one product or two thin ones."""
        if self._M is None:
            W = self.target_.components
            return np.matmul(Z @ W.T, W, out=out)
        return np.matmul(Z, self._M, out=out)

    def _distances(self, Z):
        """``D = z^T M z`` of each row of ``Z``, the same formula the step kernel uses."""
        return _rowdot(Z, self._gram(Z)) if len(Z) else np.zeros(0)

    def _tuple_distances(self, A, B):
        """``D(a_i, b_i)`` of the rows of ``A`` and ``B``, as the attack computes it."""
        if self.target_.is_linear:
            return self._distances(A - B)
        return self.target_.squared_distances(A, B)

    def _begin(self, X, y, eps_values, box):
        n = X.shape[0]
        negatives = None
        if self._triplets:
            thresholds = self._tuple_distances(X[:, 0, :], X[:, 2, :])
            negatives = X[:, 2:, :]
            X = np.ascontiguousarray(X[:, :2, :])
        else:
            # Widened by the tie band: a pair within rounding of the threshold is similar.
            thresholds = np.full(n, decision_threshold(self.threshold_), dtype=np.float64)
            X = np.ascontiguousarray(X)
        rows = min(n, max(1, CHUNK_ELEMENTS // X.shape[2]))
        return _TupleRun(
            X=X,
            thresholds=thresholds,
            negatives=negatives,
            adversarial=np.empty((len(eps_values),) + X.shape),
            distances_after=np.empty((len(eps_values), n)),
            rows=rows,
            buffers=[np.empty((rows, X.shape[2])) for _ in range(3)],
        )

    def _keep_clean(self, run, e):
        run.adversarial[e] = run.X
        run.distances_after[e] = np.nan

    def _attack_eps(self, run, e, eps, box, seed):
        X, thresholds = run.X, run.thresholds
        adversarial, D_after = run.adversarial[e], run.distances_after[e]
        D0 = np.empty(X.shape[0])

        def attempt(r, idx):
            if r == 0:
                D0[idx], D_after[idx] = self._attack_chunk(
                    X[idx], thresholds[idx], eps, adversarial[idx], run.buffers, box
                )
                return (D_after[idx] > thresholds[idx]) != (D0[idx] > thresholds[idx])
            out = np.empty((idx.size,) + X.shape[1:])
            _, D_run = self._attack_chunk(
                X[idx], thresholds[idx], eps, out, run.buffers, box,
                rng=restart_rng(X[idx], seed, e, r),
            )  # fmt: skip
            won = (D_run > thresholds[idx]) != (D0[idx] > thresholds[idx])
            adversarial[idx[won]] = out[won]
            D_after[idx[won]] = D_run[won]
            return won

        first_success(X.shape[0], self.n_restarts + 1, run.rows, attempt)
        if run.distances_before is None:
            run.distances_before = D0

    def _finish(self, run, eps_values):
        X, thresholds = run.X, run.thresholds
        adversarial, D_after, D_before = run.adversarial, run.distances_after, run.distances_before
        if D_before is None:
            D_before = self._tuple_distances(X[:, 0, :], X[:, 1, :])
        unchanged = np.isnan(D_after)
        D_after[unchanged] = np.broadcast_to(D_before, D_after.shape)[unchanged]
        before = D_before > thresholds
        # Never worse than the clean input (the returned pair is the clean one then).
        worse = np.where(before, D_after > D_before, D_after < D_before)
        adversarial[worse] = np.broadcast_to(X, adversarial.shape)[worse]
        D_after[worse] = np.broadcast_to(D_before, D_after.shape)[worse]
        success = (D_after > thresholds) != before
        result = TripletAttackResult if self._triplets else PairAttackResult
        if self._triplets:
            shape = adversarial[:, :, :1].shape
            adversarial = np.concatenate(
                [adversarial, np.broadcast_to(run.negatives, shape)], axis=2
            )
        return result(
            eps=eps_values,
            adversarial=adversarial,
            success=success,
            distances_before=D_before,
            distances_after=D_after,
            thresholds=thresholds,
        )

    def _attack_chunk(self, X, thresholds, eps, out, buffers, box, rng=None):
        """Attack one chunk of pairs (or (anchor, positive) of triplets).

        Writes the adversarial pairs to ``out``; returns ``D`` of the clean pairs and ``D``
        of the returned ones (``z^T M z`` of ``z = x_i - x_j``, the formula of the step
        kernel). ``buffers`` are three work arrays with at least as many rows as ``X``.
        With ``rng``, a restart: the clean pairs are only evaluated (their prediction sets
        the direction, and they stay the fallback), and the steps start from a random point.
        """
        if not self.target_.is_linear:
            moving = (False, True) if self._triplets else (True, True)
            shared = not self._triplets and self.budget == "shared"
            D_clean, D_best, out[...] = attack_pairs(
                self.target_, X, thresholds, eps, shared, moving, self.step_size,
                self.max_iter, box, rng,
            )  # fmt: skip
            return D_clean, D_best
        lo, hi = box if box is not None else (-np.inf, np.inf)
        eps_i, eps_j, step = self._split(eps)
        budget = np.array([eps_i, eps_j, lo, hi])
        n = X.shape[0]
        Z, Z_best, G = (buffer[:n] for buffer in buffers)
        np.subtract(X[:, 0, :], X[:, 1, :], out=Z)
        state = np.zeros((n, 5))
        n_threads = self._n_threads()
        first = 0
        if rng is not None:
            self._gram(Z, out=G)
            run_parallel(
                _kernels.pair_step, Z, G, X, budget, thresholds, state, 0.0, Z_best, 0,
                n_threads=n_threads,
            )  # fmt: skip
            D_clean = state[:, 2].copy()
            _random_differences(X, eps_i, eps_j, lo, hi, rng, out=Z)
            first = 1
        last = self.max_iter + first
        for it in range(first, last + 1):
            self._gram(Z, out=G)
            run_parallel(
                _kernels.pair_step, Z, G, X, budget, thresholds, state,
                0.0 if it == last else step, Z_best, it, n_threads=n_threads,
            )  # fmt: skip
            if it == 0:
                D_clean = state[:, 2].copy()
            if np.all(state[:, 3]):
                break
        D_best = state[:, 0] * state[:, 1]
        split = np.empty((n, 2))
        split[:, 0], split[:, 1] = eps_i, eps_j
        if self._reshares() and box is not None:
            # The gradient of the last evaluation is the one at Z_best where that was last.
            stale = (state[:, 4] != last) & (state[:, 3] == 0)
            if stale.any():
                G[stale] = self._gram(Z_best[stale])
            self._reshare(X, Z_best, G, state, split, eps, lo, hi)
            moved = state[:, 3] == 0
            D_best[moved] = self._distances(Z_best[moved])
        _kernels.split_pairs(X, Z_best, split, lo, hi, out)
        return D_clean, D_best

    def _reshare(self, X, Z_best, G, state, split, eps, lo, hi):
        """One Frank-Wolfe step over the whole shared budget, from the best iterate of the
        ``eps/2 + eps/2`` split, for the pairs not yet successful.

        The vertex maximises the linear gain over every split of the budget exactly. ``D``
        is convex in ``v = d_i - d_j``, so the vertex never lowers ``D`` of a pair pushed
        apart (step 1). A pair pulled together takes the step ``t`` minimising the upper
        bound ``D + 2 t g.delta + t^2 lam_max ||delta||^2``, which never raises ``D``.
        """
        todo = state[:, 3] == 0
        if not todo.any():
            return
        every = bool(todo.all())
        Zb, g, Xs = (Z_best, G, X) if every else (Z_best[todo], G[todo], X[todo])
        directions = state[todo, 0]
        delta = np.empty_like(Zb)
        a = np.empty(len(Zb))
        _kernels.shared_vertex(g, Xs, Zb, directions, eps, lo, hi, delta, a)
        t = np.ones(len(Zb))
        pull = directions < 0
        if pull.any():
            lin = _rowdot(delta[pull], g[pull])
            quad = self._lam_max * _rowdot(delta[pull], delta[pull])
            with np.errstate(divide="ignore", invalid="ignore"):
                t[pull] = np.where(quad > 0, np.clip(-lin / quad, 0.0, 1.0), 0.0)
        delta *= t[:, None]
        Zb += delta
        if not every:
            Z_best[todo] = Zb
        # v_t lies in the box of the interpolated split (the bounds are concave in a).
        share = (1.0 - t) * (eps / 2.0) + t * a
        split[todo, 0] = share
        split[todo, 1] = eps - share

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


class PairAttack(_TupleAttack):
    """The AckMetric attack on pairs (Huai et al. 2022, eq. 4-9 and 22).

    Input ``(n_pairs, 2, n_features)``. Pairs predicted similar (``D <= threshold``, ``D``
    the **squared** distance) are pushed apart (eq. 4), pairs predicted dissimilar pulled
    together (eq. 22), by projected sign-gradient steps. For a linear metric the gradients
    of the two points tie (eq. 7), so both points move each step (eq. 8-9). Each returned
    pair is the first iterate that changed the prediction, else the one with the best
    objective, and never worse than the clean pair; every output lies in the box and within
    its budget exactly (up to float rounding), whatever ``step_size`` and ``max_iter`` are.
    The accuracy it leaves is an upper bound on the true robust accuracy. On a nonlinear
    metric (a ReLU network, a wrapped model) each step moves the point chosen by eq. (6),
    with the gradients of eq. (10)-(11) from the target's VJP (see
    ``skrobust._network_attack``).

    Parameters
    ----------
    estimator : estimator or MetricTarget
        The attacked model: anything :func:`skrobust.targets.as_target` reads (a skrobust
        learner or pair classifier, a metric-learn Mahalanobis learner, scikit-learn's
        ``NeighborhoodComponentsAnalysis``, :class:`skrobust.testing.FixedMetric`, a
        :class:`~skrobust.targets.LinearTarget` given by its matrix, a ``Pipeline`` of affine
        scalers and one of these), or a kNN pipeline (its metric is attacked). A fitted
        model is used as it is, but ``clone`` (and so ``GridSearchCV``) unfits it: wrap it in
        :class:`sklearn.frozen.FrozenEstimator` to keep it fitted. An unfitted model is
        fitted, as a clone, by :meth:`fit`.
    eps : float or array-like of float, default=0.1
        The budget (L-infinity). A list is allowed by :meth:`attack` (one result per eps);
        :meth:`transform` needs a single value.
    step_size : float, default=0.01
        Size of each sign step of a moving point (the paper's ``xi``).
    max_iter : int, default=20
        Number of sign steps.
    budget : {"shared", "per_point"}, default="shared"
        ``"shared"`` is eq. (4): ``||d_i||_inf + ||d_j||_inf <= eps``; ``"per_point"``
        bounds each point's perturbation by ``eps``. The shared budget first runs eq.
        (8)-(9) with the split ``eps/2 + eps/2``, then re-splits it for the pairs not yet
        flipped: one Frank-Wolfe step toward the vertex of the whole shared-budget set (over
        every split ``a + (eps - a)``, the best ``a`` found exactly) that best follows the
        gradient. It is never weaker than the fixed split.
    threshold : float or None, default=None
        The threshold on the squared distance ``D``. ``None`` uses the model's own (a
        skrobust learner's ``gamma``, a metric-learn pair learner's ``threshold_`` squared);
        a model without one needs it given, for instance from
        :func:`skrobust.calibrate_threshold`.
    feature_range : tuple (lo, hi) or None, default=(0.0, 1.0)
        The box the inputs lie in and the outputs are clipped to. Inputs outside it by more
        than a few ulps raise a ``ValueError``; they are never clipped. ``None``: no box.
    n_restarts : int, default=0
        Extra runs for the pairs the run from the clean pair did not flip, each from a point
        drawn uniformly at random within the budget (for the shared budget, the
        ``eps/2 + eps/2`` split) and the box. A pair takes the output of the first run that
        flips it, else that of the run from the clean pair.
    random_state : int, RandomState instance or None, default=None
        Draws the random starts of ``n_restarts``, per pair from this seed and the pair's
        own values (independent of the other pairs of the call); unused without restarts.
    n_jobs : int or None, default=None
        Threads of the numba kernels, scikit-learn's convention (``None`` 1, ``-1`` all of
        numba's threads); matrix products use BLAS's own threads.
    verbose : int, default=0
        Print the success rate of each eps when positive.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model attacked.
    target_ : MetricTarget
        Its metric in the raw input space (a ``LinearTarget`` for a linear model).
    threshold_ : float
        The threshold on ``D`` in use.
    n_features_in_ : int
        Number of features of a point.

    See Also
    --------
    skrobust.AckMetricAttack : the same attack behind one facade for all three tasks.
    skrobust.certificates.certify_pairs : the lower bound to this upper bound.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import PairAttack
    >>> from skrobust.testing import FixedMetric
    >>> from skrobust.datasets import load_wine, make_pairs
    >>> X, y = load_wine()
    >>> pairs, labels, _ = make_pairs(X, y, 40, random_state=0)
    >>> attack = PairAttack(FixedMetric(np.eye(13)), threshold=0.5).fit()
    >>> result = attack.attack(pairs, eps=[0.0, 0.05, 0.2])
    >>> result.adversarial.shape, bool(np.all(np.diff(result.success_rate) >= 0))
    ((3, 40, 2, 13), True)
    """

    _parameter_constraints: dict = {
        **SignGradientAttack._parameter_constraints,
        "budget": [StrOptions({"shared", "per_point"})],
        "threshold": [Interval(numbers.Real, None, None, closed="neither"), None],
    }

    def __init__(
        self,
        estimator,
        eps=0.1,
        step_size=0.01,
        max_iter=20,
        budget="shared",
        threshold=None,
        feature_range=(0.0, 1.0),
        n_restarts=0,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.eps = eps
        self.step_size = step_size
        self.max_iter = max_iter
        self.budget = budget
        self.threshold = threshold
        self.feature_range = feature_range
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _resolve(self, X, y):
        super()._resolve(X, y)
        name = type(unwrap_frozen(self.estimator_)).__name__
        self.threshold_ = resolve_threshold(self.target_, self.threshold, name=name)

    def _reshares(self):
        return self.budget == "shared"

    def _split(self, eps):
        if self.budget == "per_point":
            return eps, eps, 2.0 * self.step_size
        return eps / 2.0, eps / 2.0, 2.0 * self.step_size

    def _check_input(self, X):
        return check_pairs(X, name="X", n_features=self.n_features_in_)


class TripletAttack(_TupleAttack):
    """The AckMetric attack on triplets (Huai et al. 2022, appendix C).

    Input ``(n_triplets, 3, n_features)``: (anchor, positive, negative). The positive moves
    (``||d||_inf <= eps``, inside the box) by sign-gradient steps until the anchor ends
    closer to the negative than to the positive, the order of ``D(anchor, positive)`` and
    ``D(anchor, negative)`` flipped. Each returned triplet is the first iterate that flipped,
    else the one with the best objective, never worse than the clean triplet.

    Parameters
    ----------
    estimator : estimator or MetricTarget
        The attacked model, as for :class:`PairAttack`.
    eps : float or array-like of float, default=0.1
        The budget of the positive (L-infinity).
    step_size : float, default=0.01
        Size of each sign step.
    max_iter : int, default=20
        Number of sign steps.
    feature_range : tuple (lo, hi) or None, default=(0.0, 1.0)
        The box, as for :class:`PairAttack`.
    n_restarts : int, default=0
        Extra runs from random positives within the budget for the triplets not flipped.
    random_state : int, RandomState instance or None, default=None
        Draws the random starts of ``n_restarts``, per triplet from this seed and the
        triplet's own values (independent of the other triplets of the call).
    n_jobs : int or None, default=None
        Threads of the numba kernels, as for :class:`PairAttack`.
    verbose : int, default=0
        Print the success rate of each eps when positive.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model attacked.
    target_ : MetricTarget
        Its metric in the raw input space (a ``LinearTarget`` for a linear model).
    n_features_in_ : int
        Number of features of a point.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import TripletAttack
    >>> from skrobust.targets import LinearTarget
    >>> from skrobust.datasets import load_wine, make_triplets
    >>> X, y = load_wine()
    >>> triplets, _ = make_triplets(X, y, 30, random_state=0)
    >>> result = TripletAttack(LinearTarget(np.eye(13))).fit().attack(triplets, eps=[0.0, 0.1])
    >>> result.adversarial.shape, float(result.success_rate[0])
    ((2, 30, 3, 13), 0.0)
    """

    _triplets = True

    def __init__(
        self,
        estimator,
        eps=0.1,
        step_size=0.01,
        max_iter=20,
        feature_range=(0.0, 1.0),
        n_restarts=0,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.eps = eps
        self.step_size = step_size
        self.max_iter = max_iter
        self.feature_range = feature_range
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check_input(self, X):
        return check_triplets(X, name="X", n_features=self.n_features_in_)
