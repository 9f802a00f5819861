"""Certified kNN: a certified point's vote never flips, whatever the attack."""

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skrobust import AckMetricAttack, RobustMetricLearner
from skrobust.datasets import load_wine
from skrobust.metrics import certified_knn_accuracy, certify_knn, make_certified_scorer

from .exact import FixedMetric
from .strategies import linear_metrics, points_in_box, property_examples


def knn_pipeline(W, X, y, k):
    # A k-d tree: scikit-learn's brute-force search starts OpenMP threads on every call,
    # which costs ~40 ms per predict on tiny problems.
    knn = KNeighborsClassifier(k, algorithm="kd_tree")
    return make_pipeline(FrozenEstimator(FixedMetric(W)), knn).fit(X, y)


@st.composite
def knn_problems(draw, max_features=4):
    """A fitted kNN pipeline over a random metric, test points, and a budget."""
    W = draw(linear_metrics(max_features=max_features))
    d = W.shape[1]
    n_refs = draw(st.integers(2, 24))
    X = draw(points_in_box(n_refs, d))
    n_classes = draw(st.integers(2, 3))
    y = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n_refs, max_size=n_refs)))
    k = draw(st.integers(1, min(5, n_refs)))
    tests = draw(points_in_box(draw(st.integers(1, 6)), d))
    # Test points near the references, where votes are decided and certificates are close.
    near = X[: len(tests)] + draw(st.floats(0.0, 0.2)) * (tests[: len(X)] - 0.5)
    tests = np.concatenate([tests, near])
    eps = 10 ** draw(st.floats(-3.0, -0.5))  # log-uniform; eps = 0 is tested apart
    return knn_pipeline(W, X, y, k), W, tests, eps


@settings(max_examples=property_examples())
@given(knn_problems(), st.floats(0.05, 1.0))
def test_no_certified_knn_point_is_broken_by_the_attack(problem, step_fraction):
    pipe, _, tests, eps = problem
    certified = certify_knn(pipe, tests, eps)
    event("some point certified" if certified.any() else "no point certified")
    if step_fraction * eps == 0:
        return
    attack = AckMetricAttack(
        pipe, mode="knn", eps=eps, step_size=step_fraction * eps, feature_range=None
    ).fit()
    result = attack.attack(tests)
    event("the attack flipped a point" if result.success.any() else "the attack flipped none")
    assert not np.any(result.success[0] & certified)
    assert np.array_equal(
        pipe.predict(result.adversarial[0])[certified], pipe.predict(tests)[certified]
    )


@settings(max_examples=property_examples())
@given(knn_problems(), st.integers(0, 2**32 - 1))
def test_no_certified_knn_point_is_broken_by_corner_or_random_perturbations(problem, seed):
    pipe, W, tests, eps = problem
    certified = certify_knn(pipe, tests, eps)
    event("some point certified" if certified.any() else "no point certified")
    if not certified.any():
        return
    rng = np.random.default_rng(seed)
    d = W.shape[1]
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * d)).reshape(d, -1).T
    inside = rng.uniform(-1.0, 1.0, (64, d))
    directions = np.concatenate([corners, inside])
    points = tests[certified]
    moved = points[:, None, :] + eps * directions[None, :, :]
    predicted = pipe.predict(moved.reshape(-1, d)).reshape(len(points), -1)
    assert np.all(predicted == pipe.predict(points)[:, None])


@settings(max_examples=property_examples())
@given(knn_problems(), st.floats(0.0, 1.0))
def test_knn_certificate_shrinks_as_eps_grows(problem, fraction):
    pipe, _, tests, eps = problem
    wide = certify_knn(pipe, tests, eps)
    narrow = certify_knn(pipe, tests, fraction * eps)
    assert np.all(narrow >= wide)


def test_a_clear_vote_is_certified_and_a_tie_is_not():
    X = np.array([[0.0], [0.1], [1.0]])
    y = np.array([0, 0, 1])
    pipe = knn_pipeline(np.eye(1), X, y, 3)
    # At 0.05 both class-0 references are nearest; the third is far.
    assert certify_knn(pipe, [[0.05]], 0.0)[0]
    assert certify_knn(pipe, [[0.05]], 0.01)[0]
    # 1-NN halfway between a 0 and a 1: a tie, never certified even at eps = 0.
    one = knn_pipeline(np.eye(1), np.array([[0.0], [1.0]]), np.array([0, 1]), 1)
    assert not certify_knn(one, [[0.5]], 0.0)[0]
    # 1-NN at 0.3: distances 0.3 and 0.7, the gap 0.4 exceeds 2 eps K only for eps < 0.2.
    assert certify_knn(one, [[0.3]], 0.199)[0]
    assert not certify_knn(one, [[0.3]], 0.2)[0]


