"""CascadeKNNAttack: a strong attack on a kNN over a metric, as a composition.

Members run in order, each on the points no earlier member flipped; per point the first
adversarial point that flips the classifier's own ``predict`` is kept. Every candidate is
clipped to the feasible box (the L-infinity ball of radius eps intersected with the data
box) before it is confirmed, so every output lies inside budget and box.

What makes targeted moves and linear programs natural here (DESIGN.md, section 3): for a
test point ``x``, an own-class reference ``a`` and a rival ``b`` (both stored embedded,
``e = W x + bias``), the difference of squared distances

    D(x + delta, a) - D(x + delta, b) = D(x, a) - D(x, b) + 2 delta^T W^T (e_b - e_a)

is linear in ``delta``. Its gradient does not depend on ``x``, so a sign-gradient step on a
vote margin moves by ``sign(W^T (e_b - e_a))`` and "these rivals beat those own references"
is a linear feasibility problem.

On a nonlinear metric (a ReLU network) the difference is not linear: the members built on
that (the targeted line search, the LPs) step aside, and the gradient members take the
margin's gradient ``2 J_f(x)^T (e_b - e_a)`` from the target's VJP.
"""

import itertools
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _knn_attack_kernels
from ._attack import AckMetricAttack, AttackResult
from ._attack_core import resolve_estimator
from ._mahalanobis import mahalanobis_metric
from ._row_random import RowRandomState
from ._target import as_knn_target, is_knn_model, unwrap_frozen
from ._threads import single_threaded
from ._validation import check_eps, check_feature_range, check_in_box

__all__ = [
    "CascadeKNNAttack",
    "CascadeResult",
    "Eq23",
    "KNNAttackMember",
    "KNNProblem",
    "MarginPGD",
    "MaxMarginLP",
    "TargetedLineSearch",
]

# Rows of a chunk of distance computations times the references stay near this many doubles.
_CHUNK_ELEMENTS = 1 << 21
# Constraints an LP of MaxMarginLP starts with, and adds per round of constraint generation.
_LP_BLOCK = 24


@dataclass(eq=False)
class CascadeResult(AttackResult):
    """:class:`~skrobust.AttackResult` of a kNN attack, with which member flipped each point.

    Attributes
    ----------
    found_by : ndarray of int, shape (n_eps, n_samples)
        Index (in ``members``) of the member whose candidate flipped the point, ``-1`` when
        none did (the point is returned clean).

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust import CascadeKNNAttack
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> result = CascadeKNNAttack(FrozenEstimator(knn), random_state=0).fit().attack(
    ...     [[0.1], [0.45]], [0, 0], eps=0.1)
    >>> result.success.tolist(), result.found_by.tolist()
    ([[False, True]], [[-1, 0]])
    """

    found_by: np.ndarray | None = None


