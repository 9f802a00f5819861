"""Tests of AckMetricAttack: budgets, box, best iterate, modes and scikit-learn conventions."""

import pickle

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrobust import AckMetricAttack, AttackResult, mahalanobis_metric
from skrobust import _attack_core as attack_core
from skrobust._mahalanobis import decision_threshold, threshold_ties
from skrobust.datasets import load_breast_cancer, load_wine, make_pairs, make_triplets
from skrobust.testing import FixedMetric

from .strategies import attack_settings, boxes, components, pairs_in_box, triplets_in_box

# Tolerance of the budget checks: outputs are x + d with |d| <= eps exactly; the subtraction
# (x + d) - x that the test makes rounds by a few ulps of x.
TOL = 1e-12


def budget_used(adv, X, budget):
    """Per pair: ``||d_i||_inf + ||d_j||_inf`` (shared) or their maximum (per point)."""
    norms = np.abs(adv - X).max(axis=-1)
    return norms.sum(axis=-1) if budget == "shared" else norms.max(axis=-1)


@st.composite
def pair_problems(draw):
    """A random model, pairs in a random box, a threshold among the pairs' distances."""
    n_features = draw(st.integers(1, 4))
    W = draw(components(n_features, draw(st.integers(1, n_features + 1))))
    box = draw(boxes())
    pairs = draw(pairs_in_box(n_features, box=box))
    D = mahalanobis_metric(FixedMetric(W)).pair_distances(pairs)
    q = draw(st.floats(0.0, 1.0))
    threshold = float(np.quantile(D, q)) + draw(st.sampled_from([0.0, 1e-3, -1e-3]))
    return W, box, pairs, threshold


@st.composite
def triplet_problems(draw):
    n_features = draw(st.integers(1, 4))
    W = draw(components(n_features, draw(st.integers(1, n_features + 1))))
    box = draw(boxes())
    return W, box, draw(triplets_in_box(n_features, box=box))


# Restarts (how many, and the seed of their random starts): every property below holds with
# or without them.
restarts = st.tuples(st.integers(0, 2), st.integers(0, 2**16))


def pair_attack(problem, setting, budget, restart):
    """The fitted attack of a pair property test (``eps`` is the default of ``attack``)."""
    W, box, _, threshold = problem
    eps, step_size, max_iter = setting
    n_restarts, seed = restart
    return AckMetricAttack(
        FixedMetric(W), eps=eps, step_size=step_size, max_iter=max_iter, budget=budget,
        threshold=threshold, feature_range=box, n_restarts=n_restarts, random_state=seed,
    ).fit()  # fmt: skip


# -- properties (hypothesis) -----------------------------------------------------------


@given(pair_problems(), attack_settings(), st.sampled_from(["shared", "per_point"]), restarts)
def test_pair_outputs_lie_in_the_box_and_within_the_budget(problem, setting, budget, restart):
    W, box, pairs, threshold = problem
    eps = setting[0]
    attack = pair_attack(problem, setting, budget, restart)
    result = attack.attack(pairs)
    adv = result.adversarial[0]
    assert adv.shape == pairs.shape
    assert adv.min() >= box[0] and adv.max() <= box[1]
    assert np.all(budget_used(adv, pairs, budget) <= eps + TOL)
    if eps == 0.0:
        np.testing.assert_array_equal(adv, pairs)
    # Restarts never lose a pair the run from the clean input flips.
    plain = clone(attack).set_params(n_restarts=0).fit().attack(pairs)
    assert np.all(result.success[0] | ~plain.success[0])


