"""AckMetricAttack: the sign-gradient attack of Huai et al. on pairs, kNN and triplets."""

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import _kernels
from ._mahalanobis import (
    MahalanobisMetric,
    decision_threshold,
    mahalanobis_metric,
    unwrap_frozen,
)
from ._network_attack import attack_pairs
from ._target import as_target
from ._validation import (
    check_eps,
    check_feature_range,
    check_in_box,
    check_knn_classifier,
    check_pairs,
    check_triplets,
)

__all__ = ["AckMetricAttack", "AttackResult"]

# Rows of a chunk times its widest array stay near this many doubles (16 MB), so the work
# memory is a few such arrays whatever the number of inputs (the results come on top).
_CHUNK_ELEMENTS = 1 << 21

# The classifier of the kNN mode when the references come from ``fit(X, y)``: the paper's
# m = 3 (table 5). Another k: pass a Pipeline ending with KNeighborsClassifier(k).
_DEFAULT_VOTE_NEIGHBORS = 3


@dataclass(eq=False)
class AttackResult:
    """What :meth:`AckMetricAttack.attack` returns, for every eps of one call.

    Every eps starts from the clean input. The leading axis of the per-eps fields runs
    over ``eps``; the next one over the attacked inputs (pairs, points or triplets).

    Attributes
    ----------
    mode : {"pairs", "knn", "triplets"}
        The attack's mode.
    eps : ndarray of shape (n_eps,)
        The budgets, in the order given.
    adversarial : ndarray of shape ``(n_eps,) + X.shape``
        The adversarial inputs: per input the first iterate that changed the model's
        prediction, else the iterate with the best objective (never worse than the clean
        input, which is returned when no iterate improved on it).
    success : ndarray of bool, shape (n_eps, n_inputs)
        Whether the model's prediction on the adversarial input differs from its
        prediction on the clean input (pairs: similar <-> dissimilar; kNN: the predicted
        class; triplets: which of positive and negative is closer to the anchor).
    distances_before : ndarray of shape (n_inputs,) or None
        Pairs: squared distance ``D`` of each clean pair. Triplets: ``D(anchor, positive)``.
        ``None`` in kNN mode.
    distances_after : ndarray of shape (n_eps, n_inputs) or None
        The same on the adversarial inputs.
    thresholds : ndarray of shape (n_inputs,) or None
        What ``D`` is compared with (``D > thresholds`` is dissimilar): the pair threshold
        widened by the tie band ``TIE_RTOL * |threshold|`` (pairs: a pair within rounding
        of the threshold is a tie, predicted similar in every batch), ``D(anchor, negative)``
        (triplets; the anchor and the negative do not move). ``None`` in kNN mode.
    predictions_before : ndarray of shape (n_inputs,) or None
        kNN mode: the classifier's prediction on the clean points; else ``None``.
    predictions_after : ndarray of shape (n_eps, n_inputs) or None
        kNN mode: its prediction on the adversarial points.

    Examples
    --------
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skrobust import AckMetricAttack, RobustMetricLearner
    >>> from skrobust.datasets import load_wine, make_pairs
    >>> X, y = load_wine()
    >>> model = RobustMetricLearner(max_iter=20, random_state=0).fit(X, y)
    >>> pairs, labels, _ = make_pairs(X, y, 20, random_state=0)
    >>> result = AckMetricAttack(FrozenEstimator(model)).fit().attack(pairs, eps=[0.05, 0.1])
    >>> result.success.shape
    (2, 20)
    """

    mode: str
    eps: np.ndarray
    adversarial: np.ndarray
    success: np.ndarray
    distances_before: np.ndarray | None = None
    distances_after: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    predictions_before: np.ndarray | None = None
    predictions_after: np.ndarray | None = None

    @property
    def success_rate(self):
        """Fraction of inputs whose prediction changed, per eps: shape (n_eps,)."""
        return self.success.mean(axis=1)


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


def _split_pipeline(estimator):
    """``(metric part, kNN classifier or None)`` of a model; the metric part is ``None`` for
    a bare ``KNeighborsClassifier`` (the Euclidean metric, ``W = I``)."""
    inner = unwrap_frozen(estimator)
    if isinstance(inner, KNeighborsClassifier):
        return None, inner
    if isinstance(inner, Pipeline) and isinstance(
        unwrap_frozen(inner.steps[-1][1]), KNeighborsClassifier
    ):
        if len(inner.steps) < 2:
            raise TypeError("The pipeline has a KNeighborsClassifier but no metric step.")
        return inner[:-1], unwrap_frozen(inner.steps[-1][1])
    return inner, None


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