@dataclass(eq=False)
class KNNProblem:
    """The attacked kNN classifier as members see it: all in the embedding ``e = f(x)``
    (``W x + b`` for a linear metric).

    Attributes
    ----------
    estimator : estimator
        The attacked pipeline (frozen), for members that call other attacks on it.
    components : ndarray of shape (n_components, n_features) or None
        ``W`` in the raw input space (affine scalers composed in); ``None`` for a nonlinear
        metric.
    bias : ndarray of shape (n_components,) or None
        ``b`` of the embedding (from the affine scalers composed in); ``None`` for a
        nonlinear metric.
    references : ndarray of shape (n_references, n_components)
        The classifier's stored references, already embedded.
    reference_labels : ndarray of int, shape (n_references,)
        Index of each reference's class in the classifier's ``classes_``.
    n_classes : int
        Number of classes of the classifier.
    n_neighbors : int
        ``k`` of the classifier's vote.
    eps : float
        The budget of this run.
    feature_range : tuple or None
        The data box.
    target : MetricTarget
        The metric: its ``embed`` and ``vjp`` serve members on any target.

    Examples
    --------
    The cascade builds one per budget and hands it to each member's ``perturb``; a member
    reads distances and vote margins from it:

    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust import CascadeKNNAttack, KNNAttackMember
    >>> seen = []
    >>> class Spy(KNNAttackMember):
    ...     def perturb(self, problem, X, y_idx, lower, upper, run, rng):
    ...         seen.append(problem)
    ...         return X
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> attack = CascadeKNNAttack(FrozenEstimator(knn), members=[("spy", Spy())]).fit()
    >>> _ = attack.attack([[0.45]], [0], eps=0.1)
    >>> problem = seen[0]
    >>> problem.n_neighbors, problem.references.tolist(), problem.eps
    (1, [[0.0], [1.0]], 0.1)
    >>> flipped, margin = problem.vote_margin(np.array([[0.45], [0.55]]), np.array([0, 0]))
    >>> flipped.tolist(), margin.round(6).tolist()
    ([False, True], [-0.1, 0.1])
    """

    estimator: object
    components: np.ndarray
    bias: np.ndarray
    references: np.ndarray
    reference_labels: np.ndarray
    n_classes: int
    n_neighbors: int
    eps: float
    feature_range: tuple | None
    target: object = None

    def __post_init__(self):
        self._sq_ref = np.einsum("ij,ij->i", self.references, self.references)

    @property
    def n_rivals_needed(self):
        """``j = k // 2 + 1``: rivals among the k nearest that outvote the own class."""
        return self.n_neighbors // 2 + 1

    def embed(self, X):
        """The embedding ``W x + b`` of raw points ``X``.

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
            Points in the raw input space.

        Returns
        -------
        E : ndarray of shape (n, n_components)
            Their embeddings, comparable with the stored ``references``.
        """
        if self.components is None:
            return self.target.embed(X)
        return X @ self.components.T + self.bias

    def input_gradient(self, X, G):
        """Pull gradients in the embedding back to the input: ``J_f(x_i)^T G_i`` per row.

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
            Points in the raw input space.
        G : ndarray of shape (n, n_components)
            Gradients with respect to their embeddings.

        Returns
        -------
        V : ndarray of shape (n, n_features)
            ``G W`` for a linear metric, the target's VJP otherwise.
        """
        if self.components is None:
            return self.target.vjp(X, G)
        return G @ self.components

    def squared_distances(self, E):
        """Squared distances ``D`` from embedded points to every reference.

        Parameters
        ----------
        E : ndarray of shape (n, n_components)
            Embedded points (see :meth:`embed`).

        Returns
        -------
        dist : ndarray of shape (n, n_references)
            ``||E_i - e_j||^2``, clipped at 0 against rounding.
        """
        dist = E @ self.references.T
        dist *= -2.0
        dist += np.einsum("ij,ij->i", E, E)[:, None]
        dist += self._sq_ref[None, :]
        return np.maximum(dist, 0.0, out=dist)

    def vote_margin(self, X, y_idx):
        """Vote and margin of each point of ``X`` against its label index ``y_idx``.

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
            Points in the raw input space.
        y_idx : ndarray of int, shape (n,)
            Index of each point's label in the classifier's classes.

        Returns
        -------
        flipped : ndarray of bool, shape (n,)
            Whether the majority vote over the k nearest (ties to the smallest class index,
            as scikit-learn) differs from ``y_idx``.
        margin : ndarray of shape (n,)
            ``D_own^(k-j+1) - D_rival^(j)`` (order statistics of the squared distances to
            own-class and to all other references, ``j`` = :attr:`n_rivals_needed`),
            positive when ``j`` rivals are among the k nearest.
        """
        n = len(X)
        flipped = np.empty(n, dtype=bool)
        margin = np.empty(n)
        rows = max(1, _CHUNK_ELEMENTS // max(1, len(self.references)))
        for start in range(0, n, rows):
            sl = slice(start, min(n, start + rows))
            dist = self.squared_distances(self.embed(X[sl]))
            flipped[sl], margin[sl] = self.vote_margin_of_distances(dist, y_idx[sl])
        return flipped, margin

    def vote_margin_of_distances(self, dist, y_idx, references=False):
        """:meth:`vote_margin` from squared distances already computed.

        Parameters
        ----------
        dist : ndarray of shape (n, n_references)
            Squared distances (see :meth:`squared_distances`).
        y_idx : ndarray of int, shape (n,)
            Index of each point's label in the classifier's classes.
        references : bool, default=False
            Also return the references at the margin's ranks.

        Returns
        -------
        flipped, margin : ndarray of shape (n,)
            As :meth:`vote_margin`.
        own_ref, rival_ref : ndarray of int, shape (n,)
            Only with ``references``: the own reference at rank ``k - j + 1`` and the rival
            at rank ``j`` (``-1`` where there is none); the margin's gradient is
            ``2 W^T (e_rival - e_own)``.
        """
        n = len(dist)
        flipped = np.empty(n, dtype=np.bool_)
        margin = np.empty(n)
        own_ref = np.empty(n, dtype=np.int64)
        rival_ref = np.empty(n, dtype=np.int64)
        _knn_attack_kernels.vote_margin(
            np.ascontiguousarray(dist), self.reference_labels, np.ascontiguousarray(y_idx),
            min(self.n_neighbors, dist.shape[1]), self.n_classes, flipped, margin, own_ref,
            rival_ref,
        )  # fmt: skip
        if references:
            return flipped, margin, own_ref, rival_ref
        return flipped, margin

    def rival_order(self, dist, y_idx):
        """References sorted by distance per point, and which of them are of its class.

        Parameters
        ----------
        dist : ndarray of shape (n, n_references)
            Squared distances (see :meth:`squared_distances`).
        y_idx : ndarray of int, shape (n,)
            Index of each point's label in the classifier's classes.

        Returns
        -------
        order : ndarray of int, shape (n, n_references)
            Reference indices, nearest first (a stable sort: ties by index).
        own : ndarray of bool, shape (n, n_references)
            Whether ``order[i, r]`` is of point ``i``'s class.
        """
        order = np.argsort(dist, axis=1, kind="stable")
        own = self.reference_labels[order] == y_idx[:, None]
        return order, own


class KNNAttackMember(BaseEstimator):
    """Base class of a member of :class:`CascadeKNNAttack`.

    A member proposes, for clean points the earlier members did not flip, one candidate
    each; the cascade clips candidates to the feasible box and confirms them with the
    classifier's own ``predict``, so a member needs to be neither exact nor careful about the
    box. A member with randomness reports ``n_runs > 1``: the cascade calls it once per run
    (``run = 0`` first), each time on the points still unflipped, with its own random
    generator, so random restarts are runs of the same composition.

    Subclasses implement :meth:`perturb` and keep scikit-learn's parameter conventions
    (``__init__`` stores parameters only), so ``clone`` works on the cascade. A member that
    needs the matrix ``W`` of a linear metric sets the class attribute ``linear_only =
    True``; one that uses only :meth:`KNNProblem.embed` and
    :meth:`KNNProblem.input_gradient` runs on networks too.

    Examples
    --------
    A member of your own, here random corners of the feasible box with two restarts, added
    after the default members (a member can only add flips):

    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust import (CascadeKNNAttack, Eq23, KNNAttackMember, MarginPGD,
    ...                       MaxMarginLP, TargetedLineSearch)
    >>> class RandomCorners(KNNAttackMember):
    ...     def __init__(self, n_restarts=2):
    ...         self.n_restarts = n_restarts
    ...     @property
    ...     def n_runs(self):
    ...         return 1 + self.n_restarts
    ...     def perturb(self, problem, X, y_idx, lower, upper, run, rng):
    ...         return np.where(rng.random_sample(X.shape) < 0.5, lower, upper)
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> members = [("eq23", Eq23()), ("targeted", TargetedLineSearch()), ("pgd", MarginPGD()),
    ...            ("lp", MaxMarginLP()), ("corners", RandomCorners())]
    >>> attack = CascadeKNNAttack(FrozenEstimator(knn), members=members, random_state=0)
    >>> attack.fit().attack([[0.1], [0.45]], [0, 0], eps=0.1).success.tolist()
    [[False, True]]
    """

    #: Whether the member needs a linear metric (its ``W``); the cascade does not run such
    #: members on a nonlinear target and lists them in ``stepped_aside_``.
    linear_only = False

    @property
    def n_runs(self):
        """How many times the cascade runs the member (1; more for random restarts)."""
        return 1

    def perturb(self, problem, X, y_idx, lower, upper, run, rng):
        """Candidates for the points ``X``.

        Parameters
        ----------
        problem : KNNProblem
            The attacked classifier.
        X : ndarray of shape (n, n_features)
            Clean points (not modified by the member).
        y_idx : ndarray of int, shape (n,)
            Index of each point's label in the classifier's classes.
        lower, upper : ndarray of shape (n, n_features)
            The feasible box of each point, in the coordinates of ``X`` (not of the
            perturbation): the ball of ``eps`` around it intersected with the data box.
        run : int
            Which run of this member (0 first; ``run > 0`` are random restarts).
        rng : numpy.random.RandomState
            The member's random generator for this run. ``rng.random_sample(size)`` with
            ``size[0] == len(X)`` draws per point: row ``i`` depends only on the seed, the
            run and ``X[i]`` itself, so a point gets the same draws whichever other points
            share the call (chunks, dask blocks). Other methods draw from a generator
            seeded per run.

        Returns
        -------
        candidates : ndarray of shape (n, n_features)
        """
        raise NotImplementedError


class Eq23(KNNAttackMember):
    """The paper's kNN attack (eq. 23), as run by :class:`~skrobust.AckMetricAttack`.

    Parameters
    ----------
    step_size : float, default=0.01
        Size of each sign step (the paper's ``xi``).
    max_iter : int, default=20
        Number of sign steps.
    n_neighbors : int, default=10
        How many nearest references enter eq. (23) at each iteration (the paper's M).
    n_jobs : int or None, default=None
        Threads of the numba kernels, as in :class:`~skrobust.AckMetricAttack`.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust import CascadeKNNAttack, Eq23
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> attack = CascadeKNNAttack(FrozenEstimator(knn), members=[("eq23", Eq23())]).fit()
    >>> attack.attack([[0.1], [0.45]], [0, 0], eps=0.1).success.tolist()
    [[False, True]]
    """

    def __init__(self, step_size=0.01, max_iter=20, n_neighbors=10, n_jobs=None):
        self.step_size = step_size
        self.max_iter = max_iter
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs

    def perturb(self, problem, X, y_idx, lower, upper, run, rng):
        attack = AckMetricAttack(
            problem.estimator, eps=problem.eps, step_size=self.step_size,
            max_iter=self.max_iter, mode="knn", n_neighbors=self.n_neighbors,
            feature_range=problem.feature_range, n_jobs=self.n_jobs,
        ).fit()  # fmt: skip
        # Labels as class indices pass through eq. (23) as they are: classes_[y_idx].
        classes = unwrap_frozen(attack.classifier_).classes_
        return attack.attack(X, classes[y_idx]).adversarial[0]


def _box_least_squares(problem, T, lower, upper, x0, n_iter):
    """``argmin ||W x + bias - t||^2`` over ``lower <= x <= upper``, per row (FISTA).

    Approximate after ``n_iter`` accelerated projected-gradient steps from ``x0``; any
    point of the box is a valid candidate, so the attack needs no exact solution.
    """
    W = problem.components
    lam = float(np.linalg.norm(W, 2) ** 2) if W.size else 0.0
    if lam == 0.0:
        return x0
    target = T - problem.bias
    x = x0.copy()
    z = x0.copy()
    t = 1.0
    for _ in range(n_iter):
        grad = (z @ W.T - target) @ W
        x_new = np.clip(z - grad / lam, lower, upper)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        z = x_new + ((t - 1.0) / t_new) * (x_new - x)
        np.clip(z, lower, upper, out=z)
        x, t = x_new, t_new
    return x


class TargetedLineSearch(KNNAttackMember):
    """Move toward rival references and combinations of them, checking the vote on the way.

    Targets in the embedding: each of the ``n_rivals`` nearest references of another class,
    the midpoints of every pair of the ``n_pairs`` nearest, and the centroid of the ``j``
    nearest (``j = k // 2 + 1``, the rivals a flip needs). For each target the metric-nearest
    feasible point (a small bounded least-squares problem; the references are embedded by
    ``W``, so a clip of ``x`` would not do) is found, and the vote is checked at
    ``n_steps`` evenly spaced points of the segment from ``x`` to it. Per point the
    candidate with the largest vote margin is returned.

    Linear metrics only (``linear_only``): the metric-nearest point is a convex problem in
    ``W``; on a network the cascade lets it step aside (the gradient members run there).

    Parameters
    ----------
    n_rivals : int, default=8
        How many nearest references of other classes are targets.
    n_pairs : int, default=5
        The midpoints of every pair of this many nearest rivals are targets too.
    n_steps : int, default=4
        Points of each segment at which the vote is checked (the end included).
    lsq_iter : int, default=30
        Accelerated projected-gradient steps of each least-squares problem.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust import CascadeKNNAttack, TargetedLineSearch
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> members = [("targeted", TargetedLineSearch(n_rivals=1))]
    >>> attack = CascadeKNNAttack(FrozenEstimator(knn), members=members).fit()
    >>> attack.attack([[0.1], [0.45]], [0, 0], eps=0.1).success.tolist()
    [[False, True]]
    """

    # Its targets are reached through the metric-nearest feasible point, a least-squares
    # problem in W: a network has no W, and its nearest point is not a convex problem.
    linear_only = True

    def __init__(self, n_rivals=8, n_pairs=5, n_steps=4, lsq_iter=30):
        self.n_rivals = n_rivals
        self.n_pairs = n_pairs
        self.n_steps = n_steps
        self.lsq_iter = lsq_iter

    def perturb(self, problem, X, y_idx, lower, upper, run, rng):
        n, d = X.shape
        E = problem.embed(X)
        order, own = problem.rival_order(problem.squared_distances(E), y_idx)
        n_riv = min(self.n_rivals, int((~own).sum(axis=1).min()) if len(X) else 0)
        if n_riv == 0:
            return X.copy()
        # The nearest rivals of each point, as indices of references.
        rivals = np.stack([row[~o][:n_riv] for row, o in zip(order, own, strict=True)])
        R = problem.references[rivals]  # (n, n_riv, m)
        targets = [R[:, i] for i in range(n_riv)]
        n_pair = min(self.n_pairs, n_riv)
        targets += [0.5 * (R[:, a] + R[:, b]) for a, b in itertools.combinations(range(n_pair), 2)]
        j = min(problem.n_rivals_needed, n_riv)
        if j > 1:
            targets.append(R[:, :j].mean(axis=1))
        n_t = len(targets)
        T = np.stack(targets, axis=1).reshape(n * n_t, -1)
        rep = np.repeat(np.arange(n), n_t)
        ends = _box_least_squares(problem, T, lower[rep], upper[rep], X[rep], self.lsq_iter)
        best = X.copy()
        best_margin = np.full(n, -np.inf)
        for s in range(1, self.n_steps + 1):
            C = X[rep] + (s / self.n_steps) * (ends - X[rep])
            flipped, margin = problem.vote_margin(C, y_idx[rep])
            # A flipped vote ranks above any margin.
            score = np.where(flipped, np.inf, margin).reshape(n, n_t)
            pick = np.argmax(score, axis=1)
            got = score[np.arange(n), pick]
            take = got > best_margin
            best[take] = C.reshape(n, n_t, d)[take, pick[take]]
            best_margin[take] = got[take]
        return best


class MarginPGD(KNNAttackMember):
    """Sign-gradient ascent on the real vote margin, with random restarts.

    The margin ``D_own^(k-j+1) - D_rival^(j)`` (order statistics of squared distances,
    ``j = k // 2 + 1``) is positive when ``j`` rivals are among the k nearest. Its gradient is
    ``2 J_f(x)^T (e_b - e_a)`` for the references ``a``, ``b`` at those ranks
    (``2 W^T (e_b - e_a)`` for a linear metric: linear pieces), so each step is the sign of
    that times the step size, which decays geometrically from ``eps * step_start`` to
    ``eps * step_end``; on a network the gradient comes from the target's VJP. Run 0 starts
    from the clean point; each of ``n_restarts`` more runs starts from a uniform random point
    of the feasible box. The first iterate whose vote flips is returned, else the one with
    the largest margin.

    Parameters
    ----------
    max_iter : int, default=50
        Sign steps per run.
    step_start : float, default=0.25
        First step, as a fraction of ``eps``.
    step_end : float, default=0.01
        Last step, as a fraction of ``eps``.
    n_restarts : int, default=2
        Runs from random points of the feasible box, after the run from the clean point.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust import CascadeKNNAttack, MarginPGD
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> members = [("pgd", MarginPGD(n_restarts=0))]
    >>> attack = CascadeKNNAttack(FrozenEstimator(knn), members=members, random_state=0)
    >>> attack.fit().attack([[0.1], [0.45]], [0, 0], eps=0.1).success.tolist()
    [[False, True]]
    """

    def __init__(self, max_iter=50, step_start=0.25, step_end=0.01, n_restarts=2):
        self.max_iter = max_iter
        self.step_start = step_start
        self.step_end = step_end
        self.n_restarts = n_restarts

    @property
    def n_runs(self):
        """``1 + n_restarts``: the run from the clean point, then the random restarts."""
        return 1 + self.n_restarts

    def perturb(self, problem, X, y_idx, lower, upper, run, rng):
        n = len(X)
        x = X.copy() if run == 0 else lower + rng.random_sample(X.shape) * (upper - lower)
        best = x.copy()
        best_margin = np.full(n, -np.inf)
        active = np.arange(n)
        steps = problem.eps * np.geomspace(self.step_start, self.step_end, max(1, self.max_iter))
        for it in range(self.max_iter + 1):
            xa = x[active]
            dist = problem.squared_distances(problem.embed(xa))
            flipped, margin, a, b = problem.vote_margin_of_distances(
                dist, y_idx[active], references=True
            )
            better = flipped | (margin > best_margin[active])
            best[active[better]] = xa[better]
            best_margin[active[better]] = np.where(flipped, np.inf, margin)[better]
            keep = ~flipped & (a >= 0) & (b >= 0)
            active, xa, a, b = active[keep], xa[keep], a[keep], b[keep]
            if it == self.max_iter or not active.size:
                break
            g = problem.input_gradient(xa, problem.references[b] - problem.references[a])
            x[active] = np.clip(xa + steps[it] * np.sign(g), lower[active], upper[active])
        return best


class MaxMarginLP(KNNAttackMember):
    """Linear programs: chosen rivals beat all own references but those allowed ahead.

    For a rival set ``R`` (``j = k // 2 + 1`` references of other classes) and own
    references ``A`` allowed ahead (at most ``k - j``), the LP maximises ``t`` subject to
    ``D(x', a) - D(x', b) >= t`` for every ``b`` in ``R`` and own ``a`` not in ``A``, over the
    feasible box; each constraint is linear in ``delta = x' - x``. ``t > 0`` puts the ``j``
    rivals among the k nearest. Rivals are pruned first: ``b`` is dropped when more than
    ``k - j`` own references stay closer than ``b`` over the whole box (the exact, separable
    minimum of the linear difference), so a point the pairwise argument certifies costs no
    LP. Rival sets are tried in order of their pruning bound; the own references first
    allowed ahead are those the rivals find hardest to pass (largest minimum difference over
    the box); when an LP fails, the own reference of the most negative slack takes the place
    of one of them and the LP is solved again. At most ``max_lps`` LPs per point (HiGHS
    through :func:`scipy.optimize.linprog`).

    Linear metrics only (``linear_only``): only there is a vote margin linear in
    ``delta``; on a network the cascade lets it step aside (the gradient members run there).

    Parameters
    ----------
    max_lps : int, default=5
        Most LPs solved per point.
    n_candidates : int, default=12
        Nearest rivals considered per point.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skrobust import CascadeKNNAttack, MaxMarginLP
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> attack = CascadeKNNAttack(FrozenEstimator(knn), members=[("lp", MaxMarginLP())]).fit()
    >>> attack.attack([[0.1], [0.45]], [0, 0], eps=0.1).success.tolist()
    [[False, True]]
    """

    # The vote margins are linear in the perturbation only for a linear metric; for a
    # network these LPs would not describe the classifier.
    linear_only = True

    def __init__(self, max_lps=5, n_candidates=12):
        self.max_lps = max_lps
        self.n_candidates = n_candidates

    def perturb(self, problem, X, y_idx, lower, upper, run, rng):
        out = X.copy()
        E = problem.embed(X)
        dist = problem.squared_distances(E)
        order, own = problem.rival_order(dist, y_idx)
        # Each point's search is a generator that yields LPs; every round, the pending LP of
        # each point is solved in one block-diagonal LP (its blocks are independent, so its
        # optimum is each block's optimum), which saves HiGHS's per-call cost.
        searches = {}
        for p in range(len(X)):
            own_idx = order[p][own[p]]
            riv_idx = order[p][~own[p]][: self.n_candidates]
            lo, hi = lower[p] - X[p], upper[p] - X[p]
            searches[p] = self._search(problem, dist[p], own_idx, riv_idx, lo, hi)
        for p, delta in _run_lp_searches(searches).items():
            if delta is not None:
                out[p] = X[p] + delta
        return out

    def _search(self, problem, dist, own_idx, riv_idx, lo, hi):
        """One point's search (a generator of LPs); returns a move ``delta`` or ``None``."""
        W = problem.components
        refs = problem.references
        j = problem.n_rivals_needed
        allowed = problem.n_neighbors - j
        if len(riv_idx) < j or len(own_idx) <= allowed:
            return None
        # Exact minimum over the box of D(x', b) - D(x', a), per (b, a) (separable, the
        # difference is linear): positive means a stays ahead of b whatever the move.
        C = (refs[own_idx][None, :, :] - refs[riv_idx][:, None, :]) @ (2.0 * W)
        base = dist[riv_idx][:, None] - dist[own_idx][None, :]
        low = base + np.minimum(C * lo, C * hi).sum(axis=2)
        blocked = (low > 0).sum(axis=1)
        rows = np.flatnonzero(blocked <= allowed)
        if len(rows) < j:
            return None
        score = np.sort(low[rows], axis=1)[:, min(allowed, low.shape[1] - 1)]
        rows = rows[np.argsort(score, kind="stable")][: self.max_lps + j - 1]
        n_lps = 0
        for combo in itertools.combinations(rows, j):
            if n_lps >= self.max_lps:
                break
            R = riv_idx[list(combo)]
            # Allowed ahead first: the own references hardest for these rivals to pass.
            hardest = np.argsort(-low[list(combo)].max(axis=0), kind="stable")
            ahead = list(own_idx[hardest[:allowed]])
            tried = set()
            while n_lps < self.max_lps and tuple(sorted(ahead)) not in tried:
                tried.add(tuple(sorted(ahead)))
                n_lps += 1
                delta, slack_own = yield from self._solve(problem, dist, R, own_idx, ahead, lo, hi)
                if delta is not None:
                    return delta
                if slack_own is None or not ahead:
                    break
                # Swap the least useful allowance for the reference that blocked the LP.
                ahead = ahead[1:] + [slack_own]
        return None

    @staticmethod
    def _solve(problem, dist, R, own_idx, ahead, lo, hi):
        """One LP (a generator of LP rounds); returns ``(delta, None)`` on success, else
        ``(None, a)`` with ``a`` the own reference of the most negative slack (``None`` when
        the LP failed outright)."""
        W = problem.components
        refs = problem.references
        own = np.array([a for a in own_idx if a not in ahead])
        R = np.asarray(R)
        a_all = np.repeat(own, len(R))
        b_all = np.tile(R, len(own))
        # D(x', a) - D(x', b) = D(x, a) - D(x, b) + 2 delta^T W^T (e_b - e_a) >= t
        G = 2.0 * (refs[b_all] - refs[a_all]) @ W
        base = dist[a_all] - dist[b_all]
        scale = max(float(np.abs(base).max()), 1e-12)
        # Constraints that no point of the box can make binding below the cap are dropped.
        cap = 1e-3 * scale
        low = base + np.minimum(G * lo, G * hi).sum(axis=1)
        live = low < cap
        if not live.any():
            return (lo + hi) / 2.0, None
        G, base, a_live = G[live] / scale, base[live] / scale, a_all[live]
        d = W.shape[1]
        # Constraint generation: an LP over a subset of the constraints is a relaxation, so
        # its failure (t <= 0) proves the full LP's; a success is kept only when every
        # constraint holds at its solution, else the most violated ones join the subset.
        # Most LPs here fail, and fail already on the constraints with the lowest maximum
        # over the box, which start the subset.
        high = base + np.maximum(G * lo, G * hi).sum(axis=1)
        active = np.zeros(len(G), dtype=bool)
        active[np.argsort(high, kind="stable")[:_LP_BLOCK]] = True
        while True:
            x = yield _LPBlock(-G[active], base[active], lo, hi, cap / scale)
            if x is None:
                return None, None
            delta = np.clip(x[:d], lo, hi)
            slack = base + G @ delta
            holds = slack > 1e-9
            if holds.all():
                return delta, None
            violated = np.flatnonzero(~active & ~holds)
            if x[-1] <= 1e-9 or not violated.size:
                return None, int(a_live[np.argmin(np.where(active, slack, np.inf))])
            active[violated[np.argsort(slack[violated], kind="stable")[:_LP_BLOCK]]] = True


@dataclass(frozen=True, eq=False)
class _LPBlock:
    """``max t`` subject to ``A delta + t <= b``, ``lo <= delta <= hi``, ``t <= t_max``."""

    A: np.ndarray
    b: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    t_max: float


def _solve_blocks(blocks):
    """Solve independent :class:`_LPBlock` problems in one block-diagonal LP; returns each
    block's ``(delta, t)`` solution, or ``None`` where HiGHS failed."""
    sizes = [len(block.lo) + 1 for block in blocks]
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    rows, cols, vals, row0 = [], [], [], 0
    for block, off in zip(blocks, offsets, strict=False):
        m, d = block.A.shape
        r, c = np.divmod(np.arange(m * (d + 1)), d + 1)
        rows.append(row0 + r)
        cols.append(off + c)
        vals.append(np.hstack([block.A, np.ones((m, 1))]).ravel())
        row0 += m
    A = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(row0, offsets[-1]),
    ).tocsc()
    b = np.concatenate([block.b for block in blocks])
    lower = np.concatenate([np.append(block.lo, -np.inf) for block in blocks])
    upper = np.concatenate([np.append(block.hi, block.t_max) for block in blocks])
    c = np.zeros(offsets[-1])
    c[offsets[1:] - 1] = -1.0
    res = linprog(c, A_ub=A, b_ub=b, bounds=np.column_stack([lower, upper]), method="highs")
    if res.status == 0:
        return [res.x[a:z] for a, z in zip(offsets[:-1], offsets[1:], strict=True)]
    if len(blocks) == 1:
        return [None]
    # A failure of the whole says nothing of each block: solve them one by one.
    return [_solve_blocks([block])[0] for block in blocks]