@given(pair_problems(), attack_settings(), st.sampled_from(["shared", "per_point"]), restarts)
@example(  # D within the tie band of the threshold: a tie, predicted (and pushed as) similar.
    problem=(
        np.array([[1.84171988]]),
        (0.0, 2.5),
        np.array([[[1.2109375], [0.0]]]),
        4.973826254754338,
    ),
    setting=(0.5, 0.5, 1),
    budget="shared",
    restart=(0, 0),
)
def test_pair_attack_never_moves_the_distance_the_wrong_way(problem, setting, budget, restart):
    W, box, pairs, threshold = problem
    eps = setting[0]
    attack = pair_attack(problem, setting, budget, restart)
    result = attack.attack(pairs, eps=[eps, 2 * eps])
    # Similar means D <= the threshold widened by the tie band, as the model predicts.
    decide = decision_threshold(threshold)
    similar = result.distances_before <= decide
    for D in result.distances_after:
        assert np.all(D[similar] >= result.distances_before[similar])
        assert np.all(D[~similar] <= result.distances_before[~similar])
    # The success mask is the change of the prediction; the distances are those of the
    # returned pairs (up to rounding: recomputed here by another formula, ||W z||^2).
    after = result.distances_after[1]
    np.testing.assert_array_equal(result.success[1], (after > decide) == similar)
    D_out = mahalanobis_metric(FixedMetric(W)).pair_distances(result.adversarial[1])
    np.testing.assert_allclose(D_out, after, rtol=1e-9, atol=1e-12)
    clear = np.abs(D_out - decide) > 1e-9 * (1.0 + abs(threshold))
    np.testing.assert_array_equal(result.success[1][clear], ((D_out > decide) == similar)[clear])


@given(pair_problems(), attack_settings())
@example(  # The box stops x_i: only a shared budget lets x_j take all of eps.
    problem=(np.array([[1.0]]), (0.0, 1.0), np.array([[[1.0], [0.7]]]), 0.2),
    setting=(0.2, 0.05, 10),
)
def test_shared_budget_is_at_least_as_strong_as_the_fixed_half_split(problem, setting):
    W, box, pairs, threshold = problem
    eps, step_size, max_iter = setting
    params = dict(step_size=step_size, max_iter=max_iter, threshold=threshold, feature_range=box)
    shared = AckMetricAttack(FixedMetric(W), budget="shared", **params).fit()
    # per_point at eps / 2 is exactly the fixed split eps/2 + eps/2.
    fixed = AckMetricAttack(FixedMetric(W), budget="per_point", **params).fit()
    r_shared = shared.attack(pairs, eps=eps)
    r_fixed = fixed.attack(pairs, eps=eps / 2)
    assert r_shared.success.sum() >= r_fixed.success.sum()
    assert np.all(r_shared.success | ~r_fixed.success)
    similar = r_shared.distances_before <= threshold
    scale = 1e-9 * (1.0 + np.abs(r_fixed.distances_after[0]))
    gain = np.where(similar, 1, -1) * (r_shared.distances_after[0] - r_fixed.distances_after[0])
    assert np.all(gain[~r_fixed.success[0]] >= -scale[~r_fixed.success[0]])


@given(triplet_problems(), attack_settings(), restarts)
def test_triplet_attack_moves_only_the_positive_within_budget(problem, setting, restart):
    W, box, triplets = problem
    eps, step_size, max_iter = setting
    n_restarts, seed = restart
    attack = AckMetricAttack(
        FixedMetric(W), mode="triplets", step_size=step_size, max_iter=max_iter,
        feature_range=box, n_restarts=n_restarts, random_state=seed,
    ).fit()  # fmt: skip
    result = attack.attack(triplets, eps=eps)
    adv = result.adversarial[0]
    np.testing.assert_array_equal(adv[:, [0, 2]], triplets[:, [0, 2]])
    assert np.all(np.abs(adv[:, 1] - triplets[:, 1]).max(axis=-1) <= eps + TOL)
    assert adv.min() >= box[0] and adv.max() <= box[1]
    closer = result.distances_before <= result.thresholds
    D = result.distances_after[0]
    assert np.all(D[closer] >= result.distances_before[closer])
    assert np.all(D[~closer] <= result.distances_before[~closer])
    np.testing.assert_array_equal(result.success[0], (D <= result.thresholds) != closer)


