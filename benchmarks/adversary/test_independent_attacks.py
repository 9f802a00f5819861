"""Tests of the independent attacks: every flip is real, and the 1-NN LP is exact.

Run: ``PYTHONPATH=$PWD python -m pytest -q benchmarks/adversary/test_independent_attacks.py``
"""

import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from independent_attacks import (  # noqa: E402
    ATTACKS,
    TOL,
    FoldedKNN,
    is_broken,
    lp_certify_1nn,
    union_attack,
)

from skrobust import RobustMetricLearner  # noqa: E402
from skrobust.datasets import load_wine  # noqa: E402


class FixedMetric(TransformerMixin, BaseEstimator):
    """A stand-in metric step with a given ``components_`` (``x -> W x``)."""

    def __init__(self, W):
        self.W = W

    def fit(self, X, y=None):
        self.components_ = np.asarray(self.W, dtype=np.float64)
        self.n_features_in_ = self.components_.shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64) @ self.components_.T


def tiny_pipeline(W, X, y, k=1, scaler=False):
    steps = [("scale", StandardScaler())] if scaler else []
    steps += [("metric", FixedMetric(W)), ("knn", KNeighborsClassifier(k))]
    return Pipeline(steps).fit(X, y)


@pytest.fixture(scope="module")
def wine_pipes():
    X, y = load_wine()
    rng = np.random.RandomState(0)
    idx = rng.permutation(len(y))
    tr, te = idx[:90], idx[90:110]
    pipes = {}
    for k in (1, 3):
        pipes[k] = Pipeline(
            [("metric", RobustMetricLearner(max_iter=100)), ("knn", KNeighborsClassifier(k))]
        ).fit(X[tr], y[tr])
    return pipes, X[te], y[te]


@pytest.mark.parametrize("name", [*ATTACKS, "union"])
@pytest.mark.parametrize("k", [1, 3])
def test_every_returned_change_is_a_confirmed_flip_in_budget_and_box(wine_pipes, name, k):
    pipes, X, y = wine_pipes
    pipe, eps = pipes[k], 0.1
    attack = union_attack if name == "union" else ATTACKS[name]
    X_before = X.copy()
    X_adv = attack(pipe, X, y, eps, (0.0, 1.0))
    np.testing.assert_array_equal(X, X_before)  # the caller's array is untouched
    changed = np.any(X_adv != X, axis=1)
    assert np.all(np.abs(X_adv - X)[changed] <= eps + TOL)
    assert np.all((X_adv[changed] >= -TOL) & (X_adv[changed] <= 1 + TOL))
    assert np.all(pipe.predict(X_adv[changed]) != y[changed])
    assert np.all(is_broken(pipe, X, y, X_adv, eps)[changed])
    # At eps = 0.1 the attacks do find flips on wine (otherwise the checks above are empty).
    if name in ("pgd", "union"):
        assert changed.sum() >= 1


def test_folded_model_matches_pipeline_with_a_scaler_in_front():
    rng = np.random.RandomState(1)
    X = rng.uniform(size=(40, 3))
    y = (X[:, 0] + 0.3 * rng.standard_normal(40) > 0.5).astype(int)
    W = rng.standard_normal((2, 3))
    pipe = tiny_pipeline(W, X, y, k=3, scaler=True)
    model = FoldedKNN(pipe)
    Q = rng.uniform(size=(200, 3))
    np.testing.assert_allclose(model.embed(Q), pipe[:-1].transform(Q), atol=1e-10)
    assert np.array_equal(model.classes[model.predict_idx(Q)], pipe.predict(Q))


def test_non_affine_step_is_rejected():
    class Square(FixedMetric):
        def transform(self, X):
            return super().transform(X) ** 2

    X = np.random.RandomState(0).uniform(size=(10, 2))
    y = np.array([0, 1] * 5)
    pipe = Pipeline([("m", Square(np.eye(2))), ("knn", KNeighborsClassifier(1))]).fit(X, y)
    with pytest.raises(ValueError, match="affine"):
        FoldedKNN(pipe)


