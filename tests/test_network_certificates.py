"""Network certificates through the public functions: what they accept, what they refuse,
how they relate (the promises themselves are tried in test_network_properties.py)."""

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import CertifiedPairClassifier, ReluMetricLearner
from skrobust._network_bounds import lipschitz_constant
from skrobust.certificates import (
    certified_knn_accuracy,
    certified_knn_radius,
    certified_radius,
    certify_knn,
    certify_pairs,
    inf_to_2_norm,
    perturbed_distance_bounds,
    verify_knn,
)
from skrobust.datasets import load_wine, make_pairs
from skrobust.testing import FixedMetric, FixedNetwork


@pytest.fixture(scope="module")
def fitted():
    X, y = load_wine()
    learner = ReluMetricLearner((8,), 4, n_epochs=30, random_state=0).fit(X[::2], y[::2])
    pairs, labels, _ = make_pairs(X, y, 60, random_state=0)
    return X, y, learner, pairs, labels


@pytest.mark.parametrize("bound", ["paper", "spectral", "frobenius", "triangle"])
def test_linear_only_bounds_refuse_a_network(fitted, bound):
    _, _, learner, pairs, _ = fitted
    with pytest.raises(TypeError, match="linear-only.*bound='best'"):
        perturbed_distance_bounds(learner, pairs, 0.01, bound=bound)
    with pytest.raises(TypeError, match="linear-only"):
        certify_pairs(learner, pairs, 0.01, bound=bound)
    with pytest.raises(TypeError, match="linear-only"):
        CertifiedPairClassifier(FrozenEstimator(learner), bound=bound).fit(pairs, fitted[4])


@pytest.mark.parametrize("method", ["pairwise", "exact"])
def test_linear_only_knn_certificates_refuse_a_network(fitted, method):
    X, y, learner, _, _ = fitted
    pipe = make_pipeline(FrozenEstimator(learner), KNeighborsClassifier(3)).fit(X[::2], y[::2])
    with pytest.raises(TypeError, match="linear-only.*method='interval'"):
        certify_knn(pipe, X[1::2], 0.01, method=method)
    with pytest.raises(TypeError, match="linear-only"):
        verify_knn(pipe, X[1::2], 0.01)


def test_best_is_the_tighter_of_interval_and_lipschitz(fitted):
    _, _, learner, pairs, _ = fitted
    eps = [0.001, 0.01, 0.05]
    lo_b, up_b = perturbed_distance_bounds(learner, pairs, eps, bound="best")
    lo_i, up_i = perturbed_distance_bounds(learner, pairs, eps, bound="interval")
    lo_l, up_l = perturbed_distance_bounds(learner, pairs, eps, bound="lipschitz")
    np.testing.assert_array_equal(lo_b, np.maximum(lo_i, lo_l))
    np.testing.assert_array_equal(up_b, np.minimum(up_i, up_l))


def test_neither_bound_is_always_the_tighter():
    # f(x) = relu(x) and a point on the box's face: the box stops it, which only IBP sees.
    relu = FixedNetwork([(np.eye(1), np.zeros(1)), (np.eye(1), np.zeros(1))])
    pair = np.array([[[0.0], [0.5]]])
    kw = dict(budget="per_point")
    _, up_i = perturbed_distance_bounds(relu, pair, 0.1, bound="interval", **kw)
    _, up_l = perturbed_distance_bounds(relu, pair, 0.1, bound="lipschitz", **kw)
    assert up_i[0] == pytest.approx(0.6**2) and up_l[0] == pytest.approx(0.7**2)
    # Rotations: |W| inflates IBP's boxes layer after layer, the norms do not.
    rotate = np.array([[1.0, 1.0], [1.0, -1.0]])
    net = FixedNetwork([(rotate, np.zeros(2)), (rotate / 2, np.zeros(2))])
    pair = np.array([[[0.5, 0.2], [0.5, 0.2]]])
    _, up_i = perturbed_distance_bounds(net, pair, 0.01, bound="interval")
    _, up_l = perturbed_distance_bounds(net, pair, 0.01, bound="lipschitz")
    # K = ||W_1||_{inf->2} ||W_2||_2 = 2 / sqrt(2); IBP: output radius 0.02 per point and axis.
    assert up_l[0] == pytest.approx(2 * 0.01**2) and up_i[0] == pytest.approx(8 * 0.02**2)


def test_lipschitz_constant_is_the_product_of_the_layer_norms():
    rng = np.random.RandomState(0)
    layers = [
        (rng.normal(size=(5, 3)), rng.normal(size=5)),
        (rng.normal(size=(2, 5)), np.zeros(2)),
    ]
    K1, exact = inf_to_2_norm(layers[0][0])
    assert exact
    expected = K1 * np.linalg.norm(layers[1][0], 2)
    assert expected <= lipschitz_constant(layers) <= expected * (1 + 1e-9)
    # No pair of points moves farther apart in the embedding than K times their distance.
    net = FixedNetwork(layers)
    A, B = rng.uniform(size=(500, 3)), rng.uniform(size=(500, 3))
    moved = np.linalg.norm(net.transform(A) - net.transform(B), axis=1)
    assert np.all(moved <= lipschitz_constant(layers) * np.abs(A - B).max(axis=1))