@settings(max_examples=25)
@given(
    st.integers(0, 10_000),
    st.floats(0.0, 0.3),
    st.floats(0.005, 0.2),
    st.integers(0, 10),
    st.sampled_from([None, (0.0, 1.0)]),
    st.integers(0, 2),
)
def test_knn_outputs_lie_in_the_box_and_within_eps(
    seed, eps, step_size, max_iter, box, n_restarts
):
    rng = np.random.default_rng(seed)
    X = rng.random((40, 3))
    y = (X[:, 0] + 0.3 * rng.random(40) > 0.6).astype(int)
    W = rng.normal(size=(3, 3))
    attack = AckMetricAttack(
        FixedMetric(W), mode="knn", eps=eps, step_size=step_size, max_iter=max_iter,
        n_neighbors=5, feature_range=box, n_restarts=n_restarts, random_state=seed,
    ).fit(X[:25], y[:25])  # fmt: skip
    result = attack.attack(X[25:], y[25:])
    adv = result.adversarial[0]
    assert np.all(np.abs(adv - X[25:]) <= eps + TOL)
    if box is not None:
        assert adv.min() >= 0.0 and adv.max() <= 1.0
    if eps == 0.0:
        np.testing.assert_array_equal(adv, X[25:])
    pred = attack.classifier_.predict(attack.metric_.transform(adv))
    np.testing.assert_array_equal(result.predictions_after[0], pred)
    np.testing.assert_array_equal(result.success[0], pred != result.predictions_before)


# -- examples ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine()
    nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)
    pairs, labels, _ = make_pairs(X, y, 80, random_state=0)
    return X, y, nca, pairs, labels


@pytest.fixture(scope="module")
def cancer_knn():
    X, y = load_breast_cancer()
    pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0), KNeighborsClassifier(3))
    return X, y, pipe.fit(X[::2], y[::2])


def test_shared_budget_gives_the_whole_budget_to_the_free_point():
    # d = 1, W = 1, x_i = 1 at the top of the box: with the fixed split x_j moves eps/2
    # (D = 0.16, not enough), with the shared budget it moves eps (D = 0.25 > threshold).
    attack = AckMetricAttack(FixedMetric([[1.0]]), eps=0.2, step_size=0.05, threshold=0.2)
    pairs = np.array([[[1.0], [0.7]]])
    D = attack.set_params(budget="shared").fit().attack(pairs).distances_after[0, 0]
    assert D == pytest.approx(0.5**2)
    D = attack.set_params(budget="per_point", eps=0.1).fit().attack(pairs).distances_after[0, 0]
    assert D == pytest.approx(0.4**2)


def test_both_points_move_each_step():
    attack = AckMetricAttack(FixedMetric(np.eye(2)), eps=0.5, step_size=0.01, max_iter=1)
    pairs = np.array([[[0.5, 0.5], [0.4, 0.6]]])
    adv = attack.set_params(threshold=1.0, budget="per_point").fit().transform(pairs)
    np.testing.assert_allclose(adv, [[[0.51, 0.49], [0.39, 0.61]]])


def test_similar_pairs_pushed_apart_dissimilar_pulled_together(wine):
    X, y, nca, pairs, labels = wine
    result = AckMetricAttack(FrozenEstimator(nca), threshold=25.0).fit().attack(pairs)
    similar = result.distances_before <= 25.0
    assert similar.any() and (~similar).any()
    assert np.all(result.distances_after[0][similar] > result.distances_before[similar])
    assert np.all(result.distances_after[0][~similar] < result.distances_before[~similar])


def test_multi_eps_call_equals_separate_calls(wine):
    X, y, nca, pairs, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0).fit()
    result = attack.attack(pairs, eps=[0.05, 0.1, 0.15])
    assert isinstance(result, AttackResult)
    assert result.success.shape == (3, len(pairs))
    for k, eps in enumerate([0.05, 0.1, 0.15]):
        np.testing.assert_array_equal(
            result.adversarial[k], attack.attack(pairs, eps=eps).adversarial[0]
        )
    assert np.all(np.diff(result.success_rate) >= 0)


