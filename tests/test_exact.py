"""Exact kNN verification: it agrees with enumeration, and a broken point is really broken."""

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from skrobust.certificates import certify_knn, verify_knn

from .exact import knn_margin_by_subsets, one_nn_margin_by_vertices
from .strategies import knn_pipeline, linear_metrics, points_in_box, property_examples

# Margins this far from 0 (relative to the squared distances) decide the enumeration.
DECISIVE = 1e-6


@st.composite
def small_knn_problems(draw, max_features=3, max_refs=8, k=None):
    W = draw(linear_metrics(max_features=max_features))
    d = W.shape[1]
    n_refs = draw(st.integers(2, max_refs))
    X = draw(points_in_box(n_refs, d))
    n_classes = draw(st.integers(2, 3))
    y = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n_refs, max_size=n_refs)))
    k = draw(st.integers(1, min(4, n_refs))) if k is None else k
    z = draw(points_in_box(1, d))
    # Test points near a reference, where votes are decided.
    z = np.clip(X[:1] + draw(st.floats(0.0, 0.3)) * (z - 0.5), 0.0, 1.0)
    eps = 10 ** draw(st.floats(-2.5, -0.5))
    box = draw(st.sampled_from([None, (0.0, 1.0)]))
    return knn_pipeline(W, X, y, k), W, X, y, z, eps, box


def _check_against(result, margin, scale, flip_margin=None):
    """``margin``: of a tie or flip (ties count as flips); ``flip_margin``: of a selection
    the classifier's own vote gives to another class (the same for 1-NN)."""
    flip_margin = margin if flip_margin is None else flip_margin
    status = result.status[0]
    event(status)
    if status == "robust":
        assert margin <= DECISIVE * scale
    if margin > DECISIVE * scale:
        assert status != "robust"
    if flip_margin > DECISIVE * scale:
        assert status == "broken"
    if margin < -DECISIVE * scale:
        assert status == "robust"


@settings(max_examples=property_examples())
@given(small_knn_problems(k=1))
def test_exact_1nn_agrees_with_vertex_enumeration(problem):
    pipe, W, X, y, z, eps, box = problem
    result = verify_knn(pipe, z, eps, feature_range=box)
    c = result.predictions[0]
    margin = one_nn_margin_by_vertices(W, X, y, z[0], c, eps, box)
    scale = 1.0 + np.sum(((X - z) @ W.T) ** 2, axis=1).max()
    _check_against(result, margin, scale)


@settings(max_examples=property_examples())
@given(small_knn_problems(max_features=2, max_refs=7))
def test_exact_knn_agrees_with_subset_enumeration(problem):
    pipe, W, X, y, z, eps, box = problem
    result = verify_knn(pipe, z, eps, feature_range=box)
    k = pipe[-1].n_neighbors
    c = result.predictions[0]
    margin = knn_margin_by_subsets(W, X, y, z[0], c, k, eps, box)
    flip_margin = knn_margin_by_subsets(W, X, y, z[0], c, k, eps, box, strict=True)
    scale = 1.0 + np.sum(((X - z) @ W.T) ** 2, axis=1).max()
    _check_against(result, margin, scale, flip_margin)


@settings(max_examples=property_examples())
@given(small_knn_problems(max_features=3, max_refs=8))
def test_broken_points_are_confirmed_inside_the_ball_and_box(problem):
    pipe, _, _, _, z, eps, box = problem
    result = verify_knn(pipe, z, eps, feature_range=box)
    broken = result.broken
    event("broken" if broken.any() else "not broken")
    assert np.all(np.isnan(result.adversarial[~broken]))
    if not broken.any():
        return
    adv = result.adversarial[broken]
    assert np.all(np.abs(adv - z[broken]) <= eps)
    if box is not None:
        assert np.all((adv >= box[0]) & (adv <= box[1]))
    assert np.all(pipe.predict(adv) != result.predictions[broken])


