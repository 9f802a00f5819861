"""AckMetricAttack: the sign-gradient attack of Huai et al. on pairs, kNN and triplets.

One facade over the three task attacks (:class:`~skrobust.PairAttack`,
:class:`~skrobust.TripletAttack`, :class:`~skrobust.KNNAttack`): ``mode`` chooses the task,
the parameters of the other tasks are ignored, and the result is one :class:`AttackResult`
whose fields of the other tasks are ``None``. New code may use the task classes directly.
"""

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._attack_core import AttackAPI, SignGradientAttack
from ._eq23_attack import KNNAttack
from ._mahalanobis import mahalanobis_metric
from ._pair_attack import PairAttack, TripletAttack
from ._validation import check_eps, check_pairs, check_triplets

__all__ = ["AckMetricAttack", "AttackResult"]

# The parameters each task takes from the facade (the model and the box are the task's own,
# set at fit).
_TASK_PARAMS = {
    "pairs": ("eps", "step_size", "max_iter", "budget", "threshold", "feature_range",
              "n_restarts", "random_state", "n_jobs"),
    "triplets": ("eps", "step_size", "max_iter", "feature_range", "n_restarts",
                 "random_state", "n_jobs"),
    "knn": ("eps", "step_size", "max_iter", "n_neighbors", "feature_range", "n_restarts",
            "random_state", "n_jobs"),
}  # fmt: skip
_TASKS = {"pairs": PairAttack, "triplets": TripletAttack, "knn": KNNAttack}


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


class AckMetricAttack(AttackAPI):
    """The AckMetric attack (Huai et al. 2022) against any fitted metric model.

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

    On a nonlinear metric (a ReLU network such as :class:`~skrobust.ReluMetricLearner`, or
    any :class:`~skrobust.targets.MetricTarget`, a wrapped PyTorch model for instance) the
    gradients come from the target's vector-Jacobian product (eq. 10-11) and no longer tie:
    each pair step moves the point whose gradient has the larger L1 norm (eq. 6; under the
    shared budget a point may use what the other left), and eq. (23) pulls its embedding
    gradient back through the VJP.

    Each returned input is the first iterate that changed the prediction, else the one
    with the best objective, and never worse than the clean input. Every output lies in the
    box and within its budget exactly (up to float rounding), whatever ``step_size`` and
    ``max_iter`` are.

    Parameters
    ----------
    estimator : estimator, MetricTarget or KnnTarget
        The attacked model: anything :func:`skrobust.targets.as_target` reads (a skrobust
        learner, :class:`~skrobust.ReluMetricLearner` included, a metric-learn Mahalanobis
        learner, scikit-learn's ``NeighborhoodComponentsAnalysis``,
        :class:`skrobust.testing.FixedMetric`, a :class:`~skrobust.targets.LinearTarget` or
        ``MahalanobisMetric`` given by its matrix, a
        :class:`~skrobust.targets.CallableTarget`, a ``Pipeline`` of affine scalers and one
        of these), optionally followed by
        a ``KNeighborsClassifier`` as last pipeline step (the kNN mode then attacks that
        classifier, using its stored, already embedded references); or a plain fitted
        ``KNeighborsClassifier`` (the Euclidean metric, ``W = I``); or a
        :class:`~skrobust.targets.KnnTarget`. A fitted model is used as it is, but
        ``clone`` (and so ``GridSearchCV``) unfits it: wrap it in
        :class:`sklearn.frozen.FrozenEstimator` to keep it fitted. An unfitted model is
        fitted, as a clone, by :meth:`fit`.
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
        call). Each input's starts depend only on this seed and the input's own values,
        never on the other inputs of the call, so an input attacked alone, in chunks or on
        dask blocks (:mod:`skrobust.dask`) gets the same result. Without restarts the
        attack is deterministic and this is unused.
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
    metric_ : MahalanobisMetric or MetricTarget
        Its metric in the raw input space (see :func:`skrobust.targets.as_target`): a
        ``MahalanobisMetric`` (a ``LinearTarget``) for a linear model, the target itself
        otherwise.
    threshold_ : float or None
        Pairs mode: the threshold on ``D`` in use.
    classifier_ : KNeighborsClassifier or None
        kNN mode: the attacked classifier, over embedded points.
    n_features_in_ : int
        Number of features of a point.
    task_ : PairAttack, TripletAttack or KNNAttack
        The fitted task attack that runs.

    See Also
    --------
    skrobust.PairAttack, skrobust.TripletAttack, skrobust.KNNAttack : the task attacks.
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
        **SignGradientAttack._parameter_constraints,
        "mode": [StrOptions({"pairs", "knn", "triplets"})],
        "budget": [StrOptions({"shared", "per_point"})],
        "threshold": [Interval(numbers.Real, None, None, closed="neither"), None],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
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
        if self.mode == "knn" and X is not None:
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        task = _TASKS[self.mode](self.estimator, **self._task_params())
        self.task_ = task.fit(X, y)
        self.estimator_ = task.estimator_
        target = task.target_
        # The facade's metric_ stays a MahalanobisMetric (with its pair_distances).
        self.metric_ = mahalanobis_metric(target) if target.is_linear else target
        self.n_features_in_ = task.n_features_in_
        self.threshold_ = getattr(task, "threshold_", None)
        self.classifier_ = getattr(task, "classifier_", None)
        return self

    def _task_params(self):
        return {name: getattr(self, name) for name in _TASK_PARAMS[self.mode]}

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
        # The parameters read while attacking follow set_params, as they always have.
        task = self.task_.set_params(**self._task_params())
        found = task._run(X, y, eps_values)
        # The task's result has no empty field; the facade's keeps the others None.
        result = AttackResult(mode=self.mode, **vars(found))
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.mode != "knn":
            tags.input_tags.two_d_array = False
            tags.input_tags.three_d_array = True
        return tags
