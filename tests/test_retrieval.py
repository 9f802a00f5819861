"""Retrieval metrics (Recall@K, NMI), the retrieval attack and the retrieval scorers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skrobust.retrieval import (
    make_retrieval_scorer,
    nmi_score,
    recall_at_k,
    retrieval_attack,
    retrieval_scores,
)
from skrobust.testing import FixedMetric


def _brute_recall(Eq, yq, Eg, yg, self_index, k):
    """Recall@K by sorting each query's gallery with other-class points first among ties."""
    hits = []
    for i in range(len(Eq)):
        rows = [j for j in range(len(Eg)) if j != self_index[i]]
        d = ((Eg[rows] - Eq[i]) ** 2).sum(axis=1)
        same = yg[rows] == yq[i]
        order = np.lexsort((same, d))  # by distance, other classes first within a tie
        hits.append(same[order[:k]].any())
    return np.mean(hits)


@settings(deadline=None)
@given(
    st.integers(3, 12).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 2), min_size=n, max_size=n),
            # Few distinct values: ties between distances are common.
            st.lists(st.integers(-2, 2), min_size=2 * n, max_size=2 * n),
            st.integers(1, 4),
        )
    )
)
def test_recall_matches_sorting_the_gallery(drawn):
    labels, values, k = drawn
    y = np.array(labels)
    E = np.array(values, dtype=float).reshape(-1, 2)
    counts = np.bincount(y)
    if np.any(counts[y] < 2):  # a query alone in its class has no defined recall
        with pytest.raises(ValueError, match="undefined"):
            recall_at_k(E, y, E, y, k, self_index=np.arange(len(y)))
        return
    got = recall_at_k(E, y, E, y, k, self_index=np.arange(len(y)))
    assert got == pytest.approx(_brute_recall(E, y, E, y, np.arange(len(y)), k))


def test_a_query_never_retrieves_itself():
    # Query 0's own point would be its nearest; without it, its nearest is point 2 (class 1).
    E = np.array([[0.0], [10.0], [0.1]])
    y = np.array([0, 0, 1])
    assert recall_at_k(E[:1], y[:1], E, y, 1, self_index=[0]) == 0.0
    # A separate copy of the same value in the gallery is another item: it is retrieved.
    E2 = np.array([[0.0], [0.0], [0.1]])
    assert recall_at_k(E2[:1], y[:1], E2, y, 1, self_index=[0]) == 1.0


def test_query_and_gallery_rows_select_the_split():
    X = np.array([[0.0], [0.05], [0.5], [0.55], [0.2]])
    y = np.array([0, 0, 1, 1, 1])
    metric = FixedMetric(np.eye(1)).fit()
    # Every point queries all the others: point 1's nearest other point is 0 (hit); point
    # 4's (0.2) is 1 (0.05, class 0): miss.
    scores = retrieval_scores(metric, X, y, k=1, nmi=False)
    assert scores["recall@1"] == pytest.approx(4 / 5)
    # Queries 0 and 4 against a gallery of points 1, 2 and 3 (disjoint from query 0).
    split = retrieval_scores(metric, X, y, k=[1, 2], nmi=False, query=[0, 4], gallery=[1, 2, 3])
    assert split == {"recall@1": 0.5, "recall@2": 1.0}
    mask = np.array([True, False, False, False, True])
    assert retrieval_scores(metric, X, y, k=[1, 2], nmi=False, query=mask, gallery=[1, 2, 3]) == (
        split
    )


def test_recall_refuses_queries_without_a_positive():
    E = np.array([[0.0], [1.0], [2.0]])
    with pytest.raises(ValueError, match="no gallery point of their class"):
        recall_at_k(E, [0, 1, 1], E, [0, 1, 1], 1, self_index=np.arange(3))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be a positive integer"),
        ({"k": [1, 2.5]}, ValueError, "k must be a positive integer"),
        ({"self_index": [0, 5]}, ValueError, "self_index"),
        ({"self_index": [0.0, 1.0]}, ValueError, "self_index"),
    ],
)
def test_recall_validates_its_arguments(kwargs, error, match):
    E = np.array([[0.0], [1.0]])
    with pytest.raises(error, match=match):
        recall_at_k(E, [0, 0], E, [0, 0], **{"k": 1, **kwargs})