def test_first_successful_iterate_is_returned():
    # One coordinate, W = 1: the pair becomes dissimilar after the first step and stops there.
    attack = AckMetricAttack(FixedMetric([[1.0]]), eps=0.4, step_size=0.05, max_iter=10)
    result = (
        attack.set_params(threshold=0.01, budget="per_point")
        .fit()
        .attack(np.array([[[0.5], [0.45]]]))
    )
    assert result.success[0, 0]
    np.testing.assert_allclose(result.adversarial[0, 0, :, 0], [0.55, 0.4])


def test_chunked_attack_equals_unchunked(wine, monkeypatch):
    X, y, nca, pairs, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0).fit()
    full = attack.transform(pairs)
    monkeypatch.setattr(attack_core, "CHUNK_ELEMENTS", 3 * X.shape[1])
    # BLAS may round a product of fewer rows differently, by an ulp.
    np.testing.assert_allclose(attack.transform(pairs), full, rtol=0, atol=1e-12)


def test_random_restarts_flip_more_and_are_reproducible(wine):
    X, y, nca, pairs, _ = wine
    # Two short steps: the clean start reaches few pairs; random starts reach more.
    attack = AckMetricAttack(
        FrozenEstimator(nca), eps=0.1, max_iter=2, threshold=25.0, n_restarts=5, random_state=0
    ).fit()
    plain = clone(attack).set_params(n_restarts=0).fit().attack(pairs)
    restarted = attack.attack(pairs)
    assert np.all(restarted.success[0] | ~plain.success[0])
    assert restarted.success[0].sum() > plain.success[0].sum()
    # Pairs no run flips keep the output of the run from the clean input.
    kept = ~restarted.success[0]
    np.testing.assert_array_equal(restarted.adversarial[0][kept], plain.adversarial[0][kept])
    # An int seed gives the same draws at every call; another seed, other starts.
    np.testing.assert_array_equal(attack.attack(pairs).adversarial, restarted.adversarial)
    other = clone(attack).set_params(random_state=1).fit().attack(pairs)
    assert not np.array_equal(other.adversarial, restarted.adversarial)


def test_without_restarts_random_state_is_unused(wine):
    X, y, nca, pairs, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0, random_state=0).fit()
    other = clone(attack).set_params(random_state=1).fit()
    np.testing.assert_array_equal(attack.transform(pairs), other.transform(pairs))


def test_knn_restarts_flip_more_points(cancer_knn):
    X, y, pipe = cancer_knn
    params = dict(mode="knn", eps=0.05, max_iter=2, random_state=0)
    plain = AckMetricAttack(FrozenEstimator(pipe), **params).fit().attack(X[1::2])
    restarted = (
        AckMetricAttack(FrozenEstimator(pipe), n_restarts=5, **params).fit().attack(X[1::2])
    )
    assert np.all(restarted.success[0] | ~plain.success[0])
    assert restarted.success[0].sum() > plain.success[0].sum()


def test_knn_attack_lowers_accuracy_and_uses_labels(cancer_knn):
    X, y, pipe = cancer_knn
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn").fit()
    result = attack.attack(X[1::2], y[1::2], eps=[0.0, 0.1])
    clean, adv = (result.predictions_after == y[1::2]).mean(axis=1)
    assert clean == pipe.score(X[1::2], y[1::2])
    assert adv < clean - 0.1
    # Without y the attack targets the predictions; transform does that.
    out = attack.transform(X[1::2])
    pred = pipe.predict(X[1::2])
    assert np.mean(pipe.predict(out) != pred) > 0.1
    # y decides the direction: told each point belongs to the class it is not predicted as,
    # the attack pulls it toward its prediction and flips none.
    assert attack.attack(X[1::2], pred).success_rate[0] > 0.1
    assert attack.attack(X[1::2], 1 - pred).success_rate[0] == 0.0


def test_knn_attack_rejects_labels_the_classifier_never_saw(cancer_knn):
    X, y, pipe = cancer_knn
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn").fit()
    with pytest.raises(ValueError, match=r"labels the classifier never saw: \[7\]"):
        attack.attack(X[1:9:2], [0, 1, 7, 1])


