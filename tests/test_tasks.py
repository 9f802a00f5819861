"""The task attacks, a metric given only by its matrix through every task, and the thread
policy."""

import ast
import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import skrobust
from skrobust import (
    AckMetricAttack,
    CascadeKNNAttack,
    CertifiedPairClassifier,
    KNNAttack,
    KNNAttackResult,
    MahalanobisMetric,
    PairAttack,
    PairAttackResult,
    RobustMetricLearner,
    TripletAttack,
    TripletAttackResult,
    as_knn_target,
    calibrate_threshold,
    mahalanobis_metric,
)
from skrobust import _threads as threads
from skrobust._attack_core import first_success
from skrobust.certificates import certified_radius, certify_knn, certify_pairs
from skrobust.datasets import load_wine, make_pairs, make_triplets
from skrobust.targets import LinearTarget
from skrobust.testing import FixedMetric


def nca_with(W):
    """scikit-learn's NCA holding ``W``: the reference path through the adapter, read as a
    third-party model (not skrobust's hook)."""
    model = NeighborhoodComponentsAnalysis()
    model.components_ = W
    model.n_features_in_ = W.shape[1]
    return FrozenEstimator(model)


@pytest.fixture(scope="module")
def problem():
    X, y = load_wine(positive_class=None)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, X.shape[1])) / 3.0
    pairs, labels, _ = make_pairs(X, y, 40, random_state=0)
    triplets, _ = make_triplets(X, y, 20, random_state=0)
    D = LinearTarget(W).squared_pair_distances(pairs)
    return X, y, W, pairs, labels, triplets, float(np.median(D))


MATRIX_ONLY = {
    "MahalanobisMetric": lambda W, t: MahalanobisMetric(W, threshold=t),
    "LinearTarget": lambda W, t: LinearTarget(W, threshold=t),
    "FixedMetric": lambda W, t: FixedMetric(W, threshold=t),
}


@pytest.mark.parametrize("kind", sorted(MATRIX_ONLY))
def test_a_metric_given_only_by_its_matrix_goes_through_every_task(problem, kind):
    X, y, W, pairs, labels, triplets, t = problem
    metric = MATRIX_ONLY[kind](W, t)
    reference = nca_with(W)
    refs, tests = slice(0, None, 2), slice(1, 40, 2)

    def same(a, b):
        np.testing.assert_array_equal(a.adversarial, b.adversarial)
        np.testing.assert_array_equal(a.success, b.success)

    # The attack, all three tasks; the matrix's own threshold is used.
    eps = [0.02, 0.1]
    same(
        AckMetricAttack(metric).fit().attack(pairs, eps=eps),
        AckMetricAttack(reference, threshold=t).fit().attack(pairs, eps=eps),
    )
    same(
        AckMetricAttack(metric, mode="triplets").fit().attack(triplets, eps=eps),
        AckMetricAttack(reference, mode="triplets").fit().attack(triplets, eps=eps),
    )
    pipe = make_pipeline(reference, KNeighborsClassifier(3)).fit(X[refs], y[refs])
    knn = AckMetricAttack(metric, mode="knn").fit(X[refs], y[refs])
    same(
        knn.attack(X[tests], y[tests], eps), KNNAttack(pipe).fit().attack(X[tests], y[tests], eps)
    )
    knn_target = as_knn_target(metric, X[refs], y[refs])
    cascade = CascadeKNNAttack(knn_target, eps=0.1, random_state=0).fit()
    same(
        cascade.attack(X[tests], y[tests]),
        CascadeKNNAttack(pipe, eps=0.1, random_state=0).fit().attack(X[tests], y[tests]),
    )
    # The pair and kNN certificates.
    np.testing.assert_array_equal(
        certify_pairs(metric, pairs, 0.02), certify_pairs(reference, pairs, 0.02, threshold=t)
    )
    np.testing.assert_array_equal(
        certified_radius(metric, pairs), certified_radius(reference, pairs, threshold=t)
    )
    np.testing.assert_array_equal(
        certify_knn(knn_target, X[tests], 0.02), certify_knn(pipe, X[tests], 0.02)
    )
    # The adapters of the linear view.
    np.testing.assert_array_equal(mahalanobis_metric(metric).components, W)
    assert calibrate_threshold(metric, pairs, labels) == calibrate_threshold(
        reference, pairs, labels
    )
    # The pair classifier.
    clf = CertifiedPairClassifier(metric, eps=0.02).fit(pairs, labels)
    expected = CertifiedPairClassifier(reference, threshold=t, eps=0.02).fit(pairs, labels)
    assert clf.threshold_ == t
    np.testing.assert_array_equal(clf.predict(pairs), expected.predict(pairs))
    np.testing.assert_array_equal(clf.certify(pairs), expected.certify(pairs))


def test_each_task_returns_its_own_result_without_none_fields(problem):
    X, y, W, pairs, _, triplets, t = problem
    target = LinearTarget(W, threshold=t)
    results = {
        PairAttackResult: PairAttack(target).fit().attack(pairs),
        TripletAttackResult: TripletAttack(target).fit().attack(triplets),
        KNNAttackResult: KNNAttack(target).fit(X[::2], y[::2]).attack(X[1::2]),
    }
    for kind, result in results.items():
        assert type(result) is kind
        assert all(getattr(result, f.name) is not None for f in dataclasses.fields(result))
    # The facade's result holds the same arrays, and its metric_ keeps the former API.
    fitted = AckMetricAttack(target).fit()
    assert isinstance(fitted.metric_, MahalanobisMetric)
    np.testing.assert_array_equal(
        fitted.metric_.pair_distances(pairs), target.squared_pair_distances(pairs)
    )
    facade = fitted.attack(pairs)
    np.testing.assert_array_equal(facade.adversarial, results[PairAttackResult].adversarial)
    np.testing.assert_array_equal(facade.thresholds, results[PairAttackResult].thresholds)


