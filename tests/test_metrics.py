"""Tests of skrobust.metrics: robust accuracy, success rates, the GridSearchCV scorer."""

import numpy as np
import pytest
from sklearn.datasets import load_wine as load_raw_wine
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skrobust import AckMetricAttack, RobustMetricLearner
from skrobust.datasets import load_breast_cancer, load_wine, make_pairs
from skrobust.metrics import attack_success_rate, make_robust_scorer, robust_accuracy_score


@pytest.fixture(scope="module")
def cancer_knn():
    X, y = load_breast_cancer()
    pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0), KNeighborsClassifier(3))
    return X, y, pipe.fit(X[::2], y[::2])


def test_robust_accuracy_matches_the_attack(cancer_knn):
    X, y, pipe = cancer_knn
    scores = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=[0.0, 0.05, 0.1], attack="paper")
    assert scores.shape == (3,)
    assert scores[0] == pipe.score(X[1::2], y[1::2])
    assert np.all(np.diff(scores) <= 0) and scores[2] < scores[0]
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=0.1, feature_range=None)
    attack.fit()
    # With y, the attack targets the true labels; the score is accuracy on its output.
    single = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=0.1, attack="paper")
    assert isinstance(single, float) and single == scores[2]
    with_y = attack.attack(X[1::2], y[1::2]).adversarial[0]
    assert single == np.mean(pipe.predict(with_y) == y[1::2])
    # Attacking the predictions instead of y leaves another accuracy: y is used.
    without_y = attack.transform(X[1::2])
    assert single != np.mean(pipe.predict(without_y) == y[1::2])
    # The default, the strong attack, keeps every flip of eq. (23) (its first member).
    strong = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=[0.0, 0.05, 0.1])
    assert strong[0] == scores[0] and np.all(strong <= scores)


def test_attack_success_rate_pairs_and_knn(cancer_knn):
    X, y = load_wine()
    nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)
    pairs, _, _ = make_pairs(X, y, 60, random_state=0)
    rates = attack_success_rate(nca, pairs, eps=[0.0, 0.1, 0.2], threshold=25.0)
    assert rates[0] == 0.0 and np.all(np.diff(rates) >= 0) and rates[2] > 0
    Xc, yc, pipe = cancer_knn
    rate = attack_success_rate(pipe, Xc[1::2], eps=0.1, mode="knn")
    assert 0.0 < rate <= 1.0


def test_scorer_on_a_fold_outside_the_training_box(cancer_knn):
    X, y, pipe = cancer_knn
    scorer = make_robust_scorer(eps=0.1)
    score = scorer(pipe, X[1::2] + 0.5, y[1::2])  # outside [0, 1]: no error, no NaN
    assert np.isfinite(score) and 0.0 <= score <= 1.0
    with pytest.raises(ValueError, match="outside feature_range"):
        make_robust_scorer(eps=0.1, feature_range=(0.0, 1.0))(pipe, X[1::2] + 0.5, y[1::2])


@pytest.mark.parametrize("scaled", [False, True])
def test_grid_search_with_robust_refit(scaled):
    if scaled:
        # Raw wine features (up to ~1,700): MinMaxScaler in front, composed into the metric;
        # the test folds leave the box the training folds were scaled to.
        X, y = load_raw_wine(return_X_y=True)
        steps = [MinMaxScaler()]
    else:
        X, y = load_wine()
        steps = []
    pipe = make_pipeline(*steps, RobustMetricLearner(max_iter=60), KNeighborsClassifier(3))
    search = GridSearchCV(
        pipe,
        {"robustmetriclearner__alpha": [0.0, 1.0]},
        scoring={"clean": "accuracy", "robust": make_robust_scorer(eps=0.1)},
        refit="robust",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(X, y)
    robust = search.cv_results_["mean_test_robust"]
    clean = search.cv_results_["mean_test_clean"]
    assert np.all(np.isfinite(robust)) and np.all(robust <= clean)
    assert search.best_index_ == int(np.argmax(robust))
    assert search.best_estimator_.score(X, y) > 0.8


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"eps": -1}, ValueError, "eps must be finite and >= 0"),
        ({"eps": [0.1, 0.2]}, ValueError, "single number"),
        ({"attack": "fgsm"}, ValueError, "'strong', 'paper' or an attack"),
        ({"attack": 3}, TypeError, "CascadeKNNAttack"),
        ({"attack_params": {"step_size": 0.1}}, ValueError, "parameters of CascadeKNNAttack"),
        ({"attack": "paper", "attack_params": {"max_iter": -1}}, ValueError, "max_iter"),
        ({"attack_params": {"eps": 0.2}}, ValueError, "may not set 'eps'"),
        ({"attack_params": {"members": [("x", 1)]}}, TypeError, "KNNAttackMember"),
        ({"attack_params": [1]}, TypeError, "attack_params must be a dict"),
        ({"feature_range": (1.0, 0.0)}, ValueError, "lo < hi"),
    ],
)
def test_robust_scorer_checks_its_parameters_when_made(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_robust_scorer(**kwargs)


def test_paper_attack_is_eq23_and_the_default_is_at_least_as_strong(cancer_knn):
    X, y, pipe = cancer_knn
    paper = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=0.05, attack="paper")
    eq23 = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=0.05, feature_range=None)
    result = eq23.fit().attack(X[1::2], y[1::2])
    assert paper == np.mean(result.predictions_after[0] == y[1::2])
    strong = make_robust_scorer(eps=0.05, attack_params={"random_state": 0})
    assert strong(pipe, X[1::2], y[1::2]) < paper


@pytest.mark.parametrize("unseen", [-1, 1, 5])
def test_scorer_counts_labels_never_seen_in_training_as_wrong(unseen):
    # A class absent from the training fold (below, between and above the seen classes 0
    # and 2): its test points count as wrong, no error.
    X, y = load_wine()
    y3 = np.where(np.arange(len(y)) % 7 == 0, unseen, 2 * y)
    train = y3 != unseen
    pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0), KNeighborsClassifier(3))
    pipe.fit(X[train][::2], y3[train][::2])
    test = np.r_[np.flatnonzero(train)[1::2], np.flatnonzero(~train)]
    for attack in ("strong", "paper"):
        scorer = make_robust_scorer(eps=0.0, attack=attack)
        assert scorer(pipe, X[test], y3[test]) == pytest.approx(pipe.score(X[test], y3[test]))
        assert make_robust_scorer(eps=0.1, attack=attack)(pipe, X[test], y3[test]) <= np.mean(
            y3[test] != unseen
        )
    # Inside cross-validation, with a fold missing the class.
    search = GridSearchCV(
        pipe,
        {"kneighborsclassifier__n_neighbors": [1, 3]},
        scoring=make_robust_scorer(eps=0.05),
        cv=[(np.flatnonzero(train), np.arange(len(y)))],
        error_score="raise",
    ).fit(X, y3)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_scorer_pickles_and_takes_an_attack_template(cancer_knn):
    import pickle

    from skrobust import CascadeKNNAttack
    from skrobust._knn_attack import MarginPGD

    X, y, pipe = cancer_knn
    template = CascadeKNNAttack(None, members=[("pgd", MarginPGD(n_restarts=0))])
    scorer = pickle.loads(pickle.dumps(make_robust_scorer(eps=0.1, attack=template)))
    assert scorer.attack.members[0][0] == "pgd" and scorer.attack.eps == 0.1
    assert 0.0 <= scorer(pipe, X[1::2], y[1::2]) <= pipe.score(X[1::2], y[1::2])