class AckMetricAttack(TransformerMixin, BaseEstimator):
    """The AckMetric attack (Huai et al. 2022) against any fitted Mahalanobis model.

    Projected sign-gradient steps (eq. 5-9) that change the model's prediction:

    - ``mode="pairs"``: input ``(n_pairs, 2, n_features)``. Pairs predicted similar
      (``D <= threshold``, ``D`` the **squared** distance) are pushed apart (eq. 4), pairs
      predicted dissimilar are pulled together (eq. 22). For a linear metric the gradients
      of the two points tie (eq. 7), so both points move each step (eq. 8-9).
    - ``mode="knn"``: input ``(n_samples, n_features)``. Eq. (23) against a kNN classifier
      over the metric: each iteration re-finds the ``n_neighbors`` nearest references of the
      current point, pushes those of the point's label away and pulls the others closer.
    - ``mode="triplets"``: input ``(n_triplets, 3, n_features)`` (anchor, positive,
      negative); the positive moves (``||d||_inf <= eps``) until the order of
      ``D(anchor, positive)`` and ``D(anchor, negative)`` flips (appendix C).

    Each returned input is the first iterate that changed the prediction, else the one
    with the best objective, and never worse than the clean input. Every output lies in the
    box and within its budget exactly (up to float rounding), whatever ``step_size`` and
    ``max_iter`` are.

    Parameters
    ----------
    estimator : estimator
        The attacked model: anything :func:`skrobust.mahalanobis_metric` reads (a skrobust
        learner, a metric-learn Mahalanobis learner, scikit-learn's
        ``NeighborhoodComponentsAnalysis``, a ``Pipeline`` of affine scalers and one of
        these), optionally followed by a ``KNeighborsClassifier`` as last pipeline step (the
        kNN mode then attacks that classifier, using its stored, already embedded
        references); or a plain fitted ``KNeighborsClassifier`` (the Euclidean metric,
        ``W = I``). A fitted model is used as it is, but ``clone`` (and so
        ``GridSearchCV``) unfits it: wrap it in :class:`sklearn.frozen.FrozenEstimator` to
        keep it fitted. An unfitted model is fitted, as a clone, by :meth:`fit`.
    eps : float or array-like of float, default=0.1
        The budget (L-infinity). A list is allowed by :meth:`attack` (one result per eps);
        :meth:`transform` needs a single value.
    step_size : float, default=0.01
        Size of each sign step of a moving point (the paper's ``xi``).
    max_iter : int, default=20
        Number of sign steps.
    mode : {"pairs", "knn", "triplets"}, default="pairs"
    budget : {"shared", "per_point"}, default="shared"
        Pairs mode only. ``"shared"`` is eq. (4): ``||d_i||_inf + ||d_j||_inf <= eps``;
        ``"per_point"`` bounds each point's perturbation by ``eps``. The shared budget first
        runs eq. (8)-(9) with the split ``eps/2 + eps/2``, then re-splits it for the pairs
        not yet flipped: one Frank-Wolfe step toward the vertex of the whole shared-budget
        set (over every split ``a + (eps - a)``, the best ``a`` found exactly) that best
        follows the gradient. ``D`` is convex, so the full step never lowers ``D`` of a
        pair pushed apart; a pair pulled together takes the step minimising an upper bound
        of ``D`` (curvature ``lambda_max(M)``), which never raises it. The shared budget is
        therefore never weaker than the fixed split, and stronger where the box stops one
        point but not the other.
    threshold : float or None, default=None
        Pairs mode: the threshold on the squared distance ``D``. ``None`` uses the model's
        own (a skrobust learner's ``gamma``, a metric-learn pair learner's ``threshold_``
        squared); a model without one needs it given, for instance from
        :func:`skrobust.calibrate_threshold`.
    n_neighbors : int, default=10
        kNN mode: how many nearest references enter eq. (23) at each iteration (the
        paper's M). The attacked classifier's own ``n_neighbors`` decides its vote; with
        references from ``fit(X, y)`` it is a 3-NN (the paper's m = 3).
    feature_range : tuple (lo, hi) or None, default=(0.0, 1.0)
        The box the inputs lie in and the outputs are clipped to. Inputs outside it by more
        than a few ulps (rounding of min-max scaling) raise a ``ValueError``; they are never
        clipped, and within those ulps the attack uses the box widened to hold them.
        ``None``: no box.
    n_restarts : int, default=0
        Extra runs of the attack for the inputs the first run (from the clean input) did not
        flip, each from a point drawn uniformly at random within the budget (for the shared
        budget, the ``eps/2 + eps/2`` split it starts with) and the box, with ``max_iter``
        steps. An input takes the output of the first run that flips it, else that of the
        run from the clean input, so restarts never weaken the attack and every property of
        the output holds as without them.
    random_state : int, RandomState instance or None, default=None
        Draws the random starts of ``n_restarts`` (an int gives the same draws at every
        call). Without restarts the attack is deterministic and this is unused.
    n_jobs : int or None, default=None
        Threads of the numba kernels, scikit-learn's convention: ``None`` 1, ``-1`` all of
        numba's threads, ``-2`` all but one, ...; 0 is invalid. Matrix products use
        the BLAS library's own threads. The kernels hold a lock while they run (numba's
        default threading layer aborts when two threads launch parallel kernels at once),
        so concurrent calls from several threads are safe.
    verbose : int, default=0
        Print the success rate of each eps when positive.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model attacked (``estimator`` itself when it was fitted already).
    metric_ : MahalanobisMetric
        Its linear metric in the raw input space.
    threshold_ : float or None
        Pairs mode: the threshold on ``D`` in use.
    classifier_ : KNeighborsClassifier or None
        kNN mode: the attacked classifier, over embedded points.
    n_features_in_ : int
        Number of features of a point.

    See Also
    --------
    skrobust.metrics.make_robust_scorer : accuracy under this attack, for ``GridSearchCV``.
    skrobust.calibrate_threshold : a threshold for models without one.

    References
    ----------
    M. Huai, T. Zheng, C. Miao, L. Yao, A. Zhang. "On the Robustness of Metric Learning: An
    Adversarial Perspective". ACM TKDD 16(5), 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from skrobust import AckMetricAttack
    >>> from skrobust.datasets import load_wine, make_pairs
    >>> X, y = load_wine()
    >>> nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)
    >>> pairs, labels, _ = make_pairs(X, y, 40, random_state=0)
    >>> attack = AckMetricAttack(FrozenEstimator(nca), threshold=1.0).fit()
    >>> result = attack.attack(pairs, eps=[0.0, 0.05, 0.2])
    >>> result.adversarial.shape
    (3, 40, 2, 13)
    >>> bool(np.all(np.diff(result.success_rate) >= 0)), float(result.success_rate[0])
    (True, 0.0)
    >>> attack.transform(pairs).shape
    (40, 2, 13)
    """

    _parameter_constraints: dict = {
        "estimator": "no_validation",
        "eps": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "step_size": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "mode": [StrOptions({"pairs", "knn", "triplets"})],
        "budget": [StrOptions({"shared", "per_point"})],
        "threshold": [Interval(numbers.Real, None, None, closed="neither"), None],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "feature_range": [tuple, list, None],
        "n_restarts": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        # scikit-learn's meaning: 0 is invalid, -1 all threads, -2 all but one, ...
        "n_jobs": [
            Interval(numbers.Integral, None, -1, closed="right"),
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        eps=0.1,
        step_size=0.01,
        max_iter=20,
        mode="pairs",
        budget="shared",
        threshold=None,
        n_neighbors=10,
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
        self.mode = mode
        self.budget = budget
        self.threshold = threshold
        self.n_neighbors = n_neighbors
        self.feature_range = feature_range
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X=None, y=None):
        """Resolve the attacked model (fitting a clone of it if it is not fitted).

        Parameters
        ----------
        X : array-like, default=None
            kNN mode with a bare metric model: the reference points ``(n_samples,
            n_features)``. Otherwise only used to fit an unfitted ``estimator``.
        y : array-like, default=None
            Labels of ``X`` (the references' classes in kNN mode).

        Returns
        -------
        self : AckMetricAttack
        """
        self._box = check_feature_range(self.feature_range)
        check_eps(self.eps)
        n_seen = None
        if self.mode == "knn" and X is not None:
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
            n_seen = X.shape[1]
        if _is_fitted(self.estimator):
            self.estimator_ = self.estimator
        elif X is None:
            raise ValueError(
                f"The estimator {type(unwrap_frozen(self.estimator)).__name__} is not fitted: "
                "fit the attack with data (fit(X, y)) to fit a clone of it, or pass a "
                "fitted model (wrapped in sklearn.frozen.FrozenEstimator to survive clone)."
            )
        else:
            self.estimator_ = clone(self.estimator).fit(X, y)
        metric_part, knn = _split_pipeline(self.estimator_)
        if metric_part is None:
            n_knn = knn.n_features_in_
            self.metric_ = MahalanobisMetric(np.eye(n_knn), np.zeros(n_knn))
        else:
            target = as_target(metric_part)
            self.metric_ = mahalanobis_metric(target) if target.is_linear else target
        n_features = self.metric_.n_features
        if n_seen is not None and n_seen != n_features:
            raise ValueError(f"X has {n_seen} features, but the model expects {n_features}.")
        self.n_features_in_ = n_features
        self._M, self._lam_max = None, 0.0
        if self.metric_.is_linear:
            W = self.metric_.components
            # Z @ M costs n d^2, (Z @ W.T) @ W costs 2 n d k: keep the cheaper.
            self._M = np.ascontiguousarray(W.T @ W) if 2 * W.shape[0] >= W.shape[1] else None
            # Largest eigenvalue of M: the curvature bound of the shared-budget re-split.
            reshare = self.mode == "pairs" and self.budget == "shared"
            self._lam_max = float(np.linalg.norm(W, 2) ** 2) if reshare and W.size else 0.0

        self.threshold_ = None
        self.classifier_ = None
        if self.mode == "pairs":
            self.threshold_ = (
                float(self.threshold) if self.threshold is not None else self.metric_.threshold
            )
            if self.threshold_ is None:
                raise ValueError(
                    f"{type(unwrap_frozen(metric_part or knn)).__name__} has no decision "
                    "threshold: pass "
                    "threshold= (on the squared distance D), for instance "
                    "skrobust.calibrate_threshold(model, pairs, pair_labels)."
                )
        elif self.mode == "knn":
            self.classifier_ = self._resolve_classifier(knn, X, y)
        return self

    def _resolve_classifier(self, knn, X, y):
        if knn is None:
            if X is None or y is None:
                raise ValueError(
                    "mode='knn' needs references: fit(X, y) with labelled points, or a fitted "
                    "Pipeline(..., metric step, KNeighborsClassifier) as estimator."
                )
            n_vote = min(_DEFAULT_VOTE_NEIGHBORS, X.shape[0])
            return KNeighborsClassifier(n_neighbors=n_vote).fit(self.metric_.transform(X), y)
        return check_knn_classifier(knn, "mode='knn'")

    def transform(self, X):
        """Adversarial versions of ``X`` at the budget ``eps``.

        Parameters
        ----------
        X : array-like
            Pairs ``(n_pairs, 2, n_features)``, points ``(n_samples, n_features)`` (kNN,
            attacked against the classifier's own predictions) or triplets
            ``(n_triplets, 3, n_features)``.

        Returns
        -------
        X_adv : ndarray of the shape of ``X``
        """
        check_is_fitted(self)
        eps, scalar = check_eps(self.eps)
        if not scalar:
            raise ValueError("transform needs a single eps; use attack(X, eps=[...]) for several.")
        return self.attack(X, eps=float(eps[0])).adversarial[0]

    def attack(self, X, y=None, eps=None):
        """Attack ``X`` at each budget of ``eps``, each from the clean input.

        Parameters
        ----------
        X : array-like
            Pairs, points (kNN) or triplets, as in :meth:`transform`.
        y : array-like of shape (n_samples,), default=None
            kNN mode: the labels of the points (the attack pushes them away from this
            class), each one of the classifier's classes (others raise a ``ValueError``).
            ``None`` uses the classifier's predictions.
        eps : float or array-like of float, default=None
            Budgets; ``None`` uses ``self.eps``.

        Returns
        -------
        result : AttackResult
        """
        check_is_fitted(self)
        eps_values, _ = check_eps(self.eps if eps is None else eps)
        X = self._check_input(X)
        # Widened by the few ulps X may overshoot the box (see check_in_box), never clipped.
        box = check_in_box(X, self._box)
        if self.mode == "knn":
            result = self._attack_knn(X, y, eps_values, box)
        else:
            result = self._attack_tuples(X, eps_values, box)
        if self.verbose:
            for e, rate in zip(eps_values, result.success_rate, strict=True):
                print(f"[AckMetricAttack] eps={e:g}: success rate {rate:.3f}")
        return result

    def _check_input(self, X):
        n_features = self.n_features_in_
        if self.mode == "pairs":
            return check_pairs(X, name="X", n_features=n_features)
        if self.mode == "triplets":
            return check_triplets(X, name="X", n_features=n_features)
        return validate_data(self, X, reset=False, dtype=np.float64)

    # -- pairs and triplets ------------------------------------------------------------

    def _gram(self, Z, out=None):
        """``Z @ M`` (half the gradient of D), as one product or two thin ones."""
        if self._M is None:
            W = self.metric_.components
            return np.matmul(Z @ W.T, W, out=out)
        return np.matmul(Z, self._M, out=out)

    def _triplet_thresholds(self, X):
        """``D(anchor, negative)`` of each triplet: the positive must get farther."""
        if self.metric_.is_linear:
            return self._distances(X[:, 0, :] - X[:, 2, :])
        return self.metric_.squared_distances(X[:, 0, :], X[:, 2, :])

    def _distances(self, Z):
        """``D = z^T M z`` of each row of ``Z``, the same formula the step kernel uses."""
        return _rowdot(Z, self._gram(Z)) if len(Z) else np.zeros(0)

    def _n_threads(self):
        """Threads of the numba kernels: scikit-learn's ``n_jobs`` convention (``None`` is 1,
        ``-1`` all of numba's threads, ``-2`` all but one, ...).

        The kernels are memory-bound and run between BLAS calls, whose worker threads keep
        spinning for a while after each product: on few cores a single kernel thread is
        usually fastest, so more are used only when asked for.
        """
        from numba import config

        limit = config.NUMBA_NUM_THREADS
        n_jobs = 1 if self.n_jobs is None else self.n_jobs
        if n_jobs < 0:
            n_jobs = limit + 1 + n_jobs
        return max(1, min(n_jobs, limit))

    def _attack_tuples(self, X, eps_values, box):
        triplets = self.mode == "triplets"
        n = X.shape[0]
        if triplets:
            thresholds = self._triplet_thresholds(X)
            negatives = X[:, 2:, :]
            X = np.ascontiguousarray(X[:, :2, :])
        else:
            # Widened by the tie band: a pair within rounding of the threshold is similar.
            thresholds = np.full(n, decision_threshold(self.threshold_), dtype=np.float64)
            X = np.ascontiguousarray(X)
        adversarial = np.empty((len(eps_values),) + X.shape)
        D_before = None
        D_after = np.empty((len(eps_values), n))
        rows = min(n, max(1, _CHUNK_ELEMENTS // X.shape[2]))
        # Work arrays of one chunk, reused by every chunk and eps: memory stays bounded.
        buffers = [np.empty((rows, X.shape[2])) for _ in range(3)]
        rng = check_random_state(self.random_state) if self.n_restarts else None
        for e, eps in enumerate(eps_values):
            if eps == 0.0 or self.max_iter == 0:
                adversarial[e] = X
                D_after[e] = np.nan
                continue
            D0 = np.empty(n)
            for start in range(0, n, rows):
                sl = slice(start, min(n, start + rows))
                D0[sl], D_after[e, sl] = self._attack_chunk(
                    X[sl], thresholds[sl], eps, triplets, adversarial[e, sl], buffers, box
                )
            for _ in range(self.n_restarts):
                todo = np.flatnonzero((D_after[e] > thresholds) == (D0 > thresholds))
                if not todo.size:
                    break
                for start in range(0, todo.size, rows):
                    idx = todo[start : start + rows]
                    out = np.empty((idx.size,) + X.shape[1:])
                    _, D_run = self._attack_chunk(
                        X[idx], thresholds[idx], eps, triplets, out, buffers, box, rng=rng
                    )
                    won = (D_run > thresholds[idx]) != (D0[idx] > thresholds[idx])
                    adversarial[e, idx[won]] = out[won]
                    D_after[e, idx[won]] = D_run[won]
            if D_before is None:
                D_before = D0
        if D_before is None and self.metric_.is_linear:
            D_before = self._distances(X[:, 0, :] - X[:, 1, :])
        elif D_before is None:
            D_before = self.metric_.squared_distances(X[:, 0, :], X[:, 1, :])
        unchanged = np.isnan(D_after)
        D_after[unchanged] = np.broadcast_to(D_before, D_after.shape)[unchanged]
        before = D_before > thresholds
        # Never worse than the clean input (the returned pair is the clean one then).
        worse = np.where(before, D_after > D_before, D_after < D_before)
        adversarial[worse] = np.broadcast_to(X, adversarial.shape)[worse]
        D_after[worse] = np.broadcast_to(D_before, D_after.shape)[worse]
        success = (D_after > thresholds) != before
        if triplets:
            shape = adversarial[:, :, :1].shape
            adversarial = np.concatenate([adversarial, np.broadcast_to(negatives, shape)], axis=2)
        return AttackResult(
            mode=self.mode,
            eps=eps_values,
            adversarial=adversarial,
            success=success,
            distances_before=D_before,
            distances_after=D_after,
            thresholds=thresholds,
        )

    def _attack_chunk(self, X, thresholds, eps, triplets, out, buffers, box, rng=None):
        """Attack one chunk of pairs (or (anchor, positive) of triplets): the linear
        kernels, or for a nonlinear target eq. (6) with its gradients (eq. 10-11).

        Writes the adversarial pairs to ``out``; returns ``D`` of the clean pairs and ``D``
        of the returned ones (``z^T M z`` of ``z = x_i - x_j``, the formula of the step
        kernel). ``buffers`` are three work arrays with at least as many rows as ``X``.
        With ``rng``, a restart: the clean pairs are only evaluated (their prediction sets
        the direction, and they stay the fallback), and the steps start from a random point.
        """
        if not self.metric_.is_linear:
            moving = (False, True) if triplets else (True, True)
            shared = not triplets and self.budget == "shared"
            D_clean, D_best, out[...] = attack_pairs(
                self.metric_, X, thresholds, eps, shared, moving, self.step_size,
                self.max_iter, box, rng,
            )  # fmt: skip
            return D_clean, D_best
        lo, hi = box if box is not None else (-np.inf, np.inf)
        if triplets:
            eps_i, eps_j, step = 0.0, eps, self.step_size
        elif self.budget == "per_point":
            eps_i, eps_j, step = eps, eps, 2.0 * self.step_size
        else:
            eps_i, eps_j, step = eps / 2.0, eps / 2.0, 2.0 * self.step_size
        budget = np.array([eps_i, eps_j, lo, hi])
        n = X.shape[0]
        Z, Z_best, G = (buffer[:n] for buffer in buffers)
        np.subtract(X[:, 0, :], X[:, 1, :], out=Z)
        state = np.zeros((n, 5))
        n_threads = self._n_threads()
        first = 0
        if rng is not None:
            self._gram(Z, out=G)
            _kernels.run_parallel(
                _kernels.pair_step, Z, G, X, budget, thresholds, state, 0.0, Z_best, 0,
                n_threads=n_threads,
            )  # fmt: skip
            D_clean = state[:, 2].copy()
            _random_differences(X, eps_i, eps_j, lo, hi, rng, out=Z)
            first = 1
        last = self.max_iter + first
        for it in range(first, last + 1):
            self._gram(Z, out=G)
            _kernels.run_parallel(
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
        if not triplets and self.budget == "shared" and box is not None:
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

    # -- kNN -----------------------------------------------------------------------

    def _attack_knn(self, X, y, eps_values, box):
        knn = self.classifier_
        metric = self.metric_
        E_ref = np.ascontiguousarray(knn._fit_X, dtype=np.float64)
        if E_ref.shape[1] != metric.n_components:
            raise ValueError(
                f"The classifier's references have {E_ref.shape[1]} features, but the metric "
                f"embeds into {metric.n_components}."
            )
        ref_labels = np.asarray(knn._y, dtype=np.int64)
        classes = knn.classes_
        n_classes = len(classes)
        pred_before = knn.predict(metric.transform(X))
        if y is None:
            y = pred_before
        else:
            y = column_or_1d(y)
            check_consistent_length(X, y)
        pos = np.minimum(np.searchsorted(classes, y), n_classes - 1)
        unknown = classes[pos] != y
        if unknown.any():
            raise ValueError(
                f"y has labels the classifier never saw: {np.unique(y[unknown])[:5].tolist()} "
                f"(its classes are {classes.tolist()[:10]}). The attack pushes each point "
                "away from its own class, which must be one of the classifier's."
            )
        y_idx = pos.astype(np.int64)

        n, d = X.shape
        adversarial = np.repeat(X[np.newaxis], len(eps_values), axis=0)
        pred_after = np.repeat(pred_before[np.newaxis], len(eps_values), axis=0)
        sq_ref = _rowdot(E_ref, E_ref)
        rows = max(1, _CHUNK_ELEMENTS // max(d, E_ref.shape[0]))
        n_threads = self._n_threads()
        rng = check_random_state(self.random_state) if self.n_restarts else None
        for e, eps in enumerate(eps_values):
            if eps == 0.0 or self.max_iter == 0:
                continue
            for start in range(0, n, rows):
                sl = slice(start, min(n, start + rows))
                adversarial[e, sl] = self._knn_chunk(
                    X[sl], y_idx[sl], eps, E_ref, sq_ref, ref_labels, n_classes, n_threads, box
                )
            pred_after[e] = knn.predict(metric.transform(adversarial[e]))
            for _ in range(self.n_restarts):
                todo = np.flatnonzero(pred_after[e] == pred_before)
                if not todo.size:
                    break
                for start in range(0, todo.size, rows):
                    idx = todo[start : start + rows]
                    X_run = self._knn_chunk(
                        X[idx], y_idx[idx], eps, E_ref, sq_ref, ref_labels, n_classes,
                        n_threads, box, rng=rng,
                    )  # fmt: skip
                    pred_run = knn.predict(metric.transform(X_run))
                    won = pred_run != pred_before[idx]
                    adversarial[e, idx[won]] = X_run[won]
                    pred_after[e, idx[won]] = pred_run[won]
        return AttackResult(
            mode=self.mode,
            eps=eps_values,
            adversarial=adversarial,
            success=pred_after != pred_before,
            predictions_before=pred_before,
            predictions_after=pred_after,
        )

    def _knn_chunk(
        self, X0, y_idx, eps, E_ref, sq_ref, ref_labels, n_classes, n_threads, box, rng=None
    ):
        """Eq. (23) on one chunk of points; return the adversarial points. With ``rng``, a
        restart from a point drawn uniformly within the budget and the box. The gradient in
        the embedding, ``H``, is pulled back to the input by the target's VJP (``H W`` for a
        linear metric; eq. 10 for a network)."""
        metric = self.metric_
        X_lo, X_hi = X0 - eps, X0 + eps
        if box is not None:
            np.maximum(X_lo, box[0], out=X_lo)
            np.minimum(X_hi, box[1], out=X_hi)
        if rng is None:
            X = X0.copy()
        else:
            X = X_lo + rng.random_sample(X0.shape) * (X_hi - X_lo)
            np.clip(X, X_lo, X_hi, out=X)
        n = X.shape[0]
        X_best = np.empty_like(X)
        best_count = np.empty(n, dtype=np.int64)
        best_loss = np.empty(n)
        done = np.zeros(n, dtype=np.uint8)
        H = np.empty((n, metric.n_components))
        n_vote = self.classifier_.n_neighbors
        for r in range(self.max_iter + 1):
            E = metric.embed(X)
            dist = E @ E_ref.T
            dist *= -2.0
            dist += _rowdot(E, E)[:, None]
            dist += sq_ref[None, :]
            _kernels.run_parallel(
                _kernels.knn_evaluate,
                dist, E, E_ref, ref_labels, y_idx, n_vote, self.n_neighbors, n_classes,
                X, X_best, best_count, best_loss, done, H, r == 0,
                n_threads=n_threads,
            )  # fmt: skip
            if r == self.max_iter or done.all():
                break
            _kernels.run_parallel(
                _kernels.sign_step, X, metric.vjp(X, H), X_lo, X_hi, self.step_size, done,
                n_threads=n_threads,
            )  # fmt: skip
        return X_best

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = False
        if self.mode != "knn":
            tags.input_tags.two_d_array = False
            tags.input_tags.three_d_array = True
        return tags
