"""skrobust.dask: attacks, bounds and certificates on dask arrays equal the in-memory results,
whatever the chunking and the scheduler; the model enters the graph once; a run survives a
worker's death; GridSearchCV runs on a dask cluster.

One threaded LocalCluster serves the module (``processes=False``: starting worker processes
is slow); the tests that need processes (a worker killed) share one cluster of two processes.
"""

import os
import signal
import time

import numpy as np
import pytest

try:
    import distributed  # noqa: F401
except ImportError as exc:
    if os.environ.get("SKROBUST_REQUIRE_DASK") == "1":
        raise
    pytest.skip(
        f'dask[distributed] is not installed (pip install "skrobust[dask]"): {exc}',
        allow_module_level=True,
    )

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.frozen import FrozenEstimator  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

import skrobust.dask as skd  # noqa: E402
from skrobust import (  # noqa: E402
    AckMetricAttack,
    CascadeKNNAttack,
    RobustMetricLearner,
    certified_radius,
    metric_norms,
    perturbed_distance_bounds,
)
from skrobust._mahalanobis import MahalanobisMetric  # noqa: E402
from skrobust.certificates import (  # noqa: E402
    certified_knn_accuracy,
    certified_knn_radius,
    certify_knn,
    certify_pairs,
)
from skrobust.datasets import load_wine, make_pairs  # noqa: E402
from skrobust.metrics import make_certified_scorer, make_robust_scorer  # noqa: E402

CHUNKS = [1, 7, 64, 10_000]


def _compute(*lazy, chunk):
    """``dask.compute`` on the module's cluster; blocks of one row (hundreds of tasks, slow
    through a scheduler) on the synchronous scheduler."""
    return dask.compute(*lazy, scheduler="sync" if chunk == 1 else None)


# Squared distances are per pair, but BLAS computes a row of a matrix product by another
# kernel depending on the height of the block it is in (OpenBLAS here: the last row of a
# block with an odd number of rows), so a pair's D can differ in its last bits with the
# chunking. Every decision (certified, flipped, the adversarial inputs) is compared exactly.
ULPS = dict(rtol=1e-12, atol=1e-15)


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def wine_pipeline():
    X, y = load_wine()
    pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(3))
    return pipe.fit(X[::2], y[::2]), X[1::2], y[1::2]


