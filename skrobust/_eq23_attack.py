"""The AckMetric attack on a kNN classifier over a metric (Huai et al. 2022, eq. 23).

Each iteration re-finds the ``n_neighbors`` (the paper's M) nearest references of the current
adversarial point, pushes those of the point's label away and pulls the others closer, by a
sign step. Distances to all references of a chunk are one BLAS product; the neighbour search,
the objective, the best iterate and the gradient's coefficients are one numba kernel
(:func:`skrobust._kernels.knn_evaluate`), the step another (:func:`skrobust._kernels.sign_step`).
The kernels work in the embedding, so any metric target serves: the gradient in the
embedding is pulled back to the input by the target's vector-Jacobian product (``H W`` for a
linear metric, eq. 10 for a network).
"""

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_consistent_length, column_or_1d, validate_data

from . import _kernels
from ._attack_core import (
    CHUNK_ELEMENTS,
    SignGradientAttack,
    TaskResult,
    first_success,
    restart_rng,
)
from ._target import as_knn_target, is_knn_model
from ._threads import run_parallel

__all__ = ["KNNAttack", "KNNAttackResult"]


@dataclass(eq=False)
class KNNAttackResult(TaskResult):
    """What :meth:`KNNAttack.attack` returns, for every eps of one call.

    Attributes
    ----------
    eps : ndarray of shape (n_eps,)
        The budgets, in the order given.
    adversarial : ndarray of shape (n_eps, n_samples, n_features)
        Per point the first iterate that changed the classifier's prediction, else the
        iterate with the best objective (never worse than the clean point).
    success : ndarray of bool, shape (n_eps, n_samples)
        Whether the predicted class changed.
    predictions_before : ndarray of shape (n_samples,)
        The classifier's prediction on the clean points.
    predictions_after : ndarray of shape (n_eps, n_samples)
        Its prediction on the adversarial points.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust import KNNAttack
    >>> from skrobust.targets import LinearTarget, as_knn_target
    >>> X, y = np.array([[0.0], [1.0]]), np.array([0, 1])
    >>> one_nn = as_knn_target(LinearTarget(np.eye(1)), X, y, n_neighbors=1)
    >>> attack = KNNAttack(one_nn, step_size=0.05).fit()
    >>> result = attack.attack(np.array([[0.1], [0.45]]), eps=0.1)
    >>> result.predictions_before.tolist(), result.predictions_after.tolist()
    ([0, 0], [[0, 1]])
    """

    predictions_before: np.ndarray
    predictions_after: np.ndarray


def _rowdot(A, B):
    return np.einsum("ij,ij->i", A, B)


@dataclass(eq=False)
class _KnnRun:
    """One call's state: the points, their labels as class indices, the outputs per eps."""

    X: np.ndarray
    y_idx: np.ndarray
    predictions_before: np.ndarray
    adversarial: np.ndarray
    predictions_after: np.ndarray
    references: np.ndarray
    reference_sq: np.ndarray
    reference_labels: np.ndarray
    rows: int


