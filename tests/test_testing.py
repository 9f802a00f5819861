"""skrobust.testing keeps its promises (the user-style test is tests/test_user_bound.py)."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from skrobust import CertifiedPairClassifier, mahalanobis_metric
from skrobust.testing import (
    FixedMetric,
    budgets,
    components,
    eps_values,
    fixed_metrics,
    pairs_in_box,
    pairs_with_perturbations,
    perturbations,
    points_in_box,
)

from .strategies import boxes, property_examples


def test_module_needs_hypothesis_and_says_how_to_install_it():
    # hypothesis hidden: skrobust imports, skrobust.testing explains what to install.
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import skrobust, skrobust.metrics, skrobust.datasets\n"
        "try:\n    import skrobust.testing\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert 'pip install "skrobust[testing]"' in out


@given(
    W=components(n_features=4, n_components=3, scale=2.0, condition=50.0),
    shape=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    data=st.data(),
)
def test_components_have_the_asked_shape_scale_and_conditioning(W, shape, data):
    assert W.shape == (3, 4)
    s = np.linalg.svd(W, compute_uv=False)
    assert s.max() <= 2.0 * (1 + 1e-9) and s.max() / s.min() <= 50.0 * (1 + 1e-9)
    n_components, n_features = shape
    V = data.draw(components(n_features, n_components, condition=1.0))
    s = np.linalg.svd(V, compute_uv=False)
    np.testing.assert_allclose(s, 2.0, rtol=1e-9)  # condition 1: all singular values equal


@given(box=boxes(), data=st.data())
def test_points_and_perturbations_stay_in_box_and_budget(box, data):
    X = data.draw(points_in_box(box=box))
    assert X.min() >= box[0] and X.max() <= box[1]
    eps = data.draw(eps_values())
    moved = data.draw(perturbations(X, eps, box))
    assert moved.min() >= box[0] and moved.max() <= box[1]
    assert np.all(np.abs(moved - X) <= eps + 1e-12)
    pairs = data.draw(pairs_in_box(box=box))
    shared = data.draw(perturbations(pairs, eps, box, budget="shared"))
    used = np.abs(shared - pairs).max(axis=2).sum(axis=1)
    assert np.all(used <= eps * (1 + 1e-12) + 1e-12)
    assert shared.min() >= box[0] and shared.max() <= box[1]


def test_perturbations_reject_what_they_cannot_honour():
    with pytest.raises(ValueError, match="pairs of shape"):
        perturbations(np.zeros((3, 2)), 0.1, budget="shared").example()
    with pytest.raises(ValueError, match="budget must be one of"):
        perturbations(np.zeros((3, 2)), 0.1, budget="both").example()


def test_fixed_metric_is_a_fitted_model_every_skrobust_function_reads():
    W = np.array([[2.0, 0.0], [0.0, 1.0]])
    model = FixedMetric(W, threshold=0.5)
    metric = mahalanobis_metric(model)
    np.testing.assert_array_equal(metric.components, W)
    assert metric.threshold == 0.5
    pairs = np.array([[[0.1, 0.2], [0.3, 0.9]], [[0.0, 0.0], [0.2, 0.1]]])
    np.testing.assert_allclose(model.pair_distances(pairs), metric.pair_distances(pairs))
    np.testing.assert_allclose(model.transform(pairs[:, 0]), pairs[:, 0] @ W.T)
    np.testing.assert_allclose(model.get_mahalanobis_matrix(), W.T @ W)
    # clone keeps it usable: GridSearchCV clones every parameter.
    clf = CertifiedPairClassifier(clone(FrozenEstimator(model))).fit(pairs, [-1, 1])
    assert clf.threshold_ == 0.5
    assert model.fit() is model


@pytest.mark.parametrize(
    "components_, threshold, match",
    [
        ([[np.nan, 1.0]], None, "NaN"),
        ([1.0, 2.0], None, "2-d array"),
        ([["a", "b"]], None, "real numbers"),
        ([[1.0, 2.0]], float("nan"), "threshold must be finite"),
    ],
)
def test_fixed_metric_rejects_bad_parameters(components_, threshold, match):
    with pytest.raises(ValueError, match=match):
        FixedMetric(components_, threshold).fit()


@settings(max_examples=property_examples(ci=300), deadline=None)
@given(metric=fixed_metrics(condition=100.0), budget=budgets(), data=st.data())
def test_certified_pairs_survive_drawn_perturbations(metric, budget, data):
    n = metric.n_features_in_
    pairs, eps, moved = data.draw(pairs_with_perturbations(n_features=n, budget=budget))
    D = metric.pair_distances(pairs)
    threshold = float(np.median(D)) + 1e-3
    model = FrozenEstimator(FixedMetric(metric.components, threshold))
    clf = CertifiedPairClassifier(model, eps=eps)
    clf.set_params(budget=budget).fit(
        np.concatenate([pairs, pairs]), [1] * len(pairs) + [-1] * len(pairs)
    )
    certified = clf.certify(pairs)
    np.testing.assert_array_equal(clf.predict(moved)[certified], clf.predict(pairs)[certified])