def test_plain_knn_classifier_is_attacked_as_the_identity_metric(cancer_knn):
    X, y, _ = cancer_knn
    knn = KNeighborsClassifier(3).fit(X[::2], y[::2])
    identity = make_pipeline(FixedMetric(np.eye(X.shape[1])), knn)
    plain = AckMetricAttack(FrozenEstimator(knn), mode="knn", eps=0.05).fit()
    np.testing.assert_array_equal(plain.metric_.components, np.eye(X.shape[1]))
    expected = AckMetricAttack(FrozenEstimator(identity), mode="knn", eps=0.05).fit()
    result = plain.attack(X[1::2], y[1::2])
    np.testing.assert_array_equal(
        result.adversarial, expected.attack(X[1::2], y[1::2]).adversarial
    )
    assert result.success_rate[0] > 0


def test_knn_pipeline_with_scaler_attacks_raw_inputs():
    X, y = load_wine()
    X = 3.0 * X + 1.0  # raw inputs outside the unit box
    pipe = make_pipeline(
        MinMaxScaler(), NeighborhoodComponentsAnalysis(random_state=0), KNeighborsClassifier(3)
    ).fit(X[::2], y[::2])
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=0.3, feature_range=None)
    result = attack.fit().attack(X[1::2], y[1::2])
    np.testing.assert_array_equal(result.predictions_after[0], pipe.predict(result.adversarial[0]))
    assert result.success_rate[0] > 0


def test_knn_references_from_fit(wine):
    X, y, nca, _, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), mode="knn", eps=0.2).fit(X[::2], y[::2])
    assert attack.classifier_.n_neighbors == 3
    result = attack.attack(X[1::2], y[1::2])
    assert result.success_rate[0] > 0


@pytest.mark.metric_learn
def test_metric_learn_pair_threshold_is_used(wine):
    from metric_learn import ITML  # optional dependency: see conftest.py

    X, y, _, pairs, labels = wine
    itml = ITML(random_state=0).fit(pairs, labels)
    attack = AckMetricAttack(FrozenEstimator(itml)).fit()
    assert attack.threshold_ == pytest.approx(itml.threshold_**2)
    result = attack.attack(pairs)
    dissimilar = result.distances_before > result.thresholds
    # Away from ties the attack's clean predictions are metric-learn's; ties are similar.
    ties = threshold_ties(result.distances_before, attack.threshold_)
    assert ties.any()  # metric-learn puts its threshold at a training pair's distance
    assert not dissimilar[ties].any()
    np.testing.assert_array_equal(dissimilar[~ties], itml.predict(pairs)[~ties] == -1)


def test_pair_at_the_threshold_is_similar_whatever_the_batch():
    W = np.array([[1.0, 0.5], [0.0, 2.0]])
    pairs = np.array([[[0.2, 0.3], [0.6, 0.1]], [[0.0, 0.0], [0.3, 0.9]]])
    D = mahalanobis_metric(FixedMetric(W)).pair_distances(pairs)
    # The first pair sits a few ulps above the threshold: a rounding tie, similar.
    attack = AckMetricAttack(FixedMetric(W), threshold=D[0] * (1 - 4e-16), max_iter=0).fit()
    for batch in (pairs, pairs[:1]):
        result = attack.attack(batch)
        assert result.distances_before[0] <= result.thresholds[0]


# -- threads -------------------------------------------------------------------------


def test_concurrent_transforms_match_serial(wine, cancer_knn):
    X, y, nca, pairs, _ = wine
    pair_attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0).fit()
    Xc, yc, pipe = cancer_knn
    knn_attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn").fit()
    jobs = [(pair_attack, pairs), (knn_attack, Xc[1::2])] * 6
    serial = [a.transform(data) for a, data in jobs]
    threaded = Parallel(n_jobs=4, backend="threading")(
        delayed(a.transform)(data) for a, data in jobs
    )
    # Equal up to float rounding: OpenBLAS may sum in another order when several threads call
    # it at once, and an iterate that returns to an earlier point (x + 0.01 - 0.01) differs
    # from it by an ulp, so a tie between them can go either way (seen in CI: 2 of 8,520
    # coordinates, 2.8e-17 apart). Any real divergence would be a step (0.01) or more.
    for s, t in zip(serial, threaded, strict=True):
        np.testing.assert_allclose(s, t, rtol=0, atol=1e-12)