def _run_lp_searches(searches):
    """Drive generators of :class:`_LPBlock` to their end, solving each round's pending LPs
    together; returns each generator's return value, by key."""
    results, pending = {}, {}
    for key, search in searches.items():
        try:
            pending[key] = (search, next(search))
        except StopIteration as stop:
            results[key] = stop.value
    while pending:
        solutions = _solve_blocks([block for _, block in pending.values()])
        still = {}
        for (key, (search, _)), x in zip(pending.items(), solutions, strict=True):
            try:
                still[key] = (search, search.send(x))
            except StopIteration as stop:
                results[key] = stop.value
        pending = still
    return results


def default_members():
    """The default composition, cheapest first. The last two members, longer PGD with ten
    restarts and up to 50 LPs over 50 rivals, run only on the points the cheap ones left
    unflipped (mostly points that are robust, or nearly): on held-out folds they broke
    points the cheap members missed, which a robust scorer must not miss."""
    return [
        ("eq23", Eq23()),
        ("targeted", TargetedLineSearch()),
        ("pgd", MarginPGD()),
        ("lp", MaxMarginLP()),
        ("pgd_deep", MarginPGD(max_iter=100, n_restarts=10)),
        ("lp_deep", MaxMarginLP(max_lps=50, n_candidates=50)),
    ]


