"""CertifiedPairClassifier: a classifier of pairs that says which predictions are certified."""

import numbers

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._bounds import BOUNDS, BUDGETS
from ._mahalanobis import best_threshold, threshold_ties
from ._network_bounds import NETWORK_BOUNDS, network_of
from ._target import (
    MetricTarget,
    as_target,
    is_metric_learn_pair_learner,
    resolve_threshold,
)
from ._validation import check_feature_range, check_pair_labels, check_pairs
from .certificates import certified_radius, certify_pairs, metric_norms

__all__ = ["CertifiedPairClassifier"]


def _check_dense_real(pairs):
    if issparse(pairs):
        raise TypeError(
            "Sparse input is not supported: pairs must be a dense array of shape "
            "(n_pairs, 2, n_features)."
        )
    pairs = np.asarray(pairs)
    if pairs.dtype.kind == "c":
        raise ValueError("Complex data not supported: pairs must hold real numbers.")
    return pairs


def _check_training_labels(y):
    """Reject targets that are not pair labels before the pairs' shape is checked."""
    kind = type_of_target(y)
    if kind.startswith("continuous"):
        raise ValueError(
            f"Unknown label type: {kind}. y must hold pair labels, +1 (similar) and -1 "
            "(dissimilar)."
        )
    values = np.unique(np.asarray(y))
    if values.size < 2:
        raise ValueError(
            "y must contain both classes, similar (+1) and dissimilar (-1) pairs, not one "
            f"class only; found {values.tolist()}."
        )
    return y