def test_third_classes_are_accounted_for():
    # 3-NN: references of class 2 at 0.10 and 0.12, of class 0 at 0.20, of class 1 at 0.21.
    # Within the triangle-bound intervals of eps=0.06 (each distance +- 0.06), 0 and 1 can
    # both come in front of the second 2: the vote 2, 0, 1 is a three-way tie, which
    # scikit-learn breaks toward class 0 - a flip. Putting only one rival class near and
    # every other reference far never shows it (2 keeps two votes of three), so that check
    # would certify the point; a sound certificate over these intervals must not.
    X = np.array([[0.10], [0.12], [0.20], [0.21]])
    y = np.array([2, 2, 0, 1])
    pipe = knn_pipeline(np.eye(1), X, y, 3)
    x = np.array([[0.0]])
    assert pipe.predict(x)[0] == 2
    tie = KNeighborsClassifier(3).fit(np.array([[0.04], [0.14], [0.15], [0.18]]), y[[0, 2, 3, 1]])
    assert tie.predict(x)[0] == 0  # the relaxed worst case does flip the vote
    assert not certify_knn(pipe, x, 0.06, method="interval")[0]
    assert certify_knn(pipe, x, 0.03, method="interval")[0]
    # The distances move together: in one dimension the order 2, 2, 0, 1 holds for every
    # z' in [-0.06, 0.06], and the pairwise certificate sees it.
    assert certify_knn(pipe, x, 0.06)[0]


def test_certified_accuracy_counts_correct_certified_points():
    X, y = load_wine()
    pipe = make_pipeline(
        MinMaxScaler(),
        NeighborhoodComponentsAnalysis(max_iter=20, random_state=0),
        KNeighborsClassifier(3),
    ).fit(X[::2], y[::2])
    test, truth = X[1::2], y[1::2]
    for eps in (0.0, 0.01, 0.05):
        certified = certify_knn(pipe, test, eps)
        expected = np.mean(certified & (pipe.predict(test) == truth))
        assert certified_knn_accuracy(pipe, test, truth, eps) == pytest.approx(expected)
    assert certified_knn_accuracy(pipe, test, truth, 0.0) == pytest.approx(
        pipe.score(test, truth), abs=0.02
    )


def test_certified_scorer_in_grid_search_and_outside_the_box():
    X, y = load_wine()
    pipe = make_pipeline(RobustMetricLearner(max_iter=30), KNeighborsClassifier(3))
    search = GridSearchCV(
        pipe,
        {"robustmetriclearner__alpha": [0.0, 1.0]},
        scoring={"clean": "accuracy", "certified": make_certified_scorer(eps=0.01)},
        refit="certified",
        cv=3,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_certified"]
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    assert np.all(scores <= search.cv_results_["mean_test_clean"] + 1e-12)
    # Points outside the training box still score (no box is assumed).
    scorer = make_certified_scorer(eps=0.01)
    assert 0.0 <= scorer(search.best_estimator_, X * 3 - 1, y) <= 1.0


def test_knn_certificate_on_a_bare_knn_uses_the_identity_metric():
    X, y = load_wine()
    bare = KNeighborsClassifier(3).fit(X, y)
    identity = knn_pipeline(np.eye(X.shape[1]), X, y, 3)
    for eps in (0.0, 0.01, 0.03):
        np.testing.assert_array_equal(certify_knn(bare, X, eps), certify_knn(identity, X, eps))


@pytest.mark.parametrize(
    "estimator, X, eps, error, match",
    [
        (KNeighborsClassifier(3, weights="distance"), None, 0.1, ValueError, "uniform"),
        (NeighborhoodComponentsAnalysis(), None, 0.1, TypeError, "not a kNN classifier"),
        (KNeighborsClassifier(3), np.zeros((2, 5)), 0.1, ValueError, "shape"),
        (KNeighborsClassifier(3), None, [0.1, 0.2], ValueError, "single number"),
        (KNeighborsClassifier(3), None, -1.0, ValueError, "eps must be finite and >= 0"),
        (KNeighborsClassifier(3), np.full((2, 2), np.nan), 0.1, ValueError, "NaN"),
    ],
)
def test_knn_certificate_rejects_bad_input(estimator, X, eps, error, match):
    rng = np.random.default_rng(0)
    train = rng.random((10, 2))
    labels = np.arange(10) % 2
    estimator.fit(train, labels)
    with pytest.raises(error, match=match):
        certify_knn(estimator, train if X is None else X, eps)


def test_certified_scorer_rejects_several_eps():
    with pytest.raises(ValueError, match="single number"):
        make_certified_scorer(eps=[0.1, 0.2])