# -- scikit-learn conventions ------------------------------------------------------------


# The kNN mode takes 2-d points, so scikit-learn's common checks apply to it. The pairs and
# triplets modes take 3-d arrays: scikit-learn's checks declare their own inputs (2-d
# arrays) and skip an estimator whose tags say three_d_array only, so for those modes only
# the checks without data run; clone, pickle, pipelines and input errors are tested below.
EXPECTED_FAILED_CHECKS = {
    "check_transformer_n_iter": (
        "max_iter bounds the attack's iterations, which run in transform, not in fit; fit "
        "runs none, so there is no n_iter_ to report after fit."
    ),
}


@parametrize_with_checks(
    [
        AckMetricAttack(
            NeighborhoodComponentsAnalysis(max_iter=10, random_state=0), mode="knn",
            max_iter=3, feature_range=None,
        ),
        AckMetricAttack(
            NeighborhoodComponentsAnalysis(max_iter=10, random_state=0), threshold=1.0
        ),
        AckMetricAttack(NeighborhoodComponentsAnalysis(max_iter=10), mode="triplets"),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS if est.mode == "knn" else {},
)  # fmt: skip
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_frozen_model_survives_clone_and_pickle(wine):
    X, y, nca, pairs, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0)
    expected = attack.fit().transform(pairs)
    np.testing.assert_array_equal(clone(attack).fit().transform(pairs), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(attack)).transform(pairs), expected)


def test_unfitted_model_is_fitted_as_a_clone(wine):
    X, y, _, _, _ = wine
    nca = NeighborhoodComponentsAnalysis(max_iter=5, random_state=0)
    attack = AckMetricAttack(nca, mode="knn").fit(X, y)
    assert not hasattr(nca, "components_")
    assert attack.estimator_ is not nca and hasattr(attack.estimator_, "components_")
    with pytest.raises(ValueError, match="not fitted"):
        AckMetricAttack(nca, threshold=1.0).fit()


def test_attack_as_a_pipeline_step(cancer_knn):
    X, y, pipe = cancer_knn
    frozen = FrozenEstimator(pipe)
    attacked = Pipeline(
        [("attack", AckMetricAttack(frozen, mode="knn", eps=0.1)), ("model", frozen)]
    ).fit(X[::2], y[::2])
    assert attacked.score(X[1::2], y[1::2]) < pipe.score(X[1::2], y[1::2])


def test_inputs_outside_the_box_raise(wine):
    X, y, nca, pairs, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0).fit()
    with pytest.raises(ValueError, match="outside feature_range"):
        attack.transform(pairs + 0.5)
    shifted = attack.set_params(feature_range=None).fit().transform(pairs + 0.5)
    assert shifted.max() > 1.0


@pytest.mark.parametrize(
    "params, match",
    [
        ({"eps": -0.1}, "eps"),
        ({"step_size": 0.0}, "step_size"),
        ({"max_iter": -1}, "max_iter"),
        ({"mode": "pair"}, "mode"),
        ({"budget": "both"}, "budget"),
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"threshold": float("nan")}, "threshold"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_invalid_parameters_name_the_parameter(wine, params, match):
    _, _, nca, _, _ = wine
    with pytest.raises(InvalidParameterError, match=match):
        AckMetricAttack(FrozenEstimator(nca), **{"threshold": 1.0, **params}).fit()


def test_input_errors(wine):
    X, y, nca, pairs, _ = wine
    with pytest.raises(ValueError, match="no decision threshold"):
        AckMetricAttack(FrozenEstimator(nca)).fit()
    with pytest.raises(ValueError, match="feature_range"):
        AckMetricAttack(FrozenEstimator(nca), threshold=1.0, feature_range=(1, 0)).fit()
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=1.0, eps=[0.1, 0.2]).fit()
    with pytest.raises(ValueError, match="single eps"):
        attack.transform(pairs)
    with pytest.raises(ValueError, match="pairs"):
        attack.attack(pairs[:, 0])
    with pytest.raises(ValueError, match="features"):
        attack.attack(pairs[:, :, :5])
    with pytest.raises(ValueError, match="references"):
        AckMetricAttack(FrozenEstimator(nca), mode="knn").fit()
    triplets, _ = make_triplets(X, y, 3, random_state=0)
    triplet_attack = AckMetricAttack(FrozenEstimator(nca), mode="triplets").fit()
    with pytest.raises(ValueError, match="triplets"):
        triplet_attack.transform(pairs)
    with pytest.raises(ValueError, match="pairs"):
        attack.attack(triplets)
    assert triplet_attack.transform(triplets).shape == triplets.shape
    with pytest.raises(ValueError, match="Complex data not supported"):
        attack.attack(pairs.astype(complex))
    with pytest.raises(TypeError, match="strings"):
        attack.attack(pairs.astype(str))
    with pytest.raises(TypeError, match="eps must be a real number"):
        attack.attack(pairs, eps=0.1 + 0j)