def test_on_a_linear_metric_lipschitz_is_the_triangle_bound():
    metric = FixedMetric(np.array([[1.0, 2.0], [0.0, -1.0]]))
    pairs = np.random.RandomState(1).uniform(size=(6, 2, 2))
    for budget in ("shared", "per_point"):
        tri = perturbed_distance_bounds(metric, pairs, 0.05, bound="triangle", budget=budget)
        lip = perturbed_distance_bounds(metric, pairs, 0.05, bound="lipschitz", budget=budget)
        np.testing.assert_allclose(lip, tri, rtol=1e-10)


def test_a_pair_a_hair_past_a_zero_threshold_is_certified_for_a_hair():
    # Found by hypothesis: D = 2.5e-45 > threshold = 0, and the hidden unit that separates
    # the points stays on for perturbations below ~2e-23. Its radius (interval bound) must
    # be certified by certify_pairs too, whose Lipschitz part carries a rounding slack.
    net = FixedNetwork(
        [
            (np.array([[0.0, 0.0], [-1.0, 1.5]]), np.zeros(2)),
            (np.array([[1.0, 1.0]]), np.zeros(1)),
            (np.array([[1.0]]), np.zeros(1)),
        ]
    )
    tiny = 9.967371e-23
    pairs = np.array([[[1.0, tiny], [tiny, tiny]], [[tiny, tiny], [tiny, tiny]]])
    radius = certified_radius(net, pairs, threshold=0.0)
    assert 0 < radius[0] < 1e-20 and radius[1] == 0
    assert certify_pairs(net, pairs[:1], 0.999 * radius[0], threshold=0.0, feature_range=None)
    assert not certify_pairs(net, pairs[:1], 2 * radius[0], threshold=0.0, feature_range=None)


def test_certified_radius_takes_the_larger_of_the_two_arguments(fitted):
    _, _, learner, pairs, _ = fitted
    radius = certified_radius(learner, pairs)
    for budget in ("shared", "per_point"):
        r = certified_radius(learner, pairs, budget=budget)
        lip = certify_pairs(learner, pairs, 0.0, bound="lipschitz", budget=budget)
        assert np.all(r[lip] > 0)
    # At the radius (within its bisection precision) the pair is certified, past it not.
    ok = (radius > 0) & np.isfinite(radius)
    for p in np.flatnonzero(ok)[:10]:
        assert certify_pairs(learner, pairs[p : p + 1], 0.999 * radius[p], feature_range=None)
        assert not certify_pairs(learner, pairs[p : p + 1], 1.01 * radius[p], feature_range=None)


def test_certified_pair_classifier_on_a_network(fitted):
    _, _, learner, pairs, labels = fitted
    clf = CertifiedPairClassifier(FrozenEstimator(learner), eps=0.01).fit(pairs, labels)
    assert not hasattr(clf, "components_") and clf.threshold_ == 2.0
    certified = clf.certify(pairs)
    np.testing.assert_array_equal(certified, certify_pairs(learner, pairs, 0.01))
    assert clf.certified_score(pairs, labels) <= min(certified.mean(), clf.score(pairs, labels))
    assert np.all(certified <= (clf.certified_radius(pairs) > 0.01 * 0.999))
    trained = CertifiedPairClassifier(ReluMetricLearner((8,), 4, n_epochs=20, random_state=0))
    assert trained.fit(pairs, labels).score(pairs, labels) > 0.7


def test_interval_knn_certificate_of_a_network(fitted):
    X, y, learner, _, _ = fitted
    pipe = make_pipeline(FrozenEstimator(learner), KNeighborsClassifier(3)).fit(X[::2], y[::2])
    tests = X[1::2]
    small = certify_knn(pipe, tests, 0.001, method="interval")
    large = certify_knn(pipe, tests, 0.02, method="interval")
    boxed = certify_knn(pipe, tests, 0.02, method="interval", feature_range=(0.0, 1.0))
    assert np.all(large <= small) and np.all(large <= boxed) and small.any()
    radius = certified_knn_radius(pipe, tests[:20], method="interval")
    for point, r in zip(tests[:20], radius, strict=True):
        if r > 0:
            assert certify_knn(pipe, point[None], 0.999 * r, method="interval")[0]
            assert not certify_knn(pipe, point[None], 1.01 * r, method="interval")[0]
    accuracy = certified_knn_accuracy(pipe, tests, y[1::2], 0.001, method="interval")
    assert accuracy <= pipe.score(tests, y[1::2])