def test_lp_and_milp_agree_on_1nn():
    rng = np.random.default_rng(0)
    X, y = rng.random((12, 2)), np.arange(12) % 3
    tests = rng.random((30, 2))
    pipe = knn_pipeline(np.eye(2), X, y, 1)
    lp = verify_knn(pipe, tests, 0.05)
    # The same 1-NN seen as a "k-NN" with k=1 through a second classifier is the LP; the
    # MILP path runs for k >= 2, so compare it on k=2 with a duplicated reference set:
    # every reference twice makes the 2-NN vote the 1-NN vote (ties between copies only).
    twice = knn_pipeline(np.eye(2), np.repeat(X, 2, axis=0), np.repeat(y, 2), 2)
    milp = verify_knn(twice, tests, 0.05)
    np.testing.assert_array_equal(lp.status, milp.status)
    assert lp.status.tolist().count("broken") > 0 and lp.status.tolist().count("robust") > 0


def test_duplicate_references_of_two_classes_are_a_permanent_tie():
    X = np.array([[0.2, 0.2], [0.2, 0.2], [0.9, 0.9]])
    pipe = knn_pipeline(np.eye(2), X, np.array([0, 1, 1]), 1)
    result = verify_knn(pipe, [[0.25, 0.2]], 0.0)
    assert result.status[0] != "robust"


def test_the_box_only_weakens_the_attacker():
    # 1-NN on a line: reference 0 at 0.05, reference 1 at 0.0 is outside reach only if the
    # box stops the test point at 0.
    X = np.array([[0.0], [0.3]])
    pipe = knn_pipeline(np.eye(1), X, np.array([1, 0]), 1)
    z = [[0.2]]
    assert verify_knn(pipe, z, 0.06).status[0] == "broken"
    assert verify_knn(pipe, z, 0.04).status[0] == "robust"
    with pytest.raises(ValueError, match="outside"):
        verify_knn(pipe, [[1.5]], 0.04, feature_range=(0.0, 1.0))


def test_milp_refuses_large_reference_sets():
    rng = np.random.default_rng(0)
    pipe = knn_pipeline(np.eye(2), rng.random((50, 2)), np.arange(50) % 2, 3)
    with pytest.raises(ValueError, match="max_references"):
        verify_knn(pipe, rng.random((2, 2)), 0.1)


def test_a_1nn_point_only_two_own_references_protect_together_is_proven_robust():
    # Own references at (0, +-1) and one far at (-3, 0), a rival at (1.2, 0); z = 0 in the
    # box +-0.1. Neither near own reference alone stays nearer than the rival over the
    # whole box (each pair's linear minimum is 0), but whichever way z moves one of them
    # does (the closest the rival gets, 1.1^2 = 1.21 at dx = 0.1, against 1 + 0.01 = 1.01),
    # so the vote holds: the LP must prove it (its dual uses only those two references; the
    # far one gets no weight). The pairwise certificate cannot, by construction.
    X = np.array([[0.0, 1.0], [0.0, -1.0], [-3.0, 0.0], [1.2, 0.0]])
    y = np.array([0, 0, 0, 1])
    z = np.zeros((1, 2))
    pipe = knn_pipeline(np.eye(2), X, y, 1)
    margin = one_nn_margin_by_vertices(np.eye(2), X, y, z[0], 0, 0.1, None)
    assert margin < -0.1  # the rival ends at least 0.1 farther than the nearest own reference
    assert verify_knn(pipe, z, 0.1).status[0] == "robust"
    assert certify_knn(pipe, z, 0.1, method="exact")[0]
    assert not certify_knn(pipe, z, 0.1)[0]
    # A larger budget breaks it (z moves to (0.25, 0): 0.95^2 < 1 + 0.0625).
    assert verify_knn(pipe, z, 0.25).status[0] == "broken"
    assert not certify_knn(pipe, z, 0.25, method="exact")[0]
