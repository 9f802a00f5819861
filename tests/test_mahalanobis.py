"""The adapter reads M and W from every kind of fitted Mahalanobis model."""

import pickle
import warnings

import metric_learn as ml
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, StandardScaler

from skrobust import RobustMetricLearner, calibrate_threshold, mahalanobis_metric
from skrobust._mahalanobis import best_threshold, decision_threshold, threshold_ties
from skrobust.datasets import load_wine, make_pairs

SUPERVISED = {
    "RobustMetricLearner": lambda: RobustMetricLearner(max_iter=100, random_state=0),
    "LMNN": lambda: ml.LMNN(n_neighbors=3, max_iter=50, random_state=0),
    "ITML_Supervised": lambda: ml.ITML_Supervised(random_state=0),
    "SCML_Supervised": lambda: ml.SCML_Supervised(random_state=0),
    "MMC_Supervised": lambda: ml.MMC_Supervised(max_iter=20, random_state=0),
    "LFDA": lambda: ml.LFDA(k=3),
    "metric_learn.NCA": lambda: ml.NCA(max_iter=50, random_state=0),
    "sklearn NCA": lambda: NeighborhoodComponentsAnalysis(random_state=0),
}


@pytest.fixture(scope="module")
def wine():
    return load_wine(positive_class=None)


@pytest.fixture(scope="module")
def wine_pairs(wine):
    X, y = wine
    return make_pairs(X, y, 80, random_state=1)[:2]


@pytest.fixture(scope="module", params=sorted(SUPERVISED))
def fitted(request, wine):
    X, y = wine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # metric-learn's convergence and deprecation chatter
        return SUPERVISED[request.param]().fit(X, y)


def _own_squared_distances(transformer, pairs):
    diff = transformer.transform(pairs[:, 0]) - transformer.transform(pairs[:, 1])
    return np.einsum("ij,ij->i", diff, diff)


def test_adapter_distances_equal_the_models_own(fitted, wine_pairs):
    pairs, _ = wine_pairs
    D = mahalanobis_metric(fitted).pair_distances(pairs)
    np.testing.assert_allclose(D, _own_squared_distances(fitted, pairs), rtol=1e-8, atol=0)
    assert D.max() > 0


def test_adapter_survives_clone_of_frozen_estimator(fitted, wine_pairs):
    pairs, _ = wine_pairs
    frozen = clone(FrozenEstimator(fitted))
    D = mahalanobis_metric(frozen).pair_distances(pairs)
    np.testing.assert_allclose(D, _own_squared_distances(fitted, pairs), rtol=1e-8, atol=0)


@pytest.mark.parametrize("scaler", [MinMaxScaler(), StandardScaler(), MaxAbsScaler()])
def test_scalers_compose_into_the_metric(scaler, wine, wine_pairs):
    X, y = wine
    pairs, _ = wine_pairs
    raw_pairs = pairs * 7.0 - 2.0  # inputs far from the unit box, as a raw user sees them
    pipe = make_pipeline(scaler, RobustMetricLearner(max_iter=30)).fit(X * 7.0 - 2.0, y)
    metric = mahalanobis_metric(pipe)
    np.testing.assert_allclose(
        metric.pair_distances(raw_pairs), _own_squared_distances(pipe, raw_pairs), rtol=1e-8
    )
    np.testing.assert_allclose(metric.transform(raw_pairs[:, 0]), pipe.transform(raw_pairs[:, 0]))
    frozen = mahalanobis_metric(clone(FrozenEstimator(pipe)))
    np.testing.assert_allclose(frozen.components, metric.components)


@pytest.mark.parametrize("learner", [ml.ITML, ml.MMC])
def test_pair_learner_threshold_is_read_squared(learner, wine_pairs):
    pairs, labels = wine_pairs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = learner(random_state=0, max_iter=50).fit(pairs, labels)
        own = model.predict(pairs)
    metric = mahalanobis_metric(FrozenEstimator(model))
    assert metric.threshold == pytest.approx(model.threshold_**2)
    D = metric.pair_distances(pairs)
    predicted = np.where(D <= decision_threshold(metric.threshold), 1, -1)
    # metric-learn calibrates threshold_ at a training pair's own distance: that pair is a tie
    # (its D, computed another way, lands a few ulps either side), decided similar.
    ties = threshold_ties(D, metric.threshold)
    assert ties.any()
    np.testing.assert_array_equal(predicted[ties], 1)
    np.testing.assert_array_equal(predicted[~ties], own[~ties])