class KNNAttack(SignGradientAttack):
    """The AckMetric attack on a kNN classifier over a metric (Huai et al. 2022, eq. 23).

    Input ``(n_samples, n_features)``. Each iteration re-finds the ``n_neighbors`` nearest
    references of the current point (in the embedding), pushes those of the point's label
    away and pulls the others closer by a sign step, inside the L-infinity ball of ``eps``
    and the box. Each returned point is the first iterate that changed the classifier's
    prediction, else the one with the best objective, never worse than the clean point. The
    accuracy it leaves is an upper bound on the true robust accuracy;
    :class:`~skrobust.CascadeKNNAttack` is a stronger one.

    Parameters
    ----------
    estimator : estimator, MetricTarget or KnnTarget
        A fitted ``Pipeline(..., metric step, KNeighborsClassifier)`` (the classifier's
        stored, already embedded references are used), a plain fitted
        ``KNeighborsClassifier`` (the Euclidean metric, ``W = I``), a
        :class:`~skrobust.targets.KnnTarget`; or a bare metric (anything
        :func:`skrobust.targets.as_target` reads, a :class:`~skrobust.targets.LinearTarget`
        given by its matrix included), with references given to :meth:`fit` (a 3-NN over
        them, the paper's m = 3). Wrap a fitted model in ``FrozenEstimator`` to survive
        ``clone``; an unfitted one is fitted, as a clone, by :meth:`fit`.
    eps : float or array-like of float, default=0.1
        The budget (L-infinity).
    step_size : float, default=0.01
        Size of each sign step (the paper's ``xi``).
    max_iter : int, default=20
        Number of sign steps.
    n_neighbors : int, default=10
        How many nearest references enter eq. (23) at each iteration (the paper's M). The
        classifier's own ``n_neighbors`` decides its vote.
    feature_range : tuple (lo, hi) or None, default=(0.0, 1.0)
        The box. Inputs outside it raise a ``ValueError``; ``None``: no box.
    n_restarts : int, default=0
        Extra runs for the points the run from the clean point did not flip, each from a
        point drawn uniformly at random within the budget and the box.
    random_state : int, RandomState instance or None, default=None
        Draws the random starts of ``n_restarts``, per point from this seed and the point's
        own values (independent of the other points of the call); unused without restarts.
    n_jobs : int or None, default=None
        Threads of the numba kernels, scikit-learn's convention.
    verbose : int, default=0
        Print the success rate of each eps when positive.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model attacked.
    knn_target_ : KnnTarget
        The classifier as the attack reads it.
    target_ : MetricTarget
        Its metric in the raw input space (linear, a network, a wrapped model).
    classifier_ : KNeighborsClassifier
        The attacked classifier, over embedded points.
    n_features_in_ : int
        Number of features of a point.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import KNNAttack
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0),
    ...                      KNeighborsClassifier(3)).fit(X[::2], y[::2])
    >>> result = KNNAttack(FrozenEstimator(pipe)).fit().attack(X[1::2], y[1::2], eps=[0, 0.1])
    >>> accuracy = (result.predictions_after == y[1::2]).mean(axis=1)
    >>> bool(accuracy[1] < accuracy[0])
    True
    """

    _parameter_constraints: dict = {
        **SignGradientAttack._parameter_constraints,
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        estimator,
        eps=0.1,
        step_size=0.01,
        max_iter=20,
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
        self.n_neighbors = n_neighbors
        self.feature_range = feature_range
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _fit_data(self, X, y):
        if X is None:
            return X, y
        return validate_data(self, X, y, dtype=np.float64, y_numeric=False)

    def _resolve(self, X, y):
        if not is_knn_model(self.estimator_) and (X is None or y is None):
            raise ValueError(
                "The kNN attack needs references: fit(X, y) with labelled points, or a "
                "fitted Pipeline(..., metric step, KNeighborsClassifier) as estimator."
            )
        knn_target = as_knn_target(self.estimator_, X, y)
        n_features = knn_target.n_features
        if X is not None and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features, but the model expects {n_features}.")
        self.knn_target_ = knn_target
        self.target_ = knn_target.target
        self.classifier_ = knn_target.knn
        self.n_features_in_ = n_features

    def _check_input(self, X):
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _begin(self, X, y, eps_values, box):
        knn = self.classifier_
        classes = knn.classes_
        n_classes = len(classes)
        pred_before = knn.predict(self.target_.transform(X))
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
        E_ref = self.knn_target_.references
        n_eps = len(eps_values)
        return _KnnRun(
            X=X,
            y_idx=pos.astype(np.int64),
            predictions_before=pred_before,
            adversarial=np.repeat(X[np.newaxis], n_eps, axis=0),
            predictions_after=np.repeat(pred_before[np.newaxis], n_eps, axis=0),
            references=E_ref,
            reference_sq=_rowdot(E_ref, E_ref),
            reference_labels=self.knn_target_.reference_labels,
            rows=max(1, CHUNK_ELEMENTS // max(X.shape[1], E_ref.shape[0])),
        )

    def _keep_clean(self, run, e):
        """The outputs start as the clean points and their predictions."""

    def _attack_eps(self, run, e, eps, box, seed):
        knn, target = self.classifier_, self.target_
        adversarial, pred_after = run.adversarial[e], run.predictions_after[e]
        n_threads = self._n_threads()

        def attempt(r, idx):
            X = run.X[idx]
            rng = restart_rng(X, seed, e, r) if r else None
            X_run = self._knn_chunk(run, X, run.y_idx[idx], eps, n_threads, box, rng=rng)
            pred = knn.predict(target.transform(X_run))
            won = pred != run.predictions_before[idx]
            if r == 0:
                adversarial[idx], pred_after[idx] = X_run, pred
            else:
                adversarial[idx[won]] = X_run[won]
                pred_after[idx[won]] = pred[won]
            return won

        first_success(run.X.shape[0], self.n_restarts + 1, run.rows, attempt)

    def _finish(self, run, eps_values):
        return KNNAttackResult(
            eps=eps_values,
            adversarial=run.adversarial,
            success=run.predictions_after != run.predictions_before,
            predictions_before=run.predictions_before,
            predictions_after=run.predictions_after,
        )

    def _knn_chunk(self, run, X0, y_idx, eps, n_threads, box, rng=None):
        """Eq. (23) on one chunk of points; return the adversarial points. With ``rng``, a
        restart from a point drawn uniformly within the budget and the box."""
        target = self.target_
        E_ref, sq_ref = run.references, run.reference_sq
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
        H = np.empty((n, target.n_components))
        n_vote = self.classifier_.n_neighbors
        n_classes = len(self.classifier_.classes_)
        for r in range(self.max_iter + 1):
            E = target.embed(X)
            dist = E @ E_ref.T
            dist *= -2.0
            dist += _rowdot(E, E)[:, None]
            dist += sq_ref[None, :]
            run_parallel(
                _kernels.knn_evaluate,
                dist, E, E_ref, run.reference_labels, y_idx, n_vote, self.n_neighbors,
                n_classes, X, X_best, best_count, best_loss, done, H, r == 0,
                n_threads=n_threads,
            )  # fmt: skip
            if r == self.max_iter or done.all():
                break
            run_parallel(
                _kernels.sign_step, X, target.vjp(X, H), X_lo, X_hi, self.step_size, done,
                n_threads=n_threads,
            )  # fmt: skip
        return X_best