class CascadeKNNAttack(BaseEstimator):
    """A strong attack on a kNN classifier over a metric: members run in cascade.

    Each member (:class:`Eq23`, :class:`TargetedLineSearch`, :class:`MarginPGD`,
    :class:`MaxMarginLP`, or one of your own, a :class:`KNNAttackMember`) runs in order on
    the points that no earlier member flipped; a member with random restarts runs once per
    restart, each time on the points still unflipped. Every candidate is clipped to the
    feasible box (the L-infinity ball of radius ``eps`` around the clean point, intersected
    with ``feature_range``) and kept only when the classifier's own ``predict`` on it differs
    from its prediction on the clean point, so every reported flip is real and every output
    lies within budget and box. Adding a member never loses a flip. The accuracy it leaves is
    an upper bound on the true robust accuracy.

    Parameters
    ----------
    estimator : estimator
        A ``Pipeline`` (affine scalers, a metric step, ``KNeighborsClassifier``) that is
        fitted (wrap it in :class:`sklearn.frozen.FrozenEstimator` to survive ``clone``), or
        unfitted and fitted by :meth:`fit` as a clone; or a
        :class:`~skrobust.targets.KnnTarget`. The metric may be linear or not (a ReLU
        network, a wrapped model of your own): on a nonlinear one the linear-only members
        (:class:`TargetedLineSearch`, :class:`MaxMarginLP`) step aside and the gradient
        members (:class:`Eq23`, :class:`MarginPGD`) run through the target's VJP.
    eps : float or array-like of float, default=0.1
        Budget(s), L-infinity.
    members : list of (str, KNNAttackMember) or None, default=None
        The composition, run in this order. ``None``: ``eq23`` (the paper's attack),
        ``targeted`` (line search toward rivals), ``pgd`` (margin PGD, two restarts),
        ``lp`` (max-margin LPs, at most 5 per point), then on the points still unflipped
        ``pgd_deep`` (100 steps, ten restarts) and ``lp_deep`` (at most 50 LPs over 50
        rivals).
    feature_range : tuple (lo, hi) or None, default=(0.0, 1.0)
        The box. Inputs outside it raise a ``ValueError``; ``None``: no box.
    random_state : int, RandomState instance or None, default=None
        Seeds the random restarts (each member run draws its own generator from it; a
        point's draws depend on the seed and the point alone, see
        :meth:`KNNAttackMember.perturb`).
    verbose : int, default=0
        Print, per eps, how many points each member flipped.

    Attributes
    ----------
    estimator_ : estimator
    knn_target_ : KnnTarget
    metric_ : MahalanobisMetric or MetricTarget
        The metric in the raw input space (a ``MahalanobisMetric``, a ``LinearTarget``, for
        a linear one).
    classifier_ : KNeighborsClassifier
    members_ : list of (str, KNNAttackMember)
    stepped_aside_ : list of str
        Members that do not run on this target: the linear-only ones (``linear_only``,
        :class:`TargetedLineSearch` and :class:`MaxMarginLP`) on a nonlinear metric.
    n_features_in_ : int

    See Also
    --------
    skrobust.AckMetricAttack : the paper's attack (``mode="knn"`` is eq. 23).
    skrobust.metrics.make_robust_scorer : accuracy under this attack, for ``GridSearchCV``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import CascadeKNNAttack
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0),
    ...                      KNeighborsClassifier(3)).fit(X[::2], y[::2])
    >>> attack = CascadeKNNAttack(FrozenEstimator(pipe), random_state=0).fit()
    >>> result = attack.attack(X[1::2], y[1::2], eps=[0.0, 0.05])
    >>> result.adversarial.shape
    (2, 89, 13)
    >>> bool(np.all(np.abs(result.adversarial[1] - X[1::2]) <= 0.05 + 1e-12))
    True
    >>> bool(np.all(pipe.predict(result.adversarial[1][result.success[1]])
    ...             != pipe.predict(X[1::2][result.success[1]])))
    True
    """

    _parameter_constraints: dict = {
        "estimator": "no_validation",
        "eps": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "members": [list, None],
        "feature_range": [tuple, list, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self, estimator, eps=0.1, members=None, feature_range=(0.0, 1.0), random_state=None,
        verbose=0,
    ):  # fmt: skip
        self.estimator = estimator
        self.eps = eps
        self.members = members
        self.feature_range = feature_range
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X=None, y=None):
        """Resolve the attacked pipeline (fitting a clone of it if it is not fitted).

        Parameters
        ----------
        X, y : array-like, default=None
            Only used to fit an unfitted ``estimator``.

        Returns
        -------
        self : CascadeKNNAttack
        """
        self._box = check_feature_range(self.feature_range)
        check_eps(self.eps)
        self.members_ = _check_members(self.members)
        self.estimator_ = resolve_estimator(self.estimator, X, y, what="pipeline")
        if not is_knn_model(self.estimator_):
            raise TypeError(
                "CascadeKNNAttack needs a Pipeline ending with a KNeighborsClassifier (or a "
                "KnnTarget), got "
                f"{type(unwrap_frozen(self.estimator_)).__name__}."
            )
        self.knn_target_ = as_knn_target(self.estimator_)
        self.classifier_ = self.knn_target_.knn
        target = self.knn_target_.target
        self.metric_ = mahalanobis_metric(target) if target.is_linear else target
        self.n_features_in_ = self.metric_.n_features
        self.stepped_aside_ = [
            name
            for name, member in self.members_
            if member.linear_only and not self.metric_.is_linear
        ]
        if self.verbose and self.stepped_aside_:
            print(
                f"[CascadeKNNAttack] linear-only members step aside on "
                f"{type(self.metric_).__name__}: {', '.join(self.stepped_aside_)}"
            )
        return self

    def transform(self, X):
        """Adversarial versions of ``X`` (attacked against the classifier's own
        predictions) at the single budget ``eps``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Clean points, inside ``feature_range``.

        Returns
        -------
        X_adv : ndarray of shape (n_samples, n_features)
            The adversarial point of each flipped point; the clean point elsewhere.
        """
        check_is_fitted(self)
        eps, scalar = check_eps(self.eps)
        if not scalar:
            raise ValueError("transform needs a single eps; use attack(X, eps=[...]) for several.")
        return self.attack(X, eps=float(eps[0])).adversarial[0]

    def attack(self, X, y=None, eps=None):
        """Attack ``X`` at each budget of ``eps``, each from the clean points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Clean points, inside ``feature_range``.
        y : array-like of shape (n_samples,), default=None
            True labels; only points the classifier gets right are attacked (the others
            are returned clean). ``None``: the classifier's predictions.
        eps : float or array-like of float, default=None
            ``None`` uses ``self.eps``.

        Returns
        -------
        result : CascadeResult
            Adversarial points, success and predictions per budget, and which member
            flipped each point.
        """
        check_is_fitted(self)
        eps_values, _ = check_eps(self.eps if eps is None else eps)
        X = self._validate_X(X)
        # Within a few ulps outside the box, the box widened to hold X.
        box = check_in_box(X, self._box)
        knn, metric = self.classifier_, self.metric_
        pred_before = knn.predict(metric.transform(X))
        if y is None:
            y = pred_before
        else:
            y = column_or_1d(y)
            check_consistent_length(X, y)
        classes = knn.classes_
        # Index of each label among the classes; -1 for a label the classifier never saw.
        pos = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
        y_idx = np.where(classes[pos] == y, pos, -1).astype(np.int64)
        attackable = np.flatnonzero(pred_before == y)
        n_eps = len(eps_values)
        adversarial = np.repeat(X[np.newaxis], n_eps, axis=0)
        pred_after = np.repeat(pred_before[np.newaxis], n_eps, axis=0)
        found_by = np.full((n_eps, len(X)), -1, dtype=np.int64)
        # One base seed; each member run draws from (base, eps index, member index, run), so
        # appending a member leaves the draws of the others unchanged.
        base = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        # Members multiply small matrices and scikit-learn's predict starts OpenMP threads on
        # every call: on small problems one thread of each is faster, above all on a busy
        # machine.
        small = X.size * max(1, len(self.classifier_._fit_X)) < 1e8
        with single_threaded(small, user_api=None):
            self._run_members(X, box, eps_values, base, attackable, y_idx, pred_before,
                              adversarial, pred_after, found_by)  # fmt: skip
        return CascadeResult(
            mode="knn",
            eps=eps_values,
            adversarial=adversarial,
            success=pred_after != pred_before,
            predictions_before=pred_before,
            predictions_after=pred_after,
            found_by=found_by,
        )

    def _run_members(
        self, X, box, eps_values, base, attackable, y_idx, pred_before, adversarial, pred_after,
        found_by,
    ):  # fmt: skip
        """The cascade, per eps: each member run on the points still unflipped; writes the
        confirmed flips into ``adversarial``, ``pred_after`` and ``found_by``."""
        knn, metric = self.classifier_, self.metric_
        for e, eps in enumerate(eps_values):
            if eps == 0.0 or not attackable.size:
                continue
            problem = self._problem(float(eps), box)
            lower, upper = self._feasible_box(X, eps, box)
            todo = attackable
            for m, (name, member) in enumerate(self.members_):
                if name in self.stepped_aside_:
                    continue
                for run in range(member.n_runs):
                    if not todo.size:
                        break
                    X_todo = X[todo]
                    # Per point: its draws do not depend on the points sharing the call.
                    member_rng = RowRandomState(X_todo, [base, e, m, run])
                    cand = member.perturb(
                        problem, X_todo, y_idx[todo], lower[todo], upper[todo], run, member_rng
                    )
                    cand = np.clip(np.asarray(cand, dtype=np.float64), lower[todo], upper[todo])
                    pred = knn.predict(metric.transform(cand))
                    won = pred != pred_before[todo]
                    idx = todo[won]
                    adversarial[e, idx] = cand[won]
                    pred_after[e, idx] = pred[won]
                    found_by[e, idx] = m
                    todo = todo[~won]
                if self.verbose:
                    n_found = int((found_by[e] == m).sum())
                    print(f"[CascadeKNNAttack] eps={eps:g} {name}: {n_found} flipped")

    def _validate_X(self, X):
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _problem(self, eps, box):
        knn_target = self.knn_target_
        linear = self.metric_.is_linear
        return KNNProblem(
            estimator=self.estimator_,
            components=self.metric_.components if linear else None,
            bias=self.metric_.bias if linear else None,
            references=knn_target.references,
            reference_labels=knn_target.reference_labels,
            n_classes=knn_target.n_classes,
            n_neighbors=knn_target.n_neighbors,
            eps=eps,
            feature_range=box,
            target=self.metric_,
        )

    def _feasible_box(self, X, eps, box):
        lower, upper = X - eps, X + eps
        if box is not None:
            np.maximum(lower, box[0], out=lower)
            np.minimum(upper, box[1], out=upper)
        return lower, upper

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = False
        return tags


def _check_members(members):
    if members is None:
        return default_members()
    checked = []
    for item in members:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(
                f"members must be a list of (name, KNNAttackMember) tuples, got {item!r}."
            )
        if not isinstance(item[1], KNNAttackMember):
            raise TypeError(
                f"member {item[0]!r} must be a KNNAttackMember (with a perturb method), got "
                f"{type(item[1]).__name__}."
            )
        checked.append(item)
    if not checked:
        raise ValueError("members must hold at least one member.")
    return checked