def test_min_max_scaler_overshoot_is_accepted_never_clipped(wine):
    X, y, nca, _, _ = wine
    rng = np.random.default_rng(0)
    # scikit-learn's MinMaxScaler (x * scale + min) rounds past 1 on some data.
    for _ in range(100):
        raw = rng.normal(size=(40, X.shape[1])) * rng.uniform(0.1, 100)
        scaled = MinMaxScaler().fit_transform(raw)
        if scaled.max() > 1.0:
            break
    assert scaled.max() > 1.0
    pairs = scaled.reshape(20, 2, -1)
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=1.0).fit()
    result = attack.attack(pairs, eps=[0.0, 0.1])
    np.testing.assert_array_equal(result.adversarial[0], pairs)  # not clipped
    assert result.adversarial.max() <= scaled.max() and result.adversarial.min() >= 0.0
    assert result.success_rate[1] > 0
    knn = AckMetricAttack(FrozenEstimator(nca), mode="knn").fit(X, y)
    assert knn.transform(scaled).max() <= scaled.max()
    # Beyond a few ulps: an error that shows the value in full.
    with pytest.raises(ValueError, match=r"1\.000000001\b"):
        attack.attack(np.where(pairs == scaled.max(), 1.000000001, pairs))
    with pytest.raises(ValueError, match=r"1\.0000000000000018"):
        attack.attack(np.where(pairs == scaled.max(), 1.0000000000000018, pairs))


@pytest.mark.parametrize("n_jobs, threads", [(None, 1), (3, 3), (20, 8), (-1, 8), (-2, 7)])
def test_n_jobs_has_scikit_learns_meaning(wine, monkeypatch, n_jobs, threads):
    from numba import config

    monkeypatch.setattr(config, "NUMBA_NUM_THREADS", 8)
    _, _, nca, _, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=1.0, n_jobs=n_jobs).fit()
    assert attack._n_threads() == threads


def test_kernel_threads_and_verbose_do_not_change_results(wine, capsys):
    X, y, nca, pairs, _ = wine
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0).fit()
    expected = attack.transform(pairs)
    for n_jobs in (2, -1):
        np.testing.assert_array_equal(attack.set_params(n_jobs=n_jobs).transform(pairs), expected)
    attack.set_params(verbose=1).attack(pairs, eps=[0.05, 0.1])
    assert "eps=0.05: success rate" in capsys.readouterr().out


def test_refit_on_another_model_and_feature_mismatch(wine, cancer_knn):
    X, y, nca, pairs, _ = wine
    Xc, yc, pipe = cancer_knn
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn").fit()
    assert attack.n_features_in_ == Xc.shape[1]
    attack.set_params(estimator=FrozenEstimator(nca)).fit(X, y)
    assert attack.n_features_in_ == X.shape[1]
    with pytest.raises(ValueError, match="features"):
        attack.fit(Xc, yc)


