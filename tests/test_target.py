"""The model protocol: as_target and as_knn_target read every supported model the same way."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from skrobust import (
    CertifiedPairClassifier,
    MahalanobisMetric,
    RobustMetricLearner,
    metric_norms,
)
from skrobust.datasets import load_wine, make_pairs
from skrobust.targets import (
    KnnTarget,
    LinearTarget,
    MetricTarget,
    as_knn_target,
    as_target,
    resolve_threshold,
)
from skrobust.testing import FixedMetric

from .strategies import linear_metrics

_FINITE = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


class Cubes(MetricTarget):
    """A nonlinear target, ``f(x) = (A x)^3`` per coordinate: a stand-in for a network."""

    def __init__(self, A, threshold=None):
        self.A = np.asarray(A, dtype=np.float64)
        self.threshold = threshold

    @property
    def n_features(self):
        return self.A.shape[1]

    def embed(self, X):
        return (np.asarray(X, dtype=np.float64) @ self.A.T) ** 3

    def vjp(self, X, G):
        H = np.asarray(X, dtype=np.float64) @ self.A.T
        return (3.0 * H * H * G) @ self.A


def _jacobian_fd(f, x, h=1e-6):
    """Central finite-difference Jacobian of ``f`` at one point ``x`` (shape (m, d))."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=1)


@pytest.fixture(scope="module")
def wine():
    return load_wine()


@settings(deadline=None)
@given(W=linear_metrics(), data=st.data())
def test_linear_vjp_is_the_transposed_jacobian(W, data):
    target = LinearTarget(W, bias=np.arange(W.shape[0], dtype=float))
    X = data.draw(hnp.arrays(np.float64, (3, W.shape[1]), elements=_FINITE))
    G = data.draw(hnp.arrays(np.float64, (3, W.shape[0]), elements=_FINITE))
    for i in range(3):
        J = _jacobian_fd(lambda x: target.embed(x[None])[0], X[i])
        np.testing.assert_allclose(target.vjp(X, G)[i], J.T @ G[i], atol=1e-6)


