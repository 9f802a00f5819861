"""RobustMetricLearner's sampled objective: the loss on random subsets of the points."""

import tracemalloc
from functools import partial

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

import skrobust._learner as learner_module
import skrobust._margin_loss as margin_module
from skrobust import RobustMetricLearner
from skrobust._learner import _MARGIN_REMINE_EVERY
from skrobust._loss_engine import all_pairs_loss_grad
from skrobust._sampled_loss import SAMPLE_SIZE, SampledObjective
from skrobust.datasets import load_breast_cancer, load_wine


@pytest.fixture(scope="module")
def wine():
    return load_wine(positive_class=None)


@pytest.fixture
def small_subsets(monkeypatch):
    """Subsets of 60 points, so that the bundled data sets are sampled."""
    monkeypatch.setattr(learner_module, "SAMPLE_SIZE", 60)
    return 60


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("objective", ["sampled", "auto"])
@pytest.mark.parametrize("certificate", ["triangle", "pairwise"])
def test_on_at_most_sample_size_points_the_objective_is_the_full_one(wine, objective, certificate):
    X, y = wine
    assert len(X) <= SAMPLE_SIZE
    params = dict(max_iter=30, robust_eps=0.02, certificate=certificate, random_state=0)
    full = RobustMetricLearner(objective="full", **params).fit(X, y)
    other = RobustMetricLearner(objective=objective, **params).fit(X, y)
    np.testing.assert_array_equal(other.components_, full.components_)


def test_each_step_evaluates_the_loss_on_a_new_subset(wine, small_subsets, monkeypatch):
    X, y = wine
    seen = []

    def spy(X, y_idx, W, **kwargs):
        seen.append(X.copy())
        return all_pairs_loss_grad(X, y_idx, W, **kwargs)

    monkeypatch.setattr(learner_module, "all_pairs_loss_grad", spy)
    RobustMetricLearner(objective="sampled", max_iter=25, tol=None, random_state=0).fit(X, y)
    assert len(seen) == 25
    # Each subset holds distinct training points (scaled by the learner's global scale).
    rows = {tuple(row) for row in X / np.ptp(X, axis=0).max()}
    for subset in seen:
        assert len({tuple(r) for r in subset}) == small_subsets
        assert all(tuple(r) in rows for r in subset)
    assert len({subset.tobytes() for subset in seen}) == 25


def test_subset_losses_are_unbiased_estimates_of_the_all_pairs_loss():
    rng = np.random.default_rng(0)
    X = rng.random((300, 5))
    y = rng.integers(0, 3, 300)
    W = rng.standard_normal((4, 5))
    full_loss, full_grad = all_pairs_loss_grad(X, y, W, gamma=2.0)

    def objective_on(X, y):
        return partial(all_pairs_loss_grad, X, y, gamma=2.0)

    sampled = SampledObjective(X, y, objective_on, 60, random_state=0)
    draws = [sampled(W) for _ in range(400)]
    mean_loss = np.mean([loss for loss, _ in draws])
    mean_grad = np.mean([grad for _, grad in draws], axis=0)
    # 400 subsets: the standard error of the mean is below 1% here.
    assert abs(mean_loss - full_loss) < 0.02 * full_loss
    assert np.linalg.norm(mean_grad - full_grad) < 0.05 * np.linalg.norm(full_grad)
    # One subset alone is noisier: the average does improve on it.
    assert np.linalg.norm(draws[0][1] - full_grad) > np.linalg.norm(mean_grad - full_grad)


def test_the_sampled_fit_is_seeded(wine, small_subsets):
    X, y = wine

    def fit(seed):
        return RobustMetricLearner(objective="sampled", max_iter=30, random_state=seed).fit(X, y)

    np.testing.assert_array_equal(fit(0).components_, fit(0).components_)
    assert not np.array_equal(fit(0).components_, fit(1).components_)


def test_auto_samples_only_above_its_threshold(wine, small_subsets, monkeypatch):
    X, y = wine

    def fit(objective):
        return RobustMetricLearner(objective=objective, max_iter=30, random_state=0).fit(X, y)

    full, sampled = fit("full").components_, fit("sampled").components_
    np.testing.assert_array_equal(fit("auto").components_, full)
    monkeypatch.setattr(learner_module, "AUTO_FULL_MAX_SAMPLES", len(X) - 1)
    np.testing.assert_array_equal(fit("auto").components_, sampled)
    assert not np.array_equal(full, sampled)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pairwise_certificate_mines_within_the_subset_kept_until_it_remines(
    wine, small_subsets, monkeypatch
):
    X, y = wine
    mined = []
    mine = margin_module.mine_triples

    def spy(Z, *args):
        mined.append(len(Z))
        return mine(Z, *args)

    monkeypatch.setattr(margin_module, "mine_triples", spy)
    max_iter = 2 * _MARGIN_REMINE_EVERY + 5
    RobustMetricLearner(
        objective="sampled", certificate="pairwise", robust_eps=0.02, max_iter=max_iter,
        tol=None,
    ).fit(X, y)  # fmt: skip
    # One mining per subset, on the subset only, a subset per re-mining period.
    assert mined == [small_subsets] * 3


@pytest.mark.parametrize("certificate", ["triangle", "pairwise"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_best_iterate_is_compared_within_the_last_subset_only(
    wine, small_subsets, monkeypatch, certificate
):
    X, y = wine
    calls = []
    module, name = (
        (learner_module, "all_pairs_loss_grad")
        if certificate == "triangle"
        else (margin_module, "certified_margin_loss_grad")
    )
    loss_grad = getattr(module, name)

    def first_subset_looks_best(*args, **kwargs):
        # Objectives of different subsets are not comparable: make the first subset's the
        # lowest of all, which must not make its iterate the one returned.
        calls.append(None)
        loss, grad = loss_grad(*args, **kwargs)
        return (loss - 100.0 if len(calls) <= 3 else loss), grad

    monkeypatch.setattr(module, name, first_subset_looks_best)
    max_iter = 3 * _MARGIN_REMINE_EVERY + 4
    model = RobustMetricLearner(
        objective="sampled", certificate=certificate, max_iter=max_iter, tol=None
    ).fit(X, y)
    # A subset per step (the hinge), or per re-mining (the pairwise margin).
    last_subset = max_iter - 1 if certificate == "triangle" else 3 * _MARGIN_REMINE_EVERY
    assert last_subset < model.best_iter_ <= max_iter
    assert model.loss_curve_[model.best_iter_ - 1] == min(model.loss_curve_[last_subset:])


def test_sampled_fit_memory_does_not_grow_with_n_squared():
    rng = np.random.default_rng(0)
    n = 20_000
    X = rng.random((n, 4))
    y = rng.integers(0, 2, n)
    tracemalloc.start()
    try:
        RobustMetricLearner(objective="sampled", max_iter=3, random_state=0).fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # An N x N matrix of doubles would be 3.2 GB; the subsets' tiles and X are a few MB.
    assert peak < 64e6


def test_sampled_fit_is_about_as_accurate_as_the_full_fit(small_subsets):
    X, y = load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)

    def accuracy(objective):
        model = RobustMetricLearner(objective=objective, random_state=0).fit(X_train, y_train)
        knn = KNeighborsClassifier(3).fit(model.transform(X_train), y_train)
        return knn.score(model.transform(X_test), y_test)

    # Subsets of 60 of 284 training points.
    assert abs(accuracy("sampled") - accuracy("full")) <= 0.03