@pytest.fixture(scope="module")
def wide_pairs():
    """Pairs of 20 features (beyond the exact ||W||_{inf->2}) and a metric with a threshold."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 20)) / 4.0
    return MahalanobisMetric(W, np.zeros(6), threshold=1.0), rng.random((301, 2, 20))


def _pairs_of(pipe, X, y, n=150):
    pairs, _, _ = make_pairs(X, y, n, random_state=0)
    return pipe[0], pairs


# -- equal to the in-memory results, bitwise ---------------------------------------------


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize(
    "params",
    [
        dict(eps=0.05),
        dict(eps=[0.0, 0.02, 0.1], bound="paper", budget="per_point"),
        dict(eps=[0.05, 0.2], bound="triangle", feature_range=None),
    ],
)
def test_bounds_equal_the_in_memory_bounds(client, wide_pairs, chunk, params):
    metric, pairs = wide_pairs
    lower, upper = skd.perturbed_distance_bounds(
        metric, da.from_array(pairs, chunks=(chunk, 2, 20)), **params
    )
    assert lower.chunks[-1] == da.from_array(pairs, chunks=(chunk, 2, 20)).chunks[0]
    lower, upper = _compute(lower, upper, chunk=chunk)
    expected = perturbed_distance_bounds(metric, pairs, **params)
    np.testing.assert_allclose(lower, expected[0], **ULPS)
    np.testing.assert_allclose(upper, expected[1], **ULPS)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_pair_certificates_and_radii_equal_the_in_memory_ones(client, wide_pairs, chunk):
    metric, pairs = wide_pairs
    lazy = da.from_array(pairs, chunks=(chunk, 2, 20))
    certified, radius = _compute(
        skd.certify_pairs(metric, lazy, 0.02, budget="per_point"),
        skd.certified_radius(metric, lazy, threshold=0.8),
        chunk=chunk,
    )
    np.testing.assert_array_equal(
        certified, certify_pairs(metric, pairs, 0.02, budget="per_point")
    )
    np.testing.assert_allclose(radius, certified_radius(metric, pairs, threshold=0.8), **ULPS)
    assert certified.any() and not certified.all()


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("method", ["pairwise", "interval"])
def test_knn_certificates_equal_the_in_memory_ones(client, wine_pipeline, chunk, method):
    pipe, X, y = wine_pipeline
    lazy = da.from_array(X, chunks=(chunk, X.shape[1]))
    certified, radius, accuracy = _compute(
        skd.certify_knn(pipe, lazy, 0.03, method=method, feature_range=(0.0, 1.0)),
        skd.certified_knn_radius(pipe, lazy, method=method),
        skd.certified_knn_accuracy(pipe, lazy, y, 0.03, method=method),
        chunk=chunk,
    )
    expected = certify_knn(pipe, X, 0.03, method=method, feature_range=(0.0, 1.0))
    np.testing.assert_array_equal(certified, expected)
    np.testing.assert_array_equal(radius, certified_knn_radius(pipe, X, method=method))
    # A mean over blocks: equal up to the rounding of the sum.
    assert accuracy == pytest.approx(certified_knn_accuracy(pipe, X, y, 0.03, method=method))
    assert expected.any() and not expected.all()


def _assert_same_result(result, expected):
    """Every field equal, the reported squared distances up to ``ULPS``."""
    assert type(result) is type(expected)
    for name, value in vars(expected).items():
        if value is None:
            assert getattr(result, name) is None, name
        elif name in ("distances_before", "distances_after", "thresholds"):
            np.testing.assert_allclose(getattr(result, name), value, err_msg=name, **ULPS)
        else:
            np.testing.assert_array_equal(getattr(result, name), value, err_msg=name)


@pytest.mark.parametrize("chunk", [1, 13, 10_000])
@pytest.mark.parametrize("mode", ["pairs", "triplets", "knn"])
def test_attack_results_equal_the_in_memory_ones(client, wine_pipeline, mode, chunk):
    pipe, X, y = wine_pipeline
    if mode == "knn":
        model, inputs, labels = FrozenEstimator(pipe), X, y
    else:
        model, inputs = _pairs_of(pipe, X, y)
        labels = None
        if mode == "triplets":
            inputs = np.concatenate([inputs, inputs[::-1, :1]], axis=1)
    if chunk == 1:  # one attack call per input: a few dozen are enough
        inputs, labels = inputs[:30], None if labels is None else labels[:30]
    attack = AckMetricAttack(
        model, mode=mode, budget="per_point", max_iter=3, n_restarts=3, random_state=0
    ).fit()
    lazy = skd.attack(
        attack, da.from_array(inputs, chunks=(chunk,) + inputs.shape[1:]), labels, eps=[0.05, 0.1]
    )
    assert lazy.adversarial.chunks[1] == da.from_array(inputs, chunks=chunk).chunks[0]
    (result,) = _compute(lazy, chunk=chunk)
    _assert_same_result(result, attack.attack(inputs, labels, eps=[0.05, 0.1]))


def test_cascade_results_equal_the_in_memory_ones(client, wine_pipeline):
    pipe, X, y = wine_pipeline
    attack = CascadeKNNAttack(FrozenEstimator(pipe), random_state=0).fit()
    (result,) = dask.compute(skd.attack(attack, da.from_array(X, chunks=(17, 13)), y, eps=0.05))
    expected = attack.attack(X, y, eps=0.05)
    _assert_same_result(result, expected)
    assert expected.success.any() and (expected.found_by >= 0).any()


# Process workers: the killed-worker tests below.
@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_any_scheduler_gives_the_same_results(wine_pipeline, scheduler):
    pipe, X, y = wine_pipeline
    model, pairs = _pairs_of(pipe, X, y)
    attack = AckMetricAttack(FrozenEstimator(model), n_restarts=2, random_state=0).fit()
    lazy = skd.attack(attack, da.from_array(pairs, chunks=(40, 2, 13)), eps=0.1)
    radius = skd.certified_knn_radius(pipe, da.from_array(X, chunks=(30, 13)))
    result, radius = dask.compute(lazy, radius, scheduler=scheduler)
    _assert_same_result(result, attack.attack(pairs, eps=0.1))
    np.testing.assert_array_equal(radius, certified_knn_radius(pipe, X))


def test_an_attack_seeded_by_a_generator_draws_one_seed_for_every_block(client, wine_pipeline):
    pipe, X, y = wine_pipeline
    model, pairs = _pairs_of(pipe, X, y)
    params = dict(budget="per_point", max_iter=2, n_restarts=3)
    attack = AckMetricAttack(
        FrozenEstimator(model), random_state=np.random.RandomState(0), **params
    ).fit()
    # Drawn now, once, from the caller's generator.
    lazy = skd.attack(attack, da.from_array(pairs, chunks=(7, 2, 13)), eps=0.1)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    (result,) = dask.compute(lazy)
    seeded = AckMetricAttack(FrozenEstimator(model), random_state=seed, **params).fit()
    expected = seeded.attack(pairs, eps=0.1)
    _assert_same_result(result, expected)
    assert expected.success.any()


# -- the model enters the graph once --------------------------------------------------------


def test_the_model_is_one_node_of_the_graph_and_reaches_each_worker_once(client, wide_pairs):
    metric, pairs = wide_pairs
    norms = metric_norms(metric)
    certified = skd.certify_pairs(norms, da.from_array(pairs, chunks=(20, 2, 20)), 0.02)
    graph = dict(certified.__dask_graph__())
    model_key = dask.delayed(norms, pure=True).key
    assert model_key in graph
    blocks = [t for t in graph.values() if model_key in getattr(t, "dependencies", ())]
    assert len(blocks) == len(certified.chunks[0]) == 16
    client.run(lambda dask_worker: dask_worker.transfer_incoming_log.clear())
    certified.compute()
    received = client.run(
        lambda dask_worker: [
            key
            for transfer in dask_worker.transfer_incoming_log
            for key in transfer["keys"]
            if key == model_key
        ]
    )
    # Computed on one worker, fetched at most once by the other.
    assert all(len(keys) <= 1 for keys in received.values())


# -- checks ----------------------------------------------------------------------------------


def test_bad_input_is_refused_when_the_graph_is_built(wine_pipeline, wide_pairs):
    pipe, X, y = wine_pipeline
    metric, pairs = wide_pairs
    lazy = da.from_array(pairs, chunks=(50, 2, 20))
    with pytest.raises(ValueError, match="bound must be one of"):
        skd.perturbed_distance_bounds(metric, lazy, 0.1, bound="nope")
    with pytest.raises(ValueError, match="needs a box"):
        skd.perturbed_distance_bounds(metric, lazy, 0.1, bound="paper", feature_range=None)
    with pytest.raises(ValueError, match=r"pairs must have shape \('n_samples', 2, 20\)"):
        skd.certify_pairs(metric, lazy[:, :, :5], 0.1)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        skd.certified_radius(metric, lazy[lazy[:, 0, 0] > 0.5])
    with pytest.raises(TypeError, match="fitted AckMetricAttack or CascadeKNNAttack"):
        skd.attack(pipe, da.from_array(X))
    with pytest.raises(NotFittedError):
        skd.attack(AckMetricAttack(pipe[0]), lazy)
    with pytest.raises(ValueError, match=r"y must have shape \(89,\)"):
        skd.certified_knn_accuracy(pipe, da.from_array(X), y[:5], 0.1)
    with pytest.raises(ValueError, match="method must be one of"):
        skd.certify_knn(pipe, da.from_array(X), 0.1, method="exact")


def test_values_outside_the_box_are_refused_when_computed(client, wide_pairs):
    metric, pairs = wide_pairs
    lazy = skd.certify_pairs(metric, da.from_array(pairs + 1.0, chunks=(50, 2, 20)), 0.1)
    with pytest.raises(ValueError, match="outside feature_range"):
        lazy.compute()


# -- GridSearchCV on a dask cluster ----------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_over_defence_strength_on_dask_equals_the_serial_search(client):
    X, y = load_wine()
    pipe = make_pipeline(RobustMetricLearner(max_iter=60, tol=None), KNeighborsClassifier(3))
    scoring = {
        "clean": "accuracy",
        "robust": make_robust_scorer(eps=0.05, attack="paper"),
        "certified": make_certified_scorer(eps=0.02),
    }
    grid = {"robustmetriclearner__alpha": [0.0, 1.0], "robustmetriclearner__robust_eps": [0, 0.05]}

    def search(n_jobs):
        return GridSearchCV(pipe, grid, scoring=scoring, refit="robust", cv=2, n_jobs=n_jobs)

    serial = search(None).fit(X, y)
    with joblib.parallel_backend("dask"):
        on_dask = search(-1).fit(X, y)
    for key in ("mean_test_clean", "mean_test_robust", "mean_test_certified"):
        np.testing.assert_array_equal(on_dask.cv_results_[key], serial.cv_results_[key])
    assert on_dask.best_params_ == serial.best_params_
    # The fits ran on the cluster's workers.
    assert sum(client.run(lambda dask_worker: len(dask_worker.state.log)).values()) > 0


# -- faults: a worker killed in the middle of a run ------------------------------------------


@pytest.fixture(scope="module")
def process_client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
            worker_dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def _kill_a_busy_worker(client, future, timeout=60.0):
    """SIGKILL the process of a worker running a task of ``future``'s graph; return its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [addr for addr, keys in client.processing().items() if keys]
        done = client.run_on_scheduler(
            lambda dask_scheduler: sum(
                ts.state == "memory" for ts in dask_scheduler.tasks.values()
            )
        )
        if busy and done > 2 and not future.done():
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.05)
    raise AssertionError("no worker was busy with the run")