def test_nmi_is_one_for_separated_classes_and_reproducible():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    separated = rng.normal(size=(60, 2)) * 0.1 + 5.0 * np.eye(3, 2)[y]
    assert nmi_score(separated, y, random_state=0) == pytest.approx(1.0)
    noise = rng.normal(size=(60, 2))
    assert nmi_score(noise, y, random_state=0) < 0.3
    assert nmi_score(noise, y, random_state=3) == nmi_score(noise, y, random_state=3)


# -- the attack --------------------------------------------------------------------------


def _two_clusters(seed=0, n=30):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = np.clip(rng.normal(0.5, 0.12, size=(n, 3)) + 0.08 * (2 * y[:, None] - 1), 0.0, 1.0)
    return X, y


def test_the_attack_stays_in_budget_and_box_and_leaves_the_input_alone():
    X, y = _two_clusters()
    X_before = X.copy()
    W = np.random.default_rng(1).normal(size=(2, 3))
    for eps in (0.01, 0.1, 0.5):
        X_adv = retrieval_attack(
            FixedMetric(W).fit(), X, y, eps=eps, feature_range=(0.0, 1.0), query=[0, 5, 20]
        )
        assert X_adv.shape == (3, 3)
        assert np.abs(X_adv - X[[0, 5, 20]]).max() <= eps + 1e-12
        assert X_adv.min() >= 0.0 and X_adv.max() <= 1.0
    np.testing.assert_array_equal(X, X_before)


def test_the_attack_flips_a_query_within_reach_and_not_one_out_of_reach():
    # 1-d: query 0 at 0.30, its class-0 neighbour at 0.10, a class-1 point at 0.52. With
    # eps 0.05 it can get to 0.35 (0.25 from the positive, 0.17 from the negative): flipped.
    # Query 3 at 0.9 (class 1, neighbour 0.85) cannot be flipped by eps 0.05.
    X = np.array([[0.30], [0.10], [0.52], [0.9], [0.85]])
    y = np.array([0, 0, 1, 1, 1])
    metric = FixedMetric(np.array([[2.0]])).fit()
    clean = retrieval_scores(metric, X, y, k=1, nmi=False, query=[0, 3])
    attacked = retrieval_scores(metric, X, y, k=1, nmi=False, query=[0, 3], eps=0.05)
    assert clean["recall@1"] == 1.0 and attacked["recall@1"] == 0.5
    X_adv = retrieval_attack(metric, X, y, eps=0.05, query=[0, 3])
    assert X_adv[0, 0] == pytest.approx(0.35)


def test_attacked_recall_at_1_never_exceeds_natural():
    X, y = _two_clusters(seed=2, n=40)
    for seed in range(3):
        metric = FixedMetric(np.random.default_rng(seed).normal(size=(3, 3))).fit()
        clean = retrieval_scores(metric, X, y, k=1, nmi=False)
        for eps in (0.02, 0.2):
            # A large step overshoots: the best iterate (clean included) is kept.
            attacked = retrieval_scores(metric, X, y, k=1, nmi=False, eps=eps, step_size=0.3)
            assert attacked["recall@1"] <= clean["recall@1"]


def test_more_steps_and_budget_attack_harder_on_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16.0
    y = y[:300]
    nca = NeighborhoodComponentsAnalysis(n_components=8, max_iter=20, random_state=0)
    nca.fit(X[:150], y[:150])
    Xt, yt = X[150:], y[150:]
    clean = retrieval_scores(nca, Xt, yt, k=1, nmi=False)["recall@1"]
    weak = retrieval_scores(nca, Xt, yt, k=1, nmi=False, eps=0.02, max_iter=1)["recall@1"]
    strong = retrieval_scores(nca, Xt, yt, k=1, nmi=False, eps=0.1)["recall@1"]
    assert strong < weak <= clean
    assert strong < 0.5 * clean


