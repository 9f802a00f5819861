"""CertifiedPairClassifier: fitting, thresholds, certificates, scikit-learn conventions."""

import pickle

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrobust import (
    AckMetricAttack,
    CertifiedPairClassifier,
    RobustMetricLearner,
    calibrate_threshold,
    certified_radius,
    mahalanobis_metric,
    perturbed_distance_bounds,
)
from skrobust.datasets import load_wine, make_pairs

from .exact import FixedMetric, exact_max_distance, proven_min_distance
from .strategies import boxes, linear_metrics, pairs_in_box, property_examples

# scikit-learn's common checks feed 2-d X (n_samples, n_features) and class labels such as
# 0/1 or strings. A pair classifier takes pairs (n_pairs, 2, n_features) and the pair
# labels +1/-1, so these checks cannot run on it; each property they check for 2-d X is
# checked on pairs below (see the test named after it).
_TWO_D = "the check feeds 2-d X; pairs are 3-d arrays (n_pairs, 2, n_features)"
_LABELS = "the check feeds 2-d X and class labels other than the pair labels +1/-1"
EXPECTED_FAILED_CHECKS = {
    "check_classifier_data_not_an_array": _TWO_D,
    "check_classifiers_classes": _LABELS + " (string and multi-class labels)",
    "check_classifiers_train": _LABELS + "; accuracy on pairs: test_fits_and_classifies",
    "check_dict_unchanged": _TWO_D + "; on pairs: test_methods_do_not_change_the_estimator",
    "check_dont_overwrite_parameters": _TWO_D + "; on pairs: test_methods_do_not_change_the_",
    "check_dtype_object": _TWO_D,
    "check_estimators_dtypes": _TWO_D + "; on pairs: test_accepts_float32_and_int_pairs",
    "check_estimators_empty_data_messages": _TWO_D + "; on pairs: test_rejects_bad_input",
    "check_estimators_fit_returns_self": _TWO_D + "; on pairs: test_fits_and_classifies",
    "check_estimators_nan_inf": _TWO_D + "; on pairs: test_rejects_bad_input",
    "check_estimators_overwrite_params": _TWO_D + "; on pairs: test_clone_and_pickle",
    "check_estimators_pickle": _TWO_D + "; on pairs: test_clone_and_pickle",
    "check_f_contiguous_array_estimator": _TWO_D,
    "check_fit2d_1feature": _TWO_D + " (one feature is fine for pairs)",
    "check_fit2d_predict1d": _TWO_D + "; on pairs: test_rejects_bad_input",
    "check_fit_check_is_fitted": _TWO_D + "; on pairs: test_unfitted_raises",
    "check_fit_idempotent": _TWO_D + "; on pairs: test_fit_is_idempotent_and_order_free",
    "check_fit_score_takes_y": _TWO_D,
    "check_methods_sample_order_invariance": _TWO_D
    + "; on pairs: test_fit_is_idempotent_and_order_free",
    "check_methods_subset_invariance": _TWO_D
    + "; on pairs: test_fit_is_idempotent_and_order_free",
    "check_n_features_in": _TWO_D + "; on pairs: test_fits_and_classifies",
    "check_n_features_in_after_fitting": _TWO_D + "; on pairs: test_rejects_bad_input",
    "check_pipeline_consistency": _TWO_D,
    "check_positive_only_tag_during_fit": _TWO_D + " (negative pair values are accepted)",
    "check_readonly_memmap_input": _TWO_D,
    "check_supervised_y_2d": _LABELS,
}