@pytest.mark.parametrize("task", ["knn_certificate", "attack"])
def test_a_run_survives_a_killed_worker(process_client, wine_pipeline, task):
    client = process_client
    pipe, X, y = wine_pipeline
    rng = np.random.default_rng(0)
    # Enough work for a worker to die in the middle: points near the test set.
    points = np.clip(np.repeat(X, 6, axis=0) + rng.normal(0, 0.01, (6 * len(X), 13)), 0, 1)
    lazy_points = da.from_array(points, chunks=(30, 13))
    if task == "knn_certificate":
        lazy = skd.certified_knn_radius(pipe, lazy_points)
        expected = certified_knn_radius(pipe, points)
    else:
        attack = AckMetricAttack(
            FrozenEstimator(pipe), mode="knn", max_iter=30, n_restarts=3, random_state=0
        ).fit()
        lazy = skd.attack(attack, lazy_points, eps=0.05).adversarial
        expected = attack.attack(points, eps=0.05).adversarial
    pids = set(client.run(os.getpid).values())
    future = client.compute(lazy)
    killed = _kill_a_busy_worker(client, future)
    result = future.result(timeout=300)
    client.wait_for_workers(2, timeout=60)
    assert killed in pids and killed not in set(client.run(os.getpid).values())
    # Nothing lost, nothing duplicated: every row once, in its place, equal to in memory.
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)