def test_scalers_compose_so_the_attack_works_in_raw_units():
    X, y = _two_clusters(seed=3)
    raw = X * 50.0 + 7.0
    W = np.random.default_rng(0).normal(size=(2, 3))
    scaled = make_pipeline(MinMaxScaler(), FrozenEstimator(FixedMetric(W))).fit(raw, y)
    inner = FixedMetric(W * scaled[0].scale_).fit()
    got = retrieval_scores(scaled, raw, y, eps=0.5, nmi=False, k=[1, 2])
    want = retrieval_scores(inner, raw, y, eps=0.5, nmi=False, k=[1, 2])
    assert got == pytest.approx(want)
    # A kNN pipeline is scored through its metric.
    knn = make_pipeline(FrozenEstimator(FixedMetric(W)), KNeighborsClassifier(3)).fit(X, y)
    assert retrieval_scores(knn, X, y, random_state=0) == retrieval_scores(
        FixedMetric(W).fit(), X, y, random_state=0
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": -0.1}, ValueError, "eps"),
        ({"eps": 0.1, "step_size": 0.0}, ValueError, "step_size"),
        ({"eps": 0.1, "max_iter": 0}, ValueError, "max_iter"),
        ({"eps": 0.1, "feature_range": (0.2, 1.0)}, ValueError, "outside feature_range"),
        ({"eps": 0.1, "query": [0, 0]}, ValueError, "repeats"),
        ({"eps": 0.1, "query": [40]}, ValueError, "outside"),
        ({"eps": 0.1, "query": [0.5]}, TypeError, "query"),
        ({"eps": 0.1, "gallery": np.ones(3, bool)}, ValueError, "gallery"),
    ],
)
def test_the_attack_validates_its_arguments(kwargs, error, match):
    X, y = _two_clusters()
    with pytest.raises(error, match=match):
        retrieval_attack(FixedMetric(np.eye(3)).fit(), X, y, **kwargs)


def test_a_model_of_another_width_is_refused():
    X, y = _two_clusters()
    with pytest.raises(ValueError, match="features"):
        retrieval_scores(FixedMetric(np.eye(2)).fit(), X, y)


def test_not_a_metric_model_is_refused():
    X, y = _two_clusters()
    with pytest.raises(TypeError):
        retrieval_scores(StandardScaler().fit(X), X, y)


# -- scorers -----------------------------------------------------------------------------


def test_scorers_in_cross_validation_and_grid_search():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = X / X.max(axis=0)
    scoring = {
        "r1": make_retrieval_scorer("recall@1"),
        "r1_attacked": make_retrieval_scorer("recall@1", eps=0.05),
    }
    nca = NeighborhoodComponentsAnalysis(max_iter=10, random_state=0)
    cv = cross_validate(nca, X, y, scoring=scoring, cv=3)
    assert np.all(cv["test_r1_attacked"] <= cv["test_r1"])
    both = make_retrieval_scorer(["recall@1", "recall@4", "nmi"], eps=0.05, random_state=0)
    search = GridSearchCV(nca, {"n_components": [1, 2]}, scoring=both, refit="recall@1", cv=3)
    search.fit(X, y)
    assert {"mean_test_recall@1", "mean_test_recall@4", "mean_test_nmi"} <= set(search.cv_results_)
    fitted = search.best_estimator_
    assert both(fitted, X, y) == retrieval_scores(fitted, X, y, k=[1, 4], eps=0.05, random_state=0)


@pytest.mark.parametrize("metric", ["recall@0", "recall", "accuracy", [], ["nmi", 3]])
def test_scorer_refuses_unknown_metrics(metric):
    with pytest.raises(ValueError, match="metric must be"):
        make_retrieval_scorer(metric)


def test_a_query_without_a_positive_or_negative_does_not_move():
    # Points 2 and 3 are alone in their classes: as queries they have no positive, so no
    # loss, and stay where they are. Query 0 has both and moves.
    X = np.array([[0.1], [0.2], [0.5], [0.9]])
    y = np.array([0, 0, 1, 2])
    X_adv = retrieval_attack(FixedMetric(np.eye(1)).fit(), X, y, eps=0.1)
    np.testing.assert_array_equal(X_adv[2:], X[2:])
    assert X_adv[0, 0] != X[0, 0]