def test_distance_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    target = Cubes(rng.normal(size=(3, 4)))
    A, B = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    grad_a, grad_b = target.squared_distance_gradients(A, B)
    for i in range(5):
        fd_a = _jacobian_fd(lambda a, i=i: target.squared_distances(a[None], B[i : i + 1]), A[i])
        fd_b = _jacobian_fd(lambda b, i=i: target.squared_distances(A[i : i + 1], b[None]), B[i])
        np.testing.assert_allclose(grad_a[i], fd_a[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad_b[i], fd_b[0], rtol=1e-5, atol=1e-6)
    pairs = np.stack([A, B], axis=1)
    D = target.squared_pair_distances(pairs)
    np.testing.assert_allclose(D, np.sum((target.embed(A) - target.embed(B)) ** 2, axis=1))
    np.testing.assert_allclose(target.pair_distance(pairs) ** 2, D)


@settings(deadline=None)
@given(W=linear_metrics(), data=st.data())
def test_an_affine_input_map_folds_into_a_linear_target_as_it_wraps_any_other(W, data):
    d = W.shape[1]
    scale = data.draw(hnp.arrays(np.float64, d, elements=st.floats(0.1, 3.0)))
    offset = data.draw(hnp.arrays(np.float64, d, elements=_FINITE))
    X = data.draw(hnp.arrays(np.float64, (4, d), elements=_FINITE))
    G = data.draw(hnp.arrays(np.float64, (4, W.shape[0]), elements=_FINITE))
    linear = LinearTarget(W, threshold=1.5)
    folded = linear.compose_input(scale, offset)
    wrapped = MetricTarget.compose_input(linear, scale, offset)  # the generic wrapper
    assert isinstance(folded, LinearTarget) and not isinstance(wrapped, LinearTarget)
    assert folded.threshold == wrapped.threshold == 1.5
    np.testing.assert_allclose(folded.embed(X), linear.embed(X * scale + offset), atol=1e-9)
    np.testing.assert_allclose(wrapped.embed(X), folded.embed(X), atol=1e-9)
    np.testing.assert_allclose(wrapped.vjp(X, G), folded.vjp(X, G), atol=1e-9)


def _pipelines(X, y):
    nca = NeighborhoodComponentsAnalysis(max_iter=5, random_state=0)
    return {
        "minmax": make_pipeline(MinMaxScaler(), nca),
        "standard": make_pipeline(StandardScaler(), MaxAbsScaler(), nca),
        "nested frozen": make_pipeline(
            FrozenEstimator(StandardScaler().fit(X)),
            FrozenEstimator(FrozenEstimator(nca.fit(StandardScaler().fit_transform(X), y))),
        ),
    }


@pytest.mark.parametrize("name", ["minmax", "standard", "nested frozen"])
def test_pipelines_compose_into_the_target_of_the_raw_input_space(wine, name):
    X, y = wine
    pipe = _pipelines(X, y)[name].fit(X, y)
    target = as_target(FrozenEstimator(pipe))
    assert isinstance(target, LinearTarget) and target.threshold is None
    np.testing.assert_allclose(target.embed(X), pipe.transform(X), atol=1e-10)
    np.testing.assert_allclose(target.transform(X), pipe.transform(X), atol=1e-10)


def test_thresholds_are_resolved_by_the_adapter(wine):
    X, y = wine
    pairs, labels, _ = make_pairs(X, y, 60, random_state=0)
    learner = RobustMetricLearner(gamma=3.5, max_iter=5).fit(X, y)
    assert as_target(learner).threshold == 3.5
    assert as_target(FixedMetric(np.eye(13), threshold=0.25)).threshold == 0.25
    assert as_target(FixedMetric(np.eye(13))).threshold is None
    clf = CertifiedPairClassifier(FrozenEstimator(learner), threshold=0.7).fit(pairs, labels)
    assert as_target(clf).threshold == 0.7
    np.testing.assert_array_equal(as_target(clf).components, learner.components_)
    target = as_target(learner)
    assert resolve_threshold(target) == 3.5 and resolve_threshold(target, 2) == 2.0
    with pytest.raises(ValueError, match="no threshold of its own"):
        resolve_threshold(as_target(FixedMetric(np.eye(2))))
    with pytest.raises(TypeError, match="threshold must be a number"):
        resolve_threshold(target, "high")
    with pytest.raises(ValueError, match="finite"):
        resolve_threshold(target, np.inf)


@pytest.mark.metric_learn
def test_metric_learn_pair_threshold_is_squared(wine):
    import metric_learn as ml

    X, y = wine
    pairs, labels, _ = make_pairs(X, y, 60, random_state=0)
    itml = ml.ITML(random_state=0).fit(pairs, labels)
    target = as_target(itml)
    assert target.threshold == pytest.approx(itml.threshold_**2)
    assert np.all((target.pair_distance(pairs) <= itml.threshold_) == (itml.predict(pairs) == 1))


def test_the_hook_plugs_in_any_model_and_a_target_is_its_own():
    cubes = Cubes(np.eye(2), threshold=1.0)

    class Wrapper:
        def __skrobust_target__(self):
            return cubes

    class Broken:
        def __skrobust_target__(self):
            return np.eye(2)

    assert as_target(Wrapper()) is cubes and as_target(FrozenEstimator(cubes)) is cubes
    with pytest.raises(TypeError, match="must return a MetricTarget"):
        as_target(Broken())


@pytest.mark.parametrize("thing", [None, 3.0, "LMNN", MinMaxScaler()])
def test_the_adapter_names_what_it_accepts(thing):
    with pytest.raises(TypeError, match="not a Mahalanobis model nor a metric target"):
        as_target(thing)
    with pytest.raises(NotFittedError):
        as_target(RobustMetricLearner())


def test_linear_only_code_refuses_a_nonlinear_target_clearly():
    with pytest.raises(TypeError, match="is linear-only: .*for a nonlinear target use"):
        metric_norms(Cubes(np.eye(2)))


@pytest.mark.parametrize(
    "components, bias, threshold, error, match",
    [
        ([1.0, 2.0], None, None, TypeError, "2-d array"),
        ([["a"]], None, None, TypeError, "real numbers"),
        ([[np.nan]], None, None, ValueError, "NaN"),
        ([[1.0]], [0.0, 1.0], None, ValueError, "bias must have shape"),
        ([[1.0]], None, np.inf, ValueError, "threshold must be finite"),
    ],
)
def test_linear_target_validates_what_it_holds(components, bias, threshold, error, match):
    with pytest.raises(error, match=match):
        LinearTarget(components, bias, threshold)


def test_targets_pickle_without_their_cache_and_keep_their_type():
    metric = MahalanobisMetric(np.array([[1.0, 2.0]]), threshold=0.5)
    metric_norms(metric)
    assert metric._cache
    again = pickle.loads(pickle.dumps(metric))
    assert type(again) is MahalanobisMetric and not again._cache
    assert again.threshold == 0.5
    np.testing.assert_array_equal(again.components, metric.components)
    # A new threshold keeps the norms of W, which do not depend on it.
    moved = metric.with_threshold(2.0)
    assert moved.threshold == 2.0 and metric_norms(moved).inf_to_2 == metric_norms(metric).inf_to_2


def test_knn_targets_from_a_pipeline_a_bare_knn_and_references_agree(wine):
    X, y = wine
    W = np.random.default_rng(0).normal(size=(4, 13))
    pipe = make_pipeline(FixedMetric(W), KNeighborsClassifier(5)).fit(X, y)
    from_pipe = as_knn_target(FrozenEstimator(pipe))
    from_refs = as_knn_target(LinearTarget(W), X, y, n_neighbors=5)
    bare = as_knn_target(KNeighborsClassifier(5).fit(X, y))
    assert as_knn_target(from_pipe) is from_pipe
    np.testing.assert_array_equal(from_pipe.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(from_refs.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(bare.target.components, np.eye(13))
    assert from_pipe.n_neighbors == 5 and from_pipe.n_classes == len(np.unique(y))
    np.testing.assert_allclose(from_pipe.references, X @ W.T)
    np.testing.assert_array_equal(from_pipe.classes[from_pipe.reference_labels], y)
    # k is capped at the number of references.
    assert as_knn_target(LinearTarget(W), X[:2], y[:2], n_neighbors=5).n_neighbors == 2


def test_knn_target_errors_say_what_is_missing(wine):
    X, y = wine
    with pytest.raises(TypeError, match="not a kNN classifier.*without them"):
        as_knn_target(FixedMetric(np.eye(13)))
    with pytest.raises(ValueError, match="uniform"):
        as_knn_target(KNeighborsClassifier(3, weights="distance").fit(X, y))
    with pytest.raises(ValueError, match="embeds into 2"):
        KnnTarget(LinearTarget(np.ones((2, 13))), KNeighborsClassifier(3).fit(X, y))
    with pytest.raises(NotFittedError):
        as_knn_target(make_pipeline(FixedMetric(np.eye(13)), KNeighborsClassifier(3)))