@settings(max_examples=60)
@given(
    st.integers(1, 3),
    st.integers(0, 10_000),
    st.one_of(st.floats(1e-3, 0.3), st.just(1.0)),
    st.sampled_from([None, (0.0, 1.0)]),
)
def test_knn_attack_flips_every_clearly_breakable_two_reference_1nn_point(d, seed, eps, box):
    # 1-NN over references a (class 0) and b (class 1): the vote flips iff
    # min over [l, u] of D_b - D_a is negative, and that difference is linear in delta
    # (gradient c = 2 W^T W (a - b)), so its minimiser is the corner sign(-c), which one
    # full-budget sign step reaches. An attack that misses such a point is broken.
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, d))
    refs, z = rng.random((2, d)), rng.random((1, d))
    one_nn = make_pipeline(FixedMetric(W), KNeighborsClassifier(1)).fit(refs, [0, 1])
    attack = AckMetricAttack(
        FrozenEstimator(one_nn), mode="knn", eps=eps, step_size=eps, max_iter=3,
        n_neighbors=2, feature_range=box,
    ).fit()  # fmt: skip
    D = np.sum((W @ (refs - z).T) ** 2, axis=0)
    own, other = (0, 1) if D[0] <= D[1] else (1, 0)
    c = 2.0 * W.T @ W @ (refs[own] - refs[other])
    lower, upper = np.full(d, -eps), np.full(d, eps)
    if box is not None:
        lower, upper = np.maximum(lower, box[0] - z[0]), np.minimum(upper, box[1] - z[0])
    margin = D[other] - D[own] + np.minimum(c * lower, c * upper).sum()
    result = attack.attack(z)
    if margin < -1e-9 * (D.sum() + eps * np.abs(c).sum()):
        assert result.success[0, 0]
    if margin > 0:
        assert not result.success[0, 0]


def _knn_objective(attack, X, y_idx):
    """The kNN attack's lexicographic objective at ``X``, both parts maximised: how many of
    the classifier's ``n_neighbors`` nearest references have another label than ``y_idx``,
    then eq. (23)'s ``sum_r s_r D(x, x_r)`` over the attack's ``n_neighbors`` nearest
    (``s_r = +1`` for a reference of label ``y_idx``, pushed away, ``-1`` otherwise)."""
    knn = attack.classifier_
    D = np.sum((attack.metric_.transform(X)[:, None, :] - knn._fit_X[None, :, :]) ** 2, axis=-1)
    order = np.argsort(D, axis=1)
    labels = knn._y[order]
    count = np.sum(labels[:, : knn.n_neighbors] != y_idx[:, None], axis=1)
    m = attack.n_neighbors
    s = np.where(labels[:, :m] == y_idx[:, None], 1.0, -1.0)
    loss = np.sum(s * np.take_along_axis(D, order[:, :m], axis=1), axis=1)
    return count, loss


@settings(max_examples=30)
@given(st.integers(0, 10_000), st.floats(0.01, 0.3), st.sampled_from([None, (0.0, 1.0)]))
def test_knn_attack_never_returns_a_point_worse_than_the_clean_one(seed, eps, box):
    # Where the vote does not flip, the returned iterate is the best one seen, the clean
    # input included: its objective is never worse than the clean input's.
    rng = np.random.default_rng(seed)
    X = rng.random((340, 3))
    y = (X[:, 0] + 0.3 * rng.random(340) > 0.6).astype(int)
    attack = AckMetricAttack(
        FixedMetric(rng.normal(size=(3, 3))), mode="knn", eps=eps, step_size=eps / 4,
        max_iter=8, n_neighbors=6, feature_range=box,
    ).fit(X[:40], y[:40])  # fmt: skip
    result = attack.attack(X[40:])
    kept = ~result.success[0]
    y_idx = result.predictions_before[kept]
    count0, loss0 = _knn_objective(attack, X[40:][kept], y_idx)
    count1, loss1 = _knn_objective(attack, result.adversarial[0][kept], y_idx)
    tol = 1e-9 * (np.abs(loss0) + 1.0)
    assert np.all((count1 > count0) | ((count1 == count0) & (loss1 >= loss0 - tol)))
