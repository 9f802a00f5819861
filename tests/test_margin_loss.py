"""Certified training on the pairwise margin: mining, loss and gradient."""

import numpy as np
import pytest

from skrobust._margin_loss import certified_margin_loss_grad, mine_triples


def test_mined_triples_of_a_hand_made_example():
    # On a line: class 0 at 0, 1, 3 and class 1 at 1.5, 10 (indices 0-4).
    X = np.array([[0.0], [1.0], [3.0], [1.5], [10.0]])
    y = np.array([0, 0, 0, 1, 1])
    mined = mine_triples(X, y, n_targets=1, n_rivals=1)
    # Nearest own-class point of each (itself excluded), nearest other-class point of each.
    np.testing.assert_array_equal(mined.targets, [[0, 1], [1, 0], [2, 1], [3, 4], [4, 3]])
    np.testing.assert_array_equal(mined.rivals, [[0, 3], [1, 3], [2, 3], [3, 1], [4, 2]])
    np.testing.assert_array_equal(
        mined.triples, [[0, 1, 3], [1, 0, 3], [2, 1, 3], [3, 4, 1], [4, 3, 2]]
    )


def test_mining_takes_every_target_with_every_rival_and_skips_lonely_points():
    X = np.array([[0.0], [1.0], [3.0], [1.5], [10.0], [20.0]])
    y = np.array([0, 0, 0, 1, 1, 2])
    mined = mine_triples(X, y, n_targets=2, n_rivals=2)
    targets, triples = mined.targets, mined.triples
    # Point 5 is alone in class 2: no target, so no triple starts at it.
    assert 5 not in targets[:, 0] and 5 not in triples[:, 0]
    # Point 3 has one own-class point (4) and rivals 1 and 0 (distances 0.25, 2.25).
    np.testing.assert_array_equal(triples[triples[:, 0] == 3], [[3, 4, 1], [3, 4, 0]])
    # Point 0: targets 1, 2; rivals 3, 4.
    np.testing.assert_array_equal(
        triples[triples[:, 0] == 0], [[0, 1, 3], [0, 1, 4], [0, 2, 3], [0, 2, 4]]
    )
    assert len(targets) == 2 * 3 + 1 * 2


def test_mining_uses_the_metric():
    # In the plain metric the nearest rival of point 0 is point 3 (D 9.01 against 25.04);
    # a W that ignores feature 1 makes it point 2 (D 0.04 against 9).
    X = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 5.0], [3.0, 0.1]])
    y = np.array([0, 0, 1, 1])
    plain = mine_triples(X, y, 1, 1).triples
    weighted = mine_triples(X @ np.diag([1.0, 0.0]).T, y, 1, 1).triples
    assert plain[0].tolist() == [0, 1, 3]
    assert weighted[0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.5])
@pytest.mark.parametrize("shape", [(4, 5), (2, 5)])
def test_gradient_matches_finite_differences(eps, shape):
    rng = np.random.default_rng(0)
    X = rng.random((30, shape[1]))
    y = rng.integers(0, 3, 30)
    W = rng.standard_normal(shape)
    mined = mine_triples(X @ W.T, y, 3, 4)

    def loss(W):
        return certified_margin_loss_grad(X, W, mined, eps, gamma=2.0)

    value, grad = loss(W)
    numeric = np.zeros_like(W)
    h = 1e-6
    for i in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[i] = h
        numeric[i] = (loss(W + step)[0] - loss(W - step)[0]) / (2 * h)
    assert value > 0
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_loss_is_the_documented_objective():
    rng = np.random.default_rng(1)
    X = rng.random((12, 3))
    y = np.array([0, 1] * 6)
    W = rng.standard_normal((3, 3))
    mined = mine_triples(X @ W.T, y, 2, 3)
    targets, triples = mined.targets, mined.triples
    eps, gamma, mu = 0.1, 2.0, 0.5
    M = W.T @ W

    def D(i, j):
        return (X[i] - X[j]) @ M @ (X[i] - X[j])

    pull = np.mean([D(z, a) for z, a in targets]) / gamma
    margins = [
        D(z, b) - D(z, a) - 2 * eps * np.abs(M @ (X[a] - X[b])).sum() for z, a, b in triples
    ]
    push = np.mean([max(0.0, 1.0 - m / gamma) for m in margins])
    loss, _ = certified_margin_loss_grad(X, W, mined, eps, gamma, mu)
    assert loss == pytest.approx((1 - mu) * pull + mu * push, rel=1e-12)


def test_scaling_w_up_does_not_drive_the_loss_to_zero():
    # The pull term pins the scale: inflating W raises the objective once margins hold.
    rng = np.random.default_rng(2)
    X = rng.random((20, 2))
    y = (X[:, 0] > 0.5).astype(int)
    W = np.eye(2)
    mined = mine_triples(X, y, 2, 2)
    losses = [certified_margin_loss_grad(X, c * W, mined, 0.0, 2.0)[0] for c in (1, 10, 100)]
    assert losses[2] > losses[1] > 0


def test_pairwise_certified_fit_is_deterministic_and_classifies():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    from skrobust import RobustMetricLearner
    from skrobust.datasets import load_wine

    X, y = load_wine()
    params = {"alpha": 0.0, "robust_eps": 0.05, "certificate": "pairwise", "max_iter": 100}
    first = RobustMetricLearner(**params, random_state=0).fit(X[::2], y[::2])
    second = RobustMetricLearner(**params, random_state=0).fit(X[::2], y[::2])
    np.testing.assert_array_equal(first.components_, second.components_)
    # The pairwise objective, not the all-pairs one, was optimised: its first value is the
    # mined objective at the initial W.
    plain = RobustMetricLearner(alpha=0.0, robust_eps=0.05, max_iter=100).fit(X[::2], y[::2])
    assert first.loss_curve_[0] != pytest.approx(plain.loss_curve_[0])
    pipe = make_pipeline(first, KNeighborsClassifier(3)).fit(X[::2], y[::2])
    assert pipe.score(X[1::2], y[1::2]) > 0.9


def test_pairwise_fit_returns_an_iterate_of_its_last_mining():
    # Objectives on different triples are not comparable: the best iterate is chosen among
    # the steps since the last re-mining (every 10 steps).
    from skrobust import RobustMetricLearner
    from skrobust.datasets import load_wine

    X, y = load_wine()
    learner = RobustMetricLearner(
        alpha=0.0, robust_eps=0.05, certificate="pairwise", max_iter=95, tol=None
    ).fit(X, y)
    assert learner.n_iter_ == 95
    assert learner.best_iter_ > 90