def test_ties_are_the_pairs_within_rounding_of_the_threshold():
    t = 0.7316099628651198
    D = t * np.array([1 - 1e-6, 1 - 1e-12, 1.0, 1 + 1e-12, 1 + 1e-6])
    np.testing.assert_array_equal(threshold_ties(D, t), [False, True, True, True, False])
    np.testing.assert_array_equal(D <= decision_threshold(t), [True, True, True, True, False])
    assert decision_threshold(-2.0) < -2.0 + 1e-8  # a negative threshold stays "never similar"
    assert not threshold_ties(0.0, -2.0)


def test_skrobust_learner_threshold_is_gamma(wine):
    X, y = wine
    model = RobustMetricLearner(gamma=3.5, max_iter=5).fit(X, y)
    assert mahalanobis_metric(model).threshold == 3.5


@pytest.mark.parametrize("thing", [PCA(n_components=2), "LMNN", None, 3.0])
def test_adapter_rejects_what_is_no_mahalanobis_model(thing, wine):
    if isinstance(thing, PCA):
        thing = thing.fit(wine[0])
    with pytest.raises(TypeError, match="not a Mahalanobis model"):
        mahalanobis_metric(thing)


def test_adapter_rejects_non_affine_pipeline_steps(wine):
    X, y = wine
    pipe = make_pipeline(Normalizer(), RobustMetricLearner(max_iter=5)).fit(X, y)
    with pytest.raises(TypeError, match="cannot be composed"):
        mahalanobis_metric(pipe)


def test_adapter_rejects_clipping_minmax_scaler(wine):
    X, y = wine
    pipe = make_pipeline(MinMaxScaler(clip=True), RobustMetricLearner(max_iter=5)).fit(X, y)
    with pytest.raises(ValueError, match="clip=True"):
        mahalanobis_metric(pipe)


def test_adapter_needs_a_fitted_model():
    with pytest.raises(NotFittedError):
        mahalanobis_metric(RobustMetricLearner())
    with pytest.raises(NotFittedError):
        mahalanobis_metric(NeighborhoodComponentsAnalysis())


def test_metric_pickles(fitted, wine_pairs):
    pairs, _ = wine_pairs
    metric = mahalanobis_metric(fitted)
    again = pickle.loads(pickle.dumps(metric))
    np.testing.assert_array_equal(again.pair_distances(pairs), metric.pair_distances(pairs))


@given(
    distances=hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 10)),
    data=st.data(),
)
def test_best_threshold_is_at_least_as_accurate_as_any_split(distances, data):
    y = data.draw(hnp.arrays(np.int64, distances.shape, elements=st.sampled_from([-1, 1])))
    t = best_threshold(distances, y)
    accuracy = np.mean(np.where(distances <= decision_threshold(t), 1, -1) == y)
    for candidate in np.concatenate(([-1.0], distances)):
        split = distances <= decision_threshold(candidate)
        assert accuracy >= np.mean(np.where(split, 1, -1) == y)


def test_best_threshold_between_adjacent_floats_keeps_them_apart():
    # Found by hypothesis: the midpoint of two adjacent floats rounds onto the upper one.
    distances = np.array([np.nextafter(10.0, 0.0), 10.0, 20.0])
    # A split inside the tie band cannot be decided alike in every batch: it is not made,
    # and the two stay on one side (here the dissimilar one, 2 of 3 right).
    t = best_threshold(distances, np.array([1, -1, -1]))
    np.testing.assert_array_equal(distances <= decision_threshold(t), [False, False, False])
    t = best_threshold(distances, np.array([1, 1, -1]))
    np.testing.assert_array_equal(distances <= decision_threshold(t), [True, True, False])
    far = np.array([9.0, 10.0])
    t = best_threshold(far, np.array([1, -1]))
    np.testing.assert_array_equal(far <= decision_threshold(t), [True, False])


def test_calibrate_threshold_validates_its_inputs(fitted, wine_pairs):
    pairs, labels = wine_pairs
    with pytest.raises(ValueError, match=r"\+1 \(similar\) and -1"):
        calibrate_threshold(fitted, pairs, np.where(labels == 1, 1, 0))
    with pytest.raises(ValueError, match="shape"):
        calibrate_threshold(fitted, pairs[:, 0], labels)
    with pytest.raises(ValueError, match="features"):
        calibrate_threshold(fitted, pairs[:, :, :5], labels)