def brute_force_broken(pipe, x, y, eps, n_grid):
    """A dense grid of the 2-D feasible box (with its vertices and the edges' points)."""
    lb, ub = np.maximum(0.0, x - eps), np.minimum(1.0, x + eps)
    axes = [np.linspace(lb[i], ub[i], n_grid) for i in range(2)]
    grid = np.array(list(product(*axes)))
    return bool(np.any(pipe.predict(grid) != y))


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.03, 0.08, 0.15]))
def test_lp_on_1nn_matches_brute_force_in_2d(seed, eps):
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(8, 2))
    y = rng.randint(2, size=8)
    if len(set(y.tolist())) < 2:
        y[0] = 1 - y[1]
    W = rng.standard_normal((2, 2))
    pipe = tiny_pipeline(W, X, y, k=1)
    Q = rng.uniform(size=(6, 2))
    yq = pipe.predict(Q)  # attack the model's own labels: every point starts correct
    X_adv = ATTACKS["lp"](pipe, Q, yq, eps, (0.0, 1.0))
    lp_broken = is_broken(pipe, Q, yq, X_adv, eps)
    for i in range(len(Q)):
        grid = brute_force_broken(pipe, Q[i], yq[i], eps, n_grid=121)
        # The LP is exact: a flip the grid sees, the LP must see. The converse can fail only
        # when the misclassified region is thinner than the grid's step, so the grid is
        # refined before calling it a disagreement.
        if grid:
            assert lp_broken[i], (seed, eps, i)
        elif lp_broken[i]:
            assert brute_force_broken(pipe, Q[i], yq[i], eps, n_grid=1201) or np.any(
                pipe.predict(X_adv[i : i + 1]) != yq[i]
            )
        assert lp_certify_1nn(pipe, Q[i], yq[i], eps) == (not lp_broken[i])


def test_lp_finds_a_flip_the_triangle_bound_alone_would_miss():
    # 1-D by hand: own reference at 0.5, rival at 0.62; the Voronoi boundary is 0.56.
    X = np.array([[0.5, 0.5], [0.62, 0.5]])
    y = np.array([0, 1])
    pipe = tiny_pipeline(np.eye(2), X, y, k=1)
    x = np.array([[0.5, 0.5]])
    assert not is_broken(pipe, x, [0], ATTACKS["lp"](pipe, x, [0], 0.05, (0, 1)), 0.05)[0]
    X_adv = ATTACKS["lp"](pipe, x, [0], 0.07, (0, 1))
    assert is_broken(pipe, x, [0], X_adv, 0.07)[0]
    assert X_adv[0, 0] > 0.56


def test_box_is_respected_at_the_edge():
    # The rival lies outside the box direction: the only escape is blocked by hi = 0.52.
    X = np.array([[0.5, 0.5], [0.6, 0.5]])
    y = np.array([0, 1])
    pipe = tiny_pipeline(np.eye(2), X, y, k=1)
    x = np.array([[0.5, 0.5]])
    for name, attack in ATTACKS.items():
        X_adv = attack(pipe, x, [0], 0.1, (0.0, 0.52))
        assert not is_broken(pipe, x, [0], X_adv, 0.1, (0.0, 0.52))[0], name
        X_adv = attack(pipe, x, [0], 0.1, (0.0, 1.0))
        assert is_broken(pipe, x, [0], X_adv, 0.1, (0.0, 1.0))[0], name


def test_bad_inputs_raise():
    X = np.array([[0.5, 0.5], [0.6, 0.5]])
    pipe = tiny_pipeline(np.eye(2), X, [0, 1], k=1)
    with pytest.raises(ValueError, match="eps"):
        ATTACKS["pgd"](pipe, X, [0, 1], -0.1, (0, 1))
    with pytest.raises(ValueError, match="inside feature_range"):
        ATTACKS["pgd"](pipe, X + 1.0, [0, 1], 0.1, (0, 1))