@parametrize_with_checks(
    [
        KNNAttack(NeighborhoodComponentsAnalysis(max_iter=10, random_state=0), max_iter=3,
                  feature_range=None),
        PairAttack(NeighborhoodComponentsAnalysis(max_iter=10, random_state=0), threshold=1.0),
        TripletAttack(NeighborhoodComponentsAnalysis(max_iter=10)),
    ],
    expected_failed_checks=lambda est: {
        "check_transformer_n_iter": (
            "max_iter bounds the attack's iterations, which run in transform, not in fit."
        )
    },
)  # fmt: skip
def test_task_attacks_are_sklearn_estimators(estimator, check):
    check(estimator)


def test_first_success_keeps_the_first_flip_and_runs_only_the_unflipped():
    # Input i flips in run i % 4 (never for i % 4 == 3, with 3 runs).
    calls, kept = [], {}

    def attempt(r, idx):
        idx_array = np.arange(10)[idx]
        calls.append((r, isinstance(idx, slice), idx_array.tolist()))
        won = idx_array % 4 == r
        for i in idx_array[won if r else np.ones_like(won)]:
            kept[int(i)] = r
        return won

    todo = first_success(10, 3, 4, attempt)
    assert todo.tolist() == [3, 7]
    assert calls[0] == (0, True, [0, 1, 2, 3]) and calls[2] == (0, True, [8, 9])
    assert [c[0] for c in calls] == [0, 0, 0, 1, 1, 2]
    assert calls[3] == (1, False, [1, 2, 3, 5]) and calls[5] == (2, False, [2, 3, 6, 7])
    assert kept == {i: (i % 4 if i % 4 < 3 else 0) for i in range(10)}


def _blas():
    return threads.blas_threads()


def test_single_threaded_limits_on_the_main_thread_only_and_nests_for_free(monkeypatch):
    calls = []
    real = threads.threadpool_limits

    def counting(*args, **kwargs):
        calls.append(kwargs.get("user_api"))
        return real(*args, **kwargs)

    monkeypatch.setattr(threads, "threadpool_limits", counting)
    with threads.single_threaded():
        assert _blas() == 1
        with threads.single_threaded(), threads.single_threaded(user_api="blas"):
            assert _blas() == 1
        with threads.single_threaded(user_api=None):  # OpenMP too: not covered by BLAS's
            pass
    assert calls == ["blas", None]
    seen = []
    worker = threading.Thread(target=lambda: seen.append(threads.single_threaded()))
    worker.start()
    worker.join()
    with seen[0]:
        pass
    assert calls == ["blas", None]  # the context made off the main thread sets nothing
    with threads.single_threaded(when=False):
        pass
    assert calls == ["blas", None]


def test_nothing_sets_thread_limits_from_a_worker_thread(monkeypatch):
    # The whole package run off the main thread: a fit large enough for its threaded path,
    # the pair attack and bounds, the cascade and the kNN certificate.
    def refuse(*args, **kwargs):
        raise AssertionError("threadpool_limits called off the main thread")

    monkeypatch.setattr(threads, "threadpool_limits", refuse)
    X, y = load_wine(positive_class=None)
    rng = np.random.default_rng(1)
    big, labels = rng.random((900, 64)), rng.integers(0, 3, 900)
    pairs = np.stack([big[:450], big[450:]], axis=1)
    errors = []

    def work():
        try:
            RobustMetricLearner(max_iter=1).fit(big, labels)
            W = np.eye(64)
            AckMetricAttack(LinearTarget(W), threshold=1.0, max_iter=2).fit().attack(pairs)
            certify_pairs(LinearTarget(W, threshold=1.0), np.repeat(pairs, 20, axis=0), 0.01)
            pipe = make_pipeline(nca_with(np.eye(13)), KNeighborsClassifier(3)).fit(X, y)
            CascadeKNNAttack(pipe, random_state=0).fit().attack(X[:5], y[:5])
            certify_knn(pipe, X[:5], 0.01)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread below
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert not errors, errors


def test_thread_limits_are_set_in_one_module_only():
    sources = Path(skrobust.__file__).parent.glob("*.py")
    users = set()
    for path in sources:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "threadpoolctl":
                users.add(path.name)
    assert users == {"_threads.py"}


def test_an_object_with_only_the_hook_is_attacked_and_certified(problem):
    X, y, W, pairs, _, _, t = problem
    target = LinearTarget(W, threshold=t)

    class Model:
        """A user's own model: no fit, no estimator API, only the hook."""

        def __skrobust_target__(self):
            return target

    result = PairAttack(Model()).fit().attack(pairs)
    np.testing.assert_array_equal(
        result.adversarial, PairAttack(target).fit().attack(pairs).adversarial
    )
    np.testing.assert_array_equal(
        certify_pairs(Model(), pairs, 0.02), certify_pairs(target, pairs, 0.02)
    )
    with pytest.raises(TypeError, match="not a Mahalanobis model nor a metric target"):
        PairAttack(object()).fit()
