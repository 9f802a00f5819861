"""Random restarts drawn per input: an input's result does not depend on the other inputs
of the call (how a large input is chunked, dask's blocks)."""

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import AckMetricAttack, CascadeKNNAttack, MarginPGD, RobustMetricLearner
from skrobust._row_random import RowRandomState
from skrobust.datasets import load_wine, make_pairs


def test_a_rows_draws_depend_on_the_seed_and_the_row_alone():
    X = np.random.default_rng(0).random((500, 2, 3))
    draws = RowRandomState(X, [7, 1]).random_sample(X.shape)
    order = np.random.default_rng(1).permutation(500)
    some = RowRandomState(X[order[:50]], [7, 1]).random_sample((50, 2, 3))
    np.testing.assert_array_equal(some, draws[order[:50]])
    # Another seed, and the second draw, give other numbers.
    assert not np.any(RowRandomState(X, [7, 2]).random_sample(X.shape) == draws)
    generator = RowRandomState(X, [7, 1])
    generator.random_sample(X.shape)
    assert not np.any(generator.random_sample(X.shape) == draws)


def test_row_draws_are_uniform_and_uncorrelated():
    X = np.random.default_rng(0).random((50_000, 4))
    draws = RowRandomState(X, [0]).random_sample(X.shape)
    assert draws.min() >= 0.0 and draws.max() < 1.0
    counts, _ = np.histogram(draws, bins=20, range=(0.0, 1.0))
    expected = draws.size / 20
    # Chi-square with 19 degrees of freedom: its 99.9% quantile is 43.8.
    assert ((counts - expected) ** 2 / expected).sum() < 43.8
    corr = np.corrcoef(draws.T)
    # Standard error 1 / sqrt(50,000) = 0.0045.
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.02
    # Neighbouring inputs (a row and the next, almost equal) draw independently.
    line = np.linspace(0.0, 1e-9, 50_000)[:, None] * np.ones((1, 4))
    along = RowRandomState(line, [0]).random_sample(line.shape)[:, 0]
    assert abs(np.corrcoef(along[:-1], along[1:])[0, 1]) < 0.02


def test_other_draws_come_from_the_seeded_random_state():
    X = np.zeros((3, 2))
    generator, plain = RowRandomState(X, [4, 2]), np.random.RandomState([4, 2])
    np.testing.assert_array_equal(generator.random_sample((5,)), plain.random_sample((5,)))
    assert generator.randint(1000) == plain.randint(1000)


@pytest.fixture(scope="module")
def wine_pipeline():
    X, y = load_wine()
    pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(3))
    return pipe.fit(X[::2], y[::2]), X[1::2], y[1::2]


def _inputs(mode, wine_pipeline):
    pipe, X, y = wine_pipeline
    if mode == "knn":
        return FrozenEstimator(pipe), X, y
    pairs, _, _ = make_pairs(X, y, 200, random_state=0)
    if mode == "triplets":
        pairs = np.concatenate([pairs, pairs[::-1, :1]], axis=1)
    return FrozenEstimator(pipe[0]), pairs, None


def _split_runs(run, X, y):
    """``run`` on the whole of ``X``, and on a shuffled split of it into three calls,
    reassembled in the original order."""
    whole = run(X, y)
    order = np.random.default_rng(0).permutation(len(X))
    parts = [whole]
    for idx in np.array_split(order, 3):
        parts.append((idx, run(X[idx], None if y is None else y[idx])))
    return whole, parts[1:]


@pytest.mark.parametrize("mode", ["pairs", "triplets", "knn"])
def test_attack_restarts_do_not_depend_on_the_other_inputs(mode, wine_pipeline):
    model, X, y = _inputs(mode, wine_pipeline)
    # A weak first run (per point: the shared budget's exact re-split leaves the restarts
    # nothing to flip here), so that the restarts flip what it missed.
    params = dict(mode=mode, budget="per_point", step_size=0.01, max_iter=2, random_state=0)
    attack = AckMetricAttack(model, n_restarts=4, **params).fit()

    def run(X, y):
        return attack.attack(X, y, eps=[0.05, 0.1])

    whole, parts = _split_runs(run, X, y)
    without = AckMetricAttack(model, n_restarts=0, **params).fit().attack(X, y, eps=[0.05, 0.1])
    assert whole.success.sum() > without.success.sum()
    for idx, part in parts:
        np.testing.assert_array_equal(part.adversarial, whole.adversarial[:, idx])
        np.testing.assert_array_equal(part.success, whole.success[:, idx])


def test_cascade_restarts_do_not_depend_on_the_other_points(wine_pipeline):
    pipe, X, y = wine_pipeline
    pgd = MarginPGD(max_iter=2, step_start=0.05, step_end=0.05, n_restarts=4)
    attack = CascadeKNNAttack(FrozenEstimator(pipe), members=[("pgd", pgd)], random_state=0)
    attack = attack.fit()

    def run(X, y):
        return attack.attack(X, y, eps=0.1)

    whole, parts = _split_runs(run, X, y)
    # Some points are flipped by a restart (run > 0), not by the run from the clean point.
    first_run_only = CascadeKNNAttack(
        FrozenEstimator(pipe), members=[("pgd", MarginPGD(2, 0.05, 0.05, n_restarts=0))]
    ).fit()
    assert whole.success.sum() > first_run_only.attack(X, y, eps=0.1).success.sum()
    for idx, part in parts:
        np.testing.assert_array_equal(part.adversarial, whole.adversarial[:, idx])
        np.testing.assert_array_equal(part.success, whole.success[:, idx])
