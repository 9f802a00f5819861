import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skrobust import perturbed_distance_bounds
from skrobust.testing import budgets, fixed_metrics, pairs_with_perturbations


@settings(max_examples=1000, deadline=None)
@given(metric=fixed_metrics(n_features=3), budget=budgets(), data=st.data())
def test_distance_bounds_hold_for_every_perturbation(metric, budget, data):
    pairs, eps, moved = data.draw(pairs_with_perturbations(n_features=3, budget=budget))
    lower, upper = perturbed_distance_bounds(metric, pairs, eps, budget=budget)
    D = metric.pair_distances(moved)
    assert np.all(lower <= D + 1e-9) and np.all(D <= upper + 1e-9)
