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
    scores = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=[0.0, 0.05, 0.1])
    assert scores.shape == (3,)
    assert scores[0] == pipe.score(X[1::2], y[1::2])
    assert np.all(np.diff(scores) <= 0) and scores[2] < scores[0]
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=0.1, feature_range=None)
    attack.fit()
    # With y, the attack targets the true labels; the score is accuracy on its output.
    single = robust_accuracy_score(pipe, X[1::2], y[1::2], eps=0.1)
    assert isinstance(single, float) and single == scores[2]
    with_y = attack.attack(X[1::2], y[1::2]).adversarial[0]
    assert single == np.mean(pipe.predict(with_y) == y[1::2])
    # Attacking the predictions instead of y leaves another accuracy: y is used.
    without_y = attack.transform(X[1::2])
    assert single != np.mean(pipe.predict(without_y) == y[1::2])


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