class CertifiedPairClassifier(ClassifierMixin, BaseEstimator):
    """Classify pairs as similar or dissimilar, and certify predictions against attacks.

    A pair is predicted similar (``+1``) when its squared distance ``D`` (Mahalanobis,
    ``||W (a - b)||^2``, or of a ReLU network's embedding, ``||f(a) - f(b)||^2``) is at most
    ``threshold_``, dissimilar (``-1``) otherwise. A prediction is *certified* at budget
    ``eps`` when no perturbation within the budget that keeps the points in the box can
    change it: the bound on the perturbed distance
    (:func:`~skrobust.perturbed_distance_bounds`) stays strictly on the same side of the
    threshold, with a relative safety margin of ``1e-9`` so ties and float rounding are
    never certified.

    Parameters
    ----------
    estimator : estimator, MetricTarget or None, default=None
        The metric. ``None`` means skrobust's certified training at the classifier's own
        budget, ``RobustMetricLearner(alpha=0.0, robust_eps=eps)``: it trains the very
        bound this classifier certifies with, at the budget it certifies, so no strength
        constant is needed (pass your own learner, or tune ``estimator__robust_eps`` with
        ``GridSearchCV``, to trade clean accuracy for more); and its threshold ``gamma`` is
        where its hinge puts the boundary (the paper's eigenvalue defence shrinks every
        distance toward 0, which leaves ``gamma`` a poor threshold on pairs). An unfitted
        estimator is cloned and fitted on the training pairs in :meth:`fit`, through its
        ``fit_pairs(pairs, y)`` (skrobust learners) or ``fit(pairs, y)`` (metric-learn's
        pair learners: ``ITML``, ``MMC``, ``SDML``). A fitted Mahalanobis model wrapped
        in :class:`~sklearn.frozen.FrozenEstimator` is used as it is (and survives
        ``clone``, so ``GridSearchCV`` keeps it): any linear model
        :func:`~skrobust.targets.as_target` reads, including metric-learn's fitted pair
        learners and pipelines of affine scalers and a metric step; or a ReLU network
        (:class:`~skrobust.ReluMetricLearner`, fitted through its ``fit_pairs`` when unfitted).
        A metric given as a target (:class:`~skrobust.targets.LinearTarget`,
        :class:`~skrobust.targets.ReluNetworkTarget`) is used as it is too.
    threshold : float or None, default=None
        Threshold on the **squared** distance ``D``. ``None`` takes the model's own
        (a metric-learn pair learner's ``threshold_``, squared; a skrobust learner's
        ``gamma``), and otherwise calibrates one on the training pairs for accuracy.
    eps : float, default=0.1
        The L-infinity budget at which :meth:`certify` and :meth:`certified_score` certify.
    bound : {"best", "paper", "spectral", "frobenius", "triangle", "interval", \
            "lipschitz"}, default="best"
        The bound :meth:`certify` uses (see :func:`~skrobust.perturbed_distance_bounds`); a
        network takes ``"best"``, ``"interval"`` or ``"lipschitz"`` (:meth:`fit` raises a
        ``TypeError`` for the others).
    budget : {"shared", "per_point"}, default="shared"
        ``"shared"``: ``||d_i||_inf + ||d_j||_inf <= eps`` (the paper's eq. 4);
        ``"per_point"``: each point moves by at most ``eps``.
    feature_range : (float, float) or None, default=(0.0, 1.0)
        The box the attacker is confined to; pairs given to :meth:`certify` must lie in
        it. ``None`` (no box) allows only ``bound="triangle"``, ``"interval"``,
        ``"lipschitz"`` or ``"best"``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted metric (the ``FrozenEstimator`` itself when one was given).
    components_ : ndarray of shape (n_components, n_features)
        ``W`` in the raw input space (scalers of a pipeline composed in); linear metrics
        only.
    threshold_ : float
        The threshold on the squared distance in use.
    target_ : LinearTarget or ReluNetworkTarget
        The metric (see :func:`skrobust.targets.as_target`) with ``threshold_``.
    norms_ : MetricNorms
        The norms of ``W`` the certificates need, computed once; linear metrics only (a
        network's Lipschitz bound is cached with its layers).
    classes_ : ndarray of shape (2,)
        ``[-1, 1]``.
    n_features_in_ : int
        Number of features of each point.

    See Also
    --------
    skrobust.perturbed_distance_bounds : The bounds behind :meth:`certify`.
    skrobust.certified_radius : The radius behind :meth:`certified_radius`.

    Notes
    -----
    :meth:`score` is accuracy, as for every scikit-learn classifier; metric-learn's pair
    learners return ROC AUC from their ``score``.

    Examples
    --------
    >>> from skrobust import CertifiedPairClassifier, RobustMetricLearner
    >>> from skrobust.datasets import load_wine, make_pairs
    >>> X, y = load_wine()
    >>> pairs, labels, _ = make_pairs(X, y, 300, random_state=0)
    >>> clf = CertifiedPairClassifier(RobustMetricLearner(random_state=0), eps=0.01)
    >>> clf = clf.fit(pairs[:200], labels[:200])
    >>> clf.predict(pairs[200:205]).shape, clf.classes_.tolist()
    ((5,), [-1, 1])
    >>> certified = clf.certify(pairs[200:])
    >>> accuracy = clf.score(pairs[200:], labels[200:])
    >>> bool(clf.certified_score(pairs[200:], labels[200:]) <= min(accuracy, certified.mean()))
    True
    >>> bool(((clf.certified_radius(pairs[200:]) > clf.eps) <= certified).all())
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"]), MetricTarget, None],
        "threshold": [Interval(numbers.Real, None, None, closed="neither"), None],
        "eps": [Interval(numbers.Real, 0, None, closed="left")],
        "bound": [StrOptions(set(BOUNDS))],
        "budget": [StrOptions(set(BUDGETS))],
        "feature_range": ["array-like", None],
    }

    def __init__(
        self,
        estimator=None,
        *,
        threshold=None,
        eps=0.1,
        bound="best",
        budget="shared",
        feature_range=(0.0, 1.0),
    ):
        self.estimator = estimator
        self.threshold = threshold
        self.eps = eps
        self.bound = bound
        self.budget = budget
        self.feature_range = feature_range

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, pairs, y):
        """Fit the metric on labelled pairs (or take a frozen one) and set the threshold.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Training pairs; any finite values.
        y : array-like of shape (n_pairs,)
            ``+1`` similar, ``-1`` dissimilar.

        Returns
        -------
        self : CertifiedPairClassifier
        """
        feature_range = check_feature_range(self.feature_range)
        if feature_range is None and self.bound not in ("best", "triangle", *NETWORK_BOUNDS):
            raise ValueError(
                f"bound={self.bound!r} needs a box; with feature_range=None use "
                "bound='triangle', 'interval', 'lipschitz' or 'best'."
            )
        pairs = _check_dense_real(pairs)
        y = _check_training_labels(y)
        pairs = check_pairs(pairs)
        y = check_pair_labels(y, len(pairs))
        self.estimator_ = self._fit_estimator(pairs, y)
        target = as_target(self.estimator_)
        # A network is certified by its own bounds; this refuses the linear-only ones for it
        # and any target without layers (with a TypeError saying what works instead).
        network_of(target, self.bound)
        if target.n_features != pairs.shape[2]:
            raise ValueError(
                f"pairs have {pairs.shape[2]} features per point, but the estimator's "
                f"metric expects {target.n_features}."
            )
        self.n_features_in_ = pairs.shape[2]
        self.classes_ = np.array([-1, 1])
        if self.threshold is None and target.threshold is None:
            self.threshold_ = best_threshold(target.squared_pair_distances(pairs), y)
        else:
            self.threshold_ = resolve_threshold(target, self.threshold)
        self.target_ = target.with_threshold(self.threshold_)
        if target.is_linear:
            self.components_ = target.components
            self.norms_ = metric_norms(self.target_)
        return self

    def _certificate_model(self):
        """What the certificate functions read: the norms of a linear metric (computed
        once), or the network target."""
        check_is_fitted(self)
        return getattr(self, "norms_", self.target_)

    def _fit_estimator(self, pairs, y):
        estimator = self.estimator
        if estimator is None:
            from ._learner import RobustMetricLearner

            estimator = RobustMetricLearner(alpha=0.0, robust_eps=self.eps)
        if isinstance(estimator, FrozenEstimator | MetricTarget):
            return estimator
        if hasattr(estimator, "fit_pairs"):
            return clone(estimator).fit_pairs(pairs, y)
        if is_metric_learn_pair_learner(estimator):
            return clone(estimator).fit(pairs, y)
        raise TypeError(
            f"estimator {type(estimator).__name__} cannot be fitted on pairs: expected a "
            "learner with fit_pairs(pairs, y) (such as RobustMetricLearner), a metric-learn "
            "pair learner (ITML, MMC, SDML), or a fitted Mahalanobis model wrapped in "
            "sklearn.frozen.FrozenEstimator."
        )

    def _distances(self, pairs):
        check_is_fitted(self)
        pairs = check_pairs(_check_dense_real(pairs), n_features=self.n_features_in_)
        return self.target_.squared_pair_distances(pairs)

    def decision_function(self, pairs):
        """``threshold_ - D``: positive for pairs predicted similar, ``0`` for ties.

        A pair within rounding of the threshold (``|D - threshold_| <= TIE_RTOL *
        |threshold_|``, ``TIE_RTOL = 1e-9``) is a tie: its score is exactly ``0`` in every
        batch, it is predicted similar and it is never certified.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs to score; any finite values.

        Returns
        -------
        scores : ndarray of shape (n_pairs,)
        """
        D = self._distances(pairs)
        return np.where(threshold_ties(D, self.threshold_), 0.0, self.threshold_ - D)

    def predict(self, pairs):
        """``+1`` (similar) when ``D <= threshold_`` or a tie, else ``-1``.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs to predict; any finite values.

        Returns
        -------
        y_pred : ndarray of shape (n_pairs,)
        """
        return np.where(self.decision_function(pairs) >= 0.0, 1, -1)

    def score(self, pairs, y, sample_weight=None):
        """Accuracy on labelled pairs.

        Unlike metric-learn's pair learners, whose ``score`` is ROC AUC, this is the
        accuracy of :meth:`predict` (the scikit-learn classifier convention).

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Test pairs; any finite values.
        y : array-like of shape (n_pairs,)
            True labels: ``+1`` similar, ``-1`` dissimilar.
        sample_weight : array-like of shape (n_pairs,), default=None
            Weights of the pairs; ``None`` weighs them equally.

        Returns
        -------
        accuracy : float
        """
        return super().score(pairs, y, sample_weight=sample_weight)

    def certify(self, pairs):
        """Whether each prediction provably survives every attack within ``eps``.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs inside ``feature_range``.

        Returns
        -------
        certified : ndarray of bool, shape (n_pairs,)
        """
        return certify_pairs(
            self._certificate_model(),
            pairs,
            float(self.eps),
            threshold=self.threshold_,
            bound=self.bound,
            budget=self.budget,
            feature_range=check_feature_range(self.feature_range),
        )

    def certified_radius(self, pairs):
        """Per pair, a budget below which its prediction provably cannot change.

        From the triangle bound (see :func:`~skrobust.certified_radius`), for this
        classifier's ``budget``; it needs no box.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs to certify; any finite values.

        Returns
        -------
        radius : ndarray of shape (n_pairs,)
        """
        return certified_radius(
            self._certificate_model(), pairs, threshold=self.threshold_, budget=self.budget
        )

    def certified_score(self, pairs, y):
        """Fraction of pairs both correctly classified and certified at ``eps``.

        A lower bound on the accuracy of any attack within the budget (the attack's own
        robust accuracy is an upper bound).

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Test pairs, inside ``feature_range``.
        y : array-like of shape (n_pairs,)
            True labels: ``+1`` similar, ``-1`` dissimilar.

        Returns
        -------
        certified_accuracy : float
        """
        certified = self.certify(pairs)
        y = check_pair_labels(y, len(certified))
        return float(np.mean(certified & (self.predict(pairs) == y)))

    def __skrobust_target__(self):
        """The fitted metric with ``threshold_``, for skrobust's attacks and certificates.

        Returns
        -------
        target : MetricTarget
            The estimator's target (see :func:`skrobust.targets.as_target`) with
            ``threshold_`` as its threshold on the squared distance.
        """
        check_is_fitted(self)
        return self.target_