@parametrize_with_checks(
    [CertifiedPairClassifier(RobustMetricLearner(max_iter=20))],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def wine_pairs():
    X, y = load_wine()
    pairs, labels, _ = make_pairs(X, y, 300, random_state=0)
    return pairs, labels


def frozen(W, threshold=None):
    return FrozenEstimator(FixedMetric(np.asarray(W, dtype=np.float64), threshold))


def test_fits_and_classifies(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier(RobustMetricLearner(random_state=0), threshold=0.5)
    assert clf.fit(pairs, labels) is clf
    assert clf.n_features_in_ == 13 and clf.classes_.tolist() == [-1, 1]
    assert isinstance(clf.estimator_, RobustMetricLearner)
    assert clf.estimator is not clf.estimator_  # a clone was fitted
    D = mahalanobis_metric(clf.estimator_).pair_distances(pairs)
    np.testing.assert_allclose(clf.decision_function(pairs), 0.5 - D)
    np.testing.assert_array_equal(clf.predict(pairs), np.where(D <= 0.5, 1, -1))
    assert clf.score(pairs, labels) == pytest.approx(np.mean(clf.predict(pairs) == labels))
    calibrated = CertifiedPairClassifier(
        RobustMetricLearner(random_state=0), threshold=calibrate_threshold(clf, pairs, labels)
    ).fit(pairs, labels)
    assert calibrated.score(pairs, labels) > 0.8


def test_default_estimator_is_a_robust_metric_learner(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier().fit(pairs[:100], labels[:100])
    assert isinstance(clf.estimator_, RobustMetricLearner)
    # The learner's own threshold (gamma, on the squared distance) is used.
    assert clf.threshold_ == clf.estimator_.gamma


def test_threshold_is_given_else_the_models_own_else_calibrated(wine_pairs):
    pairs, labels = wine_pairs
    X, y = load_wine()
    nca = NeighborhoodComponentsAnalysis(random_state=0, max_iter=20).fit(X, y)
    own = CertifiedPairClassifier(FrozenEstimator(nca)).fit(pairs, labels)
    assert own.threshold_ == pytest.approx(calibrate_threshold(nca, pairs, labels))
    given_ = CertifiedPairClassifier(FrozenEstimator(nca), threshold=3.0).fit(pairs, labels)
    assert given_.threshold_ == 3.0
    with_own = CertifiedPairClassifier(frozen(np.eye(13), threshold=0.7)).fit(pairs, labels)
    assert with_own.threshold_ == 0.7


@pytest.mark.metric_learn
@pytest.mark.parametrize("name", ["ITML", "MMC"])
def test_metric_learn_pair_learners_fitted_or_frozen(name, wine_pairs):
    import metric_learn  # optional dependency: see conftest.py

    learner = getattr(metric_learn, name)
    pairs, labels = wine_pairs
    pairs, labels = pairs[:60], labels[:60]
    params = {"max_iter": 30} if name == "ITML" else {"max_iter": 20}
    clf = CertifiedPairClassifier(learner(**params)).fit(pairs, labels)
    fitted = clf.estimator_
    assert isinstance(fitted, learner)
    # metric-learn keeps its threshold on the unsquared distance; ours is squared.
    assert clf.threshold_ == pytest.approx(fitted.threshold_**2)
    # metric-learn puts threshold_ at a training pair's distance: that pair is a tie, scored
    # 0 and predicted similar in every batch. Away from ties, metric-learn's predictions.
    ties = clf.decision_function(pairs) == 0.0
    assert ties.any()
    theirs = fitted.predict(pairs)
    np.testing.assert_array_equal(clf.predict(pairs)[~ties], theirs[~ties])
    np.testing.assert_array_equal(clf.predict(pairs)[ties], 1)
    frozen_clf = CertifiedPairClassifier(FrozenEstimator(fitted)).fit(pairs, labels)
    assert frozen_clf.estimator_.estimator is fitted
    assert frozen_clf.threshold_ == clf.threshold_
    np.testing.assert_array_equal(frozen_clf.predict(pairs), clf.predict(pairs))
    # clone keeps a frozen model fitted (GridSearchCV clones every parameter).
    cloned = clone(frozen_clf).fit(pairs, labels)
    np.testing.assert_array_equal(cloned.predict(pairs), frozen_clf.predict(pairs))


@pytest.mark.metric_learn
@pytest.mark.parametrize("name", ["ITML", "MMC"])
def test_threshold_ties_decided_alike_in_every_batch_never_certified(name, wine_pairs):
    import metric_learn  # optional dependency: see conftest.py

    learner = getattr(metric_learn, name)
    pairs, labels = wine_pairs
    pairs, labels = pairs[:60], labels[:60]
    fitted = learner(max_iter=20, random_state=0).fit(pairs, labels)
    clf = CertifiedPairClassifier(FrozenEstimator(fitted), eps=1e-6).fit(pairs, labels)
    batch = clf.decision_function(pairs)
    alone = np.array([clf.decision_function(pair[np.newaxis])[0] for pair in pairs])
    ties = batch == 0.0
    assert ties.any()
    np.testing.assert_array_equal(alone[ties], 0.0)
    np.testing.assert_array_equal(np.sign(alone), np.sign(batch))
    assert not clf.certify(pairs[ties]).any()
    np.testing.assert_array_equal(clf.certified_radius(pairs[ties]), 0.0)


def test_pair_within_rounding_of_the_threshold_is_a_tie():
    pair = np.array([[[0.2, 0.3], [0.6, 0.1]]])
    fit_pairs, fit_labels = np.concatenate([pair, pair]), [1, -1]
    D = float(np.sum((pair[0, 0] - pair[0, 1]) ** 2))
    for threshold in (D * (1 - 1e-12), D, D * (1 + 1e-12)):
        clf = CertifiedPairClassifier(frozen(np.eye(2)), threshold=threshold, eps=1e-9)
        clf.fit(fit_pairs, fit_labels)
        assert clf.decision_function(pair)[0] == 0.0
        assert clf.predict(pair)[0] == 1
        assert not clf.certify(pair)[0]
        assert clf.certified_radius(pair)[0] == 0.0
    clf = CertifiedPairClassifier(frozen(np.eye(2)), threshold=D * (1 - 1e-6))
    clf.fit(fit_pairs, fit_labels)
    assert clf.decision_function(pair)[0] < 0.0
    assert clf.predict(pair)[0] == -1


def test_frozen_pipeline_of_scaler_and_metric(wine_pairs):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pairs, labels = wine_pairs
    X, y = load_wine()
    pipe = make_pipeline(StandardScaler(), NeighborhoodComponentsAnalysis(max_iter=10)).fit(X, y)
    clf = CertifiedPairClassifier(FrozenEstimator(pipe)).fit(pairs, labels)
    embedded = pipe.transform(pairs.reshape(-1, 13)).reshape(len(pairs), 2, -1)
    D = ((embedded[:, 0] - embedded[:, 1]) ** 2).sum(axis=1)
    np.testing.assert_allclose(clf.decision_function(pairs), clf.threshold_ - D, rtol=1e-9)


def test_clone_and_pickle(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier(RobustMetricLearner(random_state=0, max_iter=30), eps=0.02)
    params = clf.get_params()
    clf.fit(pairs, labels)
    assert clf.get_params() == params  # fit does not overwrite parameters
    restored = pickle.loads(pickle.dumps(clf))
    for method in ("predict", "decision_function", "certify", "certified_radius"):
        np.testing.assert_array_equal(
            getattr(restored, method)(pairs), getattr(clf, method)(pairs)
        )
    unfitted = clone(clf)
    assert not hasattr(unfitted, "estimator_") and unfitted.get_params()["eps"] == 0.02


def test_fit_is_idempotent_and_order_free(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier(frozen(np.diag(np.linspace(0.5, 2, 13))), eps=0.01)
    first = clf.fit(pairs, labels).decision_function(pairs)
    np.testing.assert_array_equal(clf.fit(pairs, labels).decision_function(pairs), first)
    order = np.random.default_rng(0).permutation(len(pairs))
    for method in ("predict", "decision_function", "certify", "certified_radius"):
        whole = getattr(clf, method)(pairs)
        np.testing.assert_array_equal(getattr(clf, method)(pairs[order]), whole[order])
        np.testing.assert_array_equal(getattr(clf, method)(pairs[:7]), whole[:7])


def test_methods_do_not_change_the_estimator(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier(frozen(np.eye(13))).fit(pairs, labels)
    before = {k: v for k, v in vars(clf).items() if k != "norms_"}
    copy = pairs.copy()
    for method in ("predict", "decision_function", "certify", "certified_radius"):
        getattr(clf, method)(pairs)
    clf.certified_score(pairs, labels)
    assert {k: v for k, v in vars(clf).items() if k != "norms_"}.keys() == before.keys()
    assert clf.threshold_ == before["threshold_"]
    np.testing.assert_array_equal(pairs, copy)


def test_accepts_float32_and_int_pairs(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier(frozen(np.eye(13))).fit(pairs.astype(np.float32), labels)
    np.testing.assert_allclose(
        clf.decision_function(pairs.astype(np.float32)),
        clf.decision_function(pairs),
        rtol=1e-5,
        atol=1e-6,
    )
    ints = np.zeros((4, 2, 13), dtype=np.int64)
    ints[::2, 1] = 1
    assert clf.predict(ints).shape == (4,)


def test_unfitted_raises(wine_pairs):
    pairs, _ = wine_pairs
    clf = CertifiedPairClassifier()
    for method in ("predict", "decision_function", "certify", "certified_radius"):
        with pytest.raises(NotFittedError):
            getattr(clf, method)(pairs)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"eps": -0.1}, InvalidParameterError, "'eps' parameter"),
        ({"bound": "eq19"}, InvalidParameterError, "'bound' parameter"),
        ({"budget": "both"}, InvalidParameterError, "'budget' parameter"),
        ({"threshold": "high"}, InvalidParameterError, "'threshold' parameter"),
        ({"feature_range": (1.0, 0.0)}, ValueError, "feature_range must satisfy lo < hi"),
        ({"feature_range": None, "bound": "paper"}, ValueError, "needs a box"),
        ({"estimator": KNeighborsClassifier()}, TypeError, "cannot be fitted on pairs"),
        ({"estimator": FrozenEstimator(KNeighborsClassifier())}, TypeError, "not a Mahal"),
    ],
)
def test_rejects_bad_parameters(params, error, match, wine_pairs):
    pairs, labels = wine_pairs
    with pytest.raises(error, match=match):
        CertifiedPairClassifier(frozen(np.eye(13))).set_params(**params).fit(pairs, labels)


def test_rejects_bad_input(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier(frozen(np.eye(13)))
    with pytest.raises(ValueError, match="pairs must be an array of pairs"):
        clf.fit(pairs[:, 0], labels)
    with pytest.raises(ValueError, match=r"\+1 \(similar\) and -1"):
        clf.fit(pairs, (labels + 1) // 2)
    with pytest.raises(ValueError, match="both classes"):
        clf.fit(pairs, np.ones(len(pairs)))
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(pairs, np.linspace(0, 1, len(pairs)))
    bad = pairs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(bad, labels)
    with pytest.raises(ValueError, match="both classes"):
        clf.fit(pairs[:0], labels[:0])
    clf.fit(pairs, labels)
    with pytest.raises(ValueError, match="expects 13"):
        clf.predict(pairs[:, :, :5])
    with pytest.raises(ValueError, match="outside feature_range"):
        clf.certify(pairs + 2.0)
    with pytest.raises(ValueError, match="metric expects 13"):
        CertifiedPairClassifier(frozen(np.eye(13))).fit(pairs[:, :, :5], labels)


def test_certify_and_radius_match_the_functions(wine_pairs):
    pairs, labels = wine_pairs
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 13)) / 4
    clf = CertifiedPairClassifier(frozen(W), eps=0.02, bound="paper", budget="per_point")
    clf.fit(pairs, labels)
    lower, upper = perturbed_distance_bounds(
        FixedMetric(W), pairs, 0.02, bound="paper", budget="per_point"
    )
    D = FixedMetric(W).transform(pairs[:, 0] - pairs[:, 1])
    D = (D**2).sum(axis=1)
    expected = np.where(D <= clf.threshold_, upper < clf.threshold_, lower > clf.threshold_)
    np.testing.assert_array_equal(clf.certify(pairs), expected)
    # The classifier is itself a Mahalanobis model (with its threshold_) for the functions.
    np.testing.assert_array_equal(
        clf.certified_radius(pairs), certified_radius(clf, pairs, budget="per_point")
    )
    score = clf.certified_score(pairs, labels)
    assert score == pytest.approx(np.mean(clf.certify(pairs) & (clf.predict(pairs) == labels)))


def test_grid_search_over_a_frozen_model(wine_pairs):
    pairs, labels = wine_pairs
    clf = CertifiedPairClassifier(frozen(np.eye(13)))
    thresholds = [0.1, 0.3, 1.0]
    search = GridSearchCV(clf, {"threshold": thresholds}, cv=3).fit(pairs, labels)
    # The frozen metric is never refitted: each fold's accuracy is that of D <= t there.
    D = np.sum((pairs[:, 0] - pairs[:, 1]) ** 2, axis=1)
    folds = [test for _, test in StratifiedKFold(3).split(pairs, labels)]
    expected = [
        np.mean([np.mean(np.where(D[f] <= t, 1, -1) == labels[f]) for f in folds])
        for t in thresholds
    ]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected)
    assert len(set(expected)) == 3  # the grid has one best threshold
    assert search.best_params_["threshold"] == thresholds[int(np.argmax(expected))]


# certificates are promises


@st.composite
def certified_problems(draw, max_features=4, max_pairs=6):
    W = draw(linear_metrics(max_features=max_features))
    box = draw(boxes())
    pairs = draw(pairs_in_box(W.shape[1], max_pairs=max_pairs, box=box))
    pairs = np.concatenate([pairs, pairs[:1]])  # at least two pairs, for both labels
    # Log-uniform, so small budgets that certify some pairs are common; eps = 0 apart.
    eps = 10 ** draw(st.floats(-3.0, -0.5)) * (box[1] - box[0])
    D = FixedMetric(W).transform(pairs[:, 0] - pairs[:, 1])
    D = (D**2).sum(axis=1)
    # Thresholds near the pairs' distances, where certificates are decided.
    threshold = float(np.quantile(D, draw(st.floats(0.0, 1.0)))) * draw(st.floats(0.5, 1.5))
    labels = np.where(np.arange(len(pairs)) % 2 == 0, 1, -1)
    bound = draw(st.sampled_from(["best", "paper", "spectral", "frobenius", "triangle"]))
    budget = draw(st.sampled_from(["shared", "per_point"]))
    clf = CertifiedPairClassifier(
        frozen(W), threshold=threshold, eps=eps, bound=bound, budget=budget, feature_range=box
    ).fit(pairs, labels)
    return clf, W, pairs, labels, box


@settings(max_examples=property_examples())
@given(certified_problems())
def test_no_certified_pair_is_broken_by_the_exact_worst_case(problem):
    clf, W, pairs, _, box = problem
    t, eps = clf.threshold_, clf.eps
    event("some pair certified" if clf.certify(pairs).any() else "no pair certified")
    for pair, similar, certified in zip(
        pairs, clf.predict(pairs) == 1, clf.certify(pairs), strict=True
    ):
        if not certified:
            continue
        if similar:
            assert exact_max_distance(W, pair, eps, clf.budget, box) <= t
        else:
            proven_min, _ = proven_min_distance(W, pair, eps, clf.budget, box)
            assert proven_min > t - 1e-7 * (1 + abs(t))


@settings(max_examples=property_examples())
@given(certified_problems(max_features=6, max_pairs=10), st.floats(0.05, 1.0))
def test_no_certified_pair_is_broken_by_the_attack(problem, step_fraction):
    clf, W, pairs, _, box = problem
    if step_fraction * clf.eps == 0:
        return
    attack = AckMetricAttack(
        clf,
        eps=clf.eps,
        step_size=step_fraction * clf.eps,
        budget=clf.budget,
        feature_range=box,
    ).fit()
    result = attack.attack(pairs)
    adversarial = result.adversarial[0]
    D_adv = FixedMetric(W).transform(adversarial[:, 0] - adversarial[:, 1])
    D_adv = (D_adv**2).sum(axis=1)
    flipped = (D_adv <= clf.threshold_) != (clf.predict(pairs) == 1)
    certified = clf.certify(pairs)
    event("some pair certified" if certified.any() else "no pair certified")
    event("the attack flipped a pair" if flipped.any() else "the attack flipped no pair")
    assert not np.any(flipped & certified)
    assert not np.any(result.success[0] & certified)
    # Certified at any eps below its radius: the attack at that eps cannot flip it.
    radius = clf.certified_radius(pairs)
    assert not np.any(result.success[0] & (radius > clf.eps))


@settings(max_examples=property_examples())
@given(certified_problems(max_features=6, max_pairs=10))
def test_a_pair_counted_by_certified_score_is_correctly_classified(problem):
    clf, _, pairs, labels, _ = problem
    counted = clf.certify(pairs) & (clf.predict(pairs) == labels)
    assert clf.certified_score(pairs, labels) == pytest.approx(counted.mean())
    # Flipping every label leaves no certified pair counted: counting needs correctness.
    assert clf.certified_score(pairs, -labels) == pytest.approx(
        np.mean(clf.certify(pairs) & (clf.predict(pairs) != labels))
    )
    assert clf.certified_score(pairs, labels) + clf.certified_score(
        pairs, -labels
    ) == pytest.approx(clf.certify(pairs).mean())
    assert clf.certified_score(pairs, labels) <= clf.score(pairs, labels) + 1e-12


def test_default_estimator_trains_the_certificate_and_classifies_well():
    X, y = load_wine()
    pairs, labels, _ = make_pairs(X[::2], y[::2], 200, random_state=0)
    test_pairs, test_labels, _ = make_pairs(X[1::2], y[1::2], 200, random_state=1)
    clf = CertifiedPairClassifier().fit(pairs, labels)
    # Certified training at the classifier's own budget, whatever that budget is.
    assert clf.estimator_.robust_eps == clf.eps == 0.1
    assert CertifiedPairClassifier(eps=0.03).fit(pairs, labels).estimator_.robust_eps == 0.03
    assert clf.score(test_pairs, test_labels) > 0.85
    assert clf.certified_score(test_pairs, test_labels) > 0.5
