"""The refit rule that picks a defence's strength on the training data."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import RobustMetricLearner
from skrobust.datasets import load_wine
from skrobust.metrics import make_certified_scorer
from skrobust.model_selection import DEFENCE_GRIDS, most_robust_within


def results(clean, robust):
    return {"mean_test_clean": np.array(clean), "mean_test_robust": np.array(robust)}


def test_picks_the_most_robust_within_the_clean_tolerance():
    refit = most_robust_within(tolerance=0.02)
    # Candidate 2 is the most robust but 5 points below the best clean score.
    assert refit(results([0.95, 0.94, 0.90], [0.30, 0.50, 0.80])) == 1
    assert most_robust_within(tolerance=0.06)(results([0.95, 0.94, 0.90], [0.3, 0.5, 0.8])) == 2
    assert most_robust_within(tolerance=0.0)(results([0.95, 0.94, 0.90], [0.3, 0.5, 0.8])) == 0


def test_ties_go_to_the_cleaner_then_the_first_candidate():
    refit = most_robust_within()
    assert refit(results([0.93, 0.95, 0.95], [0.5, 0.5, 0.5])) == 1
    assert refit(results([0.95, 0.95], [0.5, 0.5])) == 0


def test_nan_robust_scores_count_as_worst():
    refit = most_robust_within()
    assert refit(results([0.95, 0.95], [np.nan, 0.1])) == 1
    assert refit(results([0.95, 0.80], [np.nan, 0.9])) == 0


def test_names_its_scorers_in_errors():
    with pytest.raises(ValueError, match="no scorer 'robust'"):
        most_robust_within()({"mean_test_clean": np.array([0.9])})
    with pytest.raises(ValueError, match="tolerance"):
        most_robust_within(tolerance=-0.1)
    with pytest.raises(TypeError, match="scorer names"):
        most_robust_within(clean=1)


def test_in_grid_search_the_choice_follows_the_rule():
    X, y = load_wine()
    pipe = make_pipeline(RobustMetricLearner(alpha=0.0, max_iter=100), KNeighborsClassifier(3))
    grid = {"robustmetriclearner__robust_eps": [0.0, 0.05, 0.1]}
    search = GridSearchCV(
        pipe,
        grid,
        cv=3,
        scoring={"clean": "accuracy", "robust": make_certified_scorer(eps=0.05)},
        refit=most_robust_within(),
    ).fit(X, y)
    clean = search.cv_results_["mean_test_clean"]
    robust = search.cv_results_["mean_test_robust"]
    chosen = search.best_index_
    assert clean[chosen] >= clean.max() - 0.02
    assert robust[chosen] == robust[clean >= clean.max() - 0.02].max()


@pytest.mark.parametrize("name", sorted(DEFENCE_GRIDS))
def test_every_starting_grid_fits(name):
    X, y = load_wine()
    pipe = make_pipeline(RobustMetricLearner(max_iter=5), KNeighborsClassifier(3))
    grid = {f"robustmetriclearner__{k}": v for k, v in DEFENCE_GRIDS[name].items()}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == np.prod([len(v) for v in grid.values()])
