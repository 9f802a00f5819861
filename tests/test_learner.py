"""RobustMetricLearner: scikit-learn conformance, the loss and its gradient, the defence."""

import pickle
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from skrobust import RobustMetricLearner
from skrobust._loss_engine import all_pairs_loss_grad, pair_list_loss_grad
from skrobust._threads import blas_threads
from skrobust.datasets import load_breast_cancer, load_wine, make_pairs


# Every scikit-learn check passes: no expected failures to list.
@parametrize_with_checks(
    [RobustMetricLearner(), RobustMetricLearner(robust_eps=0.05, certificate="pairwise")]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def wine():
    return load_wine(positive_class=None)


def _finite_difference(f, W, h=1e-6):
    grad = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        grad[idx] = (f(W + E) - f(W - E)) / (2 * h)
    return grad


REGULARISERS = [
    {"alpha": 0.0},
    {"regularization": "eig", "eig_k": 2, "alpha": 0.7},
    {"regularization": "eig", "eig_k": 3, "alpha": [1.0, 0.5, 0.25]},
    {"regularization": "eig", "eig_k": 9, "alpha": 2.0},  # more than M has: all of them
    {"regularization": "spectral", "alpha": 0.2},
    {"regularization": "frobenius", "alpha": 0.2},
    {"alpha": 0.0, "robust_eps": 0.05},
    {"regularization": "eig", "eig_k": 2, "alpha": 0.5, "robust_eps": 0.2},
]


@pytest.mark.parametrize("params", REGULARISERS, ids=lambda p: "-".join(map(str, p.values())))
@pytest.mark.parametrize("data", ["all_pairs", "pair_list"])
def test_gradient_matches_finite_differences(params, data):
    rng = np.random.default_rng(0)
    X = rng.random((25, 4))
    y = rng.integers(0, 3, 25)
    W = rng.standard_normal((3, 4))
    learner = RobustMetricLearner(n_components=3, gamma=1.5, **params)
    weights = learner._regularizer_weights(4)
    eps = learner.robust_eps
    if data == "all_pairs":
        y_idx = y.astype(np.int64)
        loss_grad = lambda V: all_pairs_loss_grad(X, y_idx, V, 1.5, eps)  # noqa: E731
    else:
        pairs, labels, _ = make_pairs(X, y, 40, random_state=0)
        U = pairs[:, 0] - pairs[:, 1]
        sign = labels.astype(float)
        loss_grad = lambda V: pair_list_loss_grad(U, sign, V, 1.5, eps)  # noqa: E731
    objective, grad = learner._objective(W, loss_grad, weights)
    numeric = _finite_difference(lambda V: learner._objective(V, loss_grad, weights)[0], W)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    assert objective > 0


def test_all_pairs_loss_equals_the_definition_of_eq_20():
    rng = np.random.default_rng(1)
    X, y, W = rng.random((30, 5)), rng.integers(0, 2, 30), rng.standard_normal((5, 5))
    i, j = np.triu_indices(30, k=1)
    D = np.sum(((X[i] - X[j]) @ W.T) ** 2, axis=1)
    sign = np.where(y[i] == y[j], 1.0, -1.0)
    expected = np.mean(np.maximum(0.0, 1.0 + sign * (D - 2.0)))
    loss, _ = all_pairs_loss_grad(X, y.astype(np.int64), W, 2.0)
    assert loss == pytest.approx(expected, rel=1e-12)


def test_certified_training_makes_the_triangle_margin_hold_on_training_pairs(wine):
    X, y = wine
    eps = 0.05
    plain = RobustMetricLearner(alpha=0.0, random_state=0).fit(X, y)
    robust = RobustMetricLearner(alpha=0.0, robust_eps=eps, random_state=0).fit(X, y)
    i, j = np.triu_indices(len(X), k=1)
    same = y[i] == y[j]

    def certified_correct(model):
        W = model.components_
        s = np.linalg.norm((X[i] - X[j]) @ W.T, axis=1)
        eK = eps * np.linalg.norm(W, axis=0).sum()
        t = np.sqrt(model.gamma)
        return np.mean(np.where(same, s + eK <= t, s - eK > t))

    assert certified_correct(robust) > certified_correct(plain) + 0.1


def test_loss_is_computed_in_tiles_without_an_n2_by_d_array():
    rng = np.random.default_rng(0)
    n, d = 1500, 60  # an N^2 x d float64 tensor would take 1 GB, the N x N matrix 18 MB
    X, y, W = rng.random((n, d)), rng.integers(0, 4, n), rng.standard_normal((d, d))
    all_pairs_loss_grad(X[:5], y[:5].astype(np.int64), W, 2.0)  # compile outside the count
    tracemalloc.start()
    all_pairs_loss_grad(X, y.astype(np.int64), W, 2.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 9e6, f"peak {peak / 1e6:.1f} MB"  # half the N x N matrix


def loss_both_ways(X, y, W, eps):
    """The all-pairs loss and gradient, and the pair-list core's over every pair ``i < j``."""
    i, j = np.triu_indices(len(X), k=1)
    sign = np.where(y[i] == y[j], 1.0, -1.0)
    return (
        all_pairs_loss_grad(X, np.asarray(y, dtype=np.int64), W, 2.0, eps),
        pair_list_loss_grad(X[i] - X[j], sign, W, 2.0, eps),
    )


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("n", [2, 6, 7, 8, 14, 15, 40])
def test_tiles_cover_every_pair_once(monkeypatch, n, eps):
    import skrobust._loss_engine as engine

    # A tile of 7: one tile, exactly one, one more, two and ragged edges, dealt to all lanes.
    monkeypatch.setattr(engine, "TILE", 7)
    rng = np.random.default_rng(n)
    X, W = rng.random((n, 6)), rng.standard_normal((4, 6))
    (loss, grad), (loss_list, grad_list) = loss_both_ways(X, np.arange(n) % 3, W, eps)
    assert loss == pytest.approx(loss_list, rel=1e-12)
    np.testing.assert_allclose(grad, grad_list, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("eps", [0.0, 0.3, 2.0])
def test_coincident_points_have_finite_zero_slopes(monkeypatch, eps):
    import skrobust._loss_engine as engine

    monkeypatch.setattr(engine, "TILE", 4)
    # Integer points and W = I: duplicates have D = 0 exactly, in both classes; eps = 2
    # makes t = sqrt(D) - eps K negative for every dissimilar pair.
    X = np.array([[0, 0], [0, 0], [1, 2], [1, 2], [3, 1], [0, 0], [2, 2], [1, 2], [3, 3.0]])
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0])
    (loss, grad), (loss_list, grad_list) = loss_both_ways(X, y, np.eye(2), eps)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(loss_list, rel=1e-12)
    np.testing.assert_allclose(grad, grad_list, rtol=1e-12, atol=1e-12)
    # Float duplicates: D = |z_i|^2 + |z_j|^2 - 2 z_i.z_j rounds to a few ulps either side
    # of 0, which the kernel must neither take the root of nor amplify into a wrong slope.
    rng = np.random.default_rng(7)
    X, y = rng.random((12, 5))[np.arange(24) % 12], rng.integers(0, 2, 24)
    (loss, grad), (loss_list, grad_list) = loss_both_ways(X, y, rng.standard_normal((5, 5)), eps)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(loss_list, rel=1e-9)
    np.testing.assert_allclose(grad, grad_list, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n_threads", [2, 3, 4, 5])
def test_all_pairs_loss_is_the_same_on_any_number_of_threads(monkeypatch, n_threads):
    import skrobust._loss_engine as engine

    monkeypatch.setattr(engine, "TILE", 16)
    rng = np.random.default_rng(4)
    X, y, W = rng.random((150, 8)), rng.integers(0, 3, 150), rng.standard_normal((8, 8))
    y = y.astype(np.int64)
    serial = all_pairs_loss_grad(X, y, W, 2.0, 0.05)
    with engine.lane_map(n_threads) as map_lanes:
        threaded = all_pairs_loss_grad(X, y, W, 2.0, 0.05, map_lanes=map_lanes)
    assert threaded[0] == serial[0]
    np.testing.assert_array_equal(threaded[1], serial[1])


def test_threaded_fit_equals_the_single_thread_fit(capsys):
    # Big enough (N^2 m >= 5e7) for the lanes to run on threads when BLAS may use two.
    rng = np.random.default_rng(5)
    X, y = rng.random((900, 64)), rng.integers(0, 4, 900)
    learner = RobustMetricLearner(n_components=63, alpha=0.5, robust_eps=0.02, max_iter=5)
    learner.set_params(tol=None, verbose=1)
    with threadpool_limits(limits=1, user_api="blas"):
        one = clone(learner).fit(X, y).components_
    assert "all-pairs loss on 1 thread(s)" in capsys.readouterr().out
    with threadpool_limits(limits=2, user_api="blas"):
        two = clone(learner).fit(X, y).components_
    if blas_threads() >= 2:  # a 1-core machine cannot show the threaded path
        assert "all-pairs loss on 2 thread(s)" in capsys.readouterr().out
    np.testing.assert_array_equal(one, two)


def test_fit_off_the_main_thread_runs_the_loss_on_one_thread(capsys):
    rng = np.random.default_rng(6)
    X, y = rng.random((900, 64)), rng.integers(0, 4, 900)
    learner = RobustMetricLearner(max_iter=1, verbose=1)
    worker = threading.Thread(target=learner.fit, args=(X, y))
    worker.start()
    worker.join()
    assert "all-pairs loss on 1 thread(s)" in capsys.readouterr().out
    assert learner.n_iter_ == 1


def test_defence_lowers_the_top_eigenvalues_below_nt_ml():
    X, y = load_breast_cancer()
    eig = {}
    for alpha in (0.0, 1.0):
        model = RobustMetricLearner(alpha=alpha, eig_k=3, random_state=0).fit(X[::2], y[::2])
        eig[alpha] = np.sort(np.linalg.eigvalsh(model.get_mahalanobis_matrix()))[::-1][:3]
    assert np.all(eig[1.0] < eig[0.0]), eig


def test_more_alpha_means_smaller_top_eigenvalues(wine):
    X, y = wine
    tops = [
        np.linalg.eigvalsh(
            RobustMetricLearner(alpha=a, random_state=0).fit(X, y).get_mahalanobis_matrix()
        )[-1]
        for a in (0.0, 0.5, 5.0)
    ]
    assert tops[0] > tops[1] > tops[2]


def test_pipeline_in_grid_search_over_alpha_and_eig_k(wine):
    X, y = wine
    pipe = make_pipeline(RobustMetricLearner(max_iter=50), KNeighborsClassifier(3))
    grid = {"robustmetriclearner__alpha": [0.0, 1.0], "robustmetriclearner__eig_k": [1, 3]}
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_score_ > 0.8


def test_same_seed_same_model_and_seed_matters(wine):
    X, y = wine
    a = RobustMetricLearner(init="random", max_iter=20, random_state=3).fit(X, y)
    b = RobustMetricLearner(init="random", max_iter=20, random_state=3).fit(X, y)
    c = RobustMetricLearner(init="random", max_iter=20, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.allclose(a.components_, c.components_)


def test_fit_pairs_learns_to_separate_similar_from_dissimilar(wine):
    X, y = wine
    pairs, labels, _ = make_pairs(X, y, 300, random_state=0)
    model = RobustMetricLearner(alpha=0.0, random_state=0).fit_pairs(pairs, labels)
    D = model.pair_distance(pairs) ** 2
    assert np.mean((D <= model.gamma) == (labels == 1)) > 0.85
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_named_init_is_scaled_so_the_mean_distance_is_gamma(wine):
    X, y = wine
    for init in ("identity", "pca", "random"):
        model = RobustMetricLearner(init=init, gamma=2.0, max_iter=1, random_state=0)
        W = model._initial_components(X, 1.0, 5 if init == "pca" else 13, _mean_distance(X))
        assert _mean_distance(X)(W) == pytest.approx(2.0)


def _mean_distance(X):
    i, j = np.triu_indices(len(X), k=1)

    def f(W):
        return np.mean(np.sum(((X[i] - X[j]) @ W.T) ** 2, axis=1))

    return f


def test_tol_stops_early_and_none_runs_every_step(wine):
    X, y = wine
    assert RobustMetricLearner(tol=None, max_iter=40).fit(X, y).n_iter_ == 40
    stopped = RobustMetricLearner(tol=1e3, max_iter=40).fit(X, y)
    assert stopped.n_iter_ == 10
    assert len(stopped.loss_curve_) == stopped.n_iter_
    # An early rise of the objective (Adam's first steps under a strong penalty) is no stall.
    strong = RobustMetricLearner(alpha=10.0, random_state=0).fit(X, y)
    assert strong.n_iter_ > 100


def test_pair_vocabulary_matches_metric_learn(wine):
    X, y = wine
    model = RobustMetricLearner(max_iter=20).fit(X, y)
    pairs, _, _ = make_pairs(X, y, 10, random_state=0)
    expected = np.linalg.norm(model.transform(pairs[:, 0]) - model.transform(pairs[:, 1]), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning on score_pairs
        np.testing.assert_allclose(model.score_pairs(pairs), expected)
    np.testing.assert_allclose(model.pair_distance(pairs), expected)
    np.testing.assert_allclose(model.pair_score(pairs), -expected)
    metric = model.get_metric()
    assert metric(pairs[0, 0], pairs[0, 1]) == pytest.approx(expected[0])
    M = model.get_mahalanobis_matrix()
    u = pairs[:, 0] - pairs[:, 1]
    np.testing.assert_allclose(np.einsum("ij,jk,ik->i", u, M, u), expected**2)


def test_clone_and_pickle_keep_the_model(wine):
    X, y = wine
    model = RobustMetricLearner(alpha=[0.5, 0.2, 0.1], max_iter=20).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.transform(X), model.transform(X))
    assert clone(model).get_params()["alpha"] == [0.5, 0.2, 0.1]


def test_eig_k_larger_than_the_dimension_uses_every_eigenvalue():
    X = np.array([[0.0, 0.0], [0.1, 0.2], [1.0, 1.0], [0.9, 0.8]])
    y = np.array([0, 0, 1, 1])
    model = RobustMetricLearner(eig_k=3, alpha=3.0, max_iter=1).fit(X, y)
    # The first objective is L1 at the initial W plus 1.0 times each of M's two eigenvalues.
    W0 = model._initial_components(X, 1.0, 2, _mean_distance(X))
    l1, _ = all_pairs_loss_grad(X, y, W0, model.gamma)
    assert model.loss_curve_[0] == pytest.approx(l1 + np.trace(W0.T @ W0), rel=1e-12)
    top_only = RobustMetricLearner(eig_k=1, alpha=1.0, max_iter=1).fit(X, y)
    assert top_only.loss_curve_[0] < model.loss_curve_[0]


def test_callers_arrays_are_not_modified(wine):
    X, y = wine
    X0, y0 = X.copy(), y.copy()
    pairs, labels, _ = make_pairs(X, y, 50, random_state=0)
    pairs0, labels0 = pairs.copy(), labels.copy()
    model = RobustMetricLearner(max_iter=10).fit(X, y)
    model.transform(X)
    RobustMetricLearner(max_iter=10).fit_pairs(pairs, labels).pair_distance(pairs)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(pairs, pairs0)
    np.testing.assert_array_equal(labels, labels0)


@pytest.mark.parametrize(
    "params, data, match",
    [
        ({}, "one_class", "at least two classes"),
        ({"eig_k": 3, "alpha": [1.0, 2.0]}, "ok", "eig_k=3 weights"),
        ({"alpha": -1.0}, "ok", "alpha"),
        ({"robust_eps": -0.1}, "ok", "robust_eps"),
        ({"eig_k": 2, "alpha": [1.0, -1.0]}, "ok", ">= 0"),
        ({"regularization": "spectral", "alpha": [1.0]}, "ok", "must be a float"),
        ({"regularization": "trace"}, "ok", "regularization"),
        ({"n_components": 20}, "ok", "n_components=20 must be at most"),
        ({"init": np.eye(3)}, "ok", r"init must have shape .* = \(13, 13\)"),
        ({}, "nan", "NaN"),
        ({}, "inf", "infinity"),
        ({}, "constant", "degenerate: every sample is the same point"),
        ({}, "strings", "string"),
    ],
)
def test_bad_input_gets_a_clear_error(params, data, match, wine):
    X, y = wine
    X = X.copy()
    if data == "one_class":
        y = np.zeros_like(y)
    elif data == "nan":
        X[0, 0] = np.nan
    elif data == "inf":
        X[0, 0] = np.inf
    elif data == "constant":
        X[:] = 0.25
    elif data == "strings":
        X = X.astype(str)  # scikit-learn's NCA refuses these; they are not parsed
    with pytest.raises(ValueError, match=match):
        RobustMetricLearner(max_iter=2, **params).fit(X, y)


@pytest.mark.parametrize(
    "pairs_shape, labels, match",
    [
        ((10, 3, 13), None, r"shape \(n_pairs, 2, n_features\)"),
        ((10, 13), None, r"shape \(n_pairs, 2, n_features\)"),
        ((10, 2, 13), [0, 1] * 5, r"\+1 \(similar\) and -1"),
        ((10, 2, 13), [1] * 10, "both similar"),
        ((10, 2, 13), [1, -1] * 4, "one label per pair"),
    ],
)
def test_bad_pairs_get_a_clear_error(pairs_shape, labels, match):
    pairs = np.random.default_rng(0).random(pairs_shape)
    labels = [1, -1] * 5 if labels is None else labels
    with pytest.raises(ValueError, match=match):
        RobustMetricLearner(max_iter=2).fit_pairs(pairs, labels)


@given(scale=st.floats(0.1, 100.0), shift=st.floats(-50.0, 50.0))
def test_learner_accepts_any_finite_data(scale, shift):
    rng = np.random.default_rng(0)
    X = rng.random((20, 3)) * scale + shift
    y = np.arange(20) % 2
    model = RobustMetricLearner(max_iter=20).fit(X, y)
    assert np.all(np.isfinite(model.components_))
    assert np.all(np.isfinite(model.loss_curve_))


# -- scale invariance, the best iterate, convergence -------------------------------------


@pytest.mark.parametrize("c", [255.0, 1e3, 1e-3, 1e155, 1e-160])
@pytest.mark.parametrize("params", [{"alpha": 0.0}, {"alpha": 1.0, "robust_eps": 0.05}])
def test_learner_is_invariant_under_rescaling_of_the_data(wine, c, params):
    X, y = wine
    params = {"max_iter": 60, "random_state": 0, **params}
    unit = RobustMetricLearner(**params).fit(X, y)
    params["robust_eps"] = c * params.get("robust_eps", 0.0)
    scaled = RobustMetricLearner(**params).fit(c * X, y)
    np.testing.assert_allclose(scaled.components_ * c, unit.components_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scaled.loss_curve_, unit.loss_curve_, rtol=1e-6)
    pairs, _, _ = make_pairs(X, y, 30, random_state=0)
    np.testing.assert_allclose(
        scaled.pair_distance(c * pairs), unit.pair_distance(pairs), rtol=1e-6
    )


def test_fit_pairs_is_invariant_under_rescaling_of_the_data(wine):
    X, y = wine
    pairs, labels, _ = make_pairs(X, y, 100, random_state=0)
    unit = RobustMetricLearner(max_iter=40, robust_eps=0.05).fit_pairs(pairs, labels)
    scaled = RobustMetricLearner(max_iter=40, robust_eps=50.0).fit_pairs(1e3 * pairs, labels)
    np.testing.assert_allclose(scaled.components_ * 1e3, unit.components_, rtol=1e-6, atol=1e-9)


def test_fit_returns_the_best_iterate_and_warns_when_it_is_not_the_last():
    X, y = load_breast_cancer()
    X, y = X[::3], y[::3]
    # A step far too large makes Adam oscillate: the last iterate is worse than the best.
    params = {"alpha": 0.0, "learning_rate": 10.0}
    with pytest.warns(ConvergenceWarning, match="above its best"):
        model = RobustMetricLearner(max_iter=300, **params).fit(X, y)
    curve = model.loss_curve_
    assert model.best_iter_ == int(np.argmin(curve)) + 1 < len(curve)
    assert curve[-1] > 1.01 * min(curve)
    # The same fit stopped at the best step ends on the same W (the descent is deterministic).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        short = RobustMetricLearner(max_iter=model.best_iter_, **params).fit(X, y)
    np.testing.assert_array_equal(short.components_, model.components_)


def test_fit_warns_when_still_descending_fast_at_max_iter(wine):
    X, y = wine
    with pytest.warns(ConvergenceWarning, match="fell from"):
        RobustMetricLearner(alpha=0.0, max_iter=30).fit(X, y)


def test_default_fit_of_bundled_data_converges_without_warning():
    X, y = load_breast_cancer()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = RobustMetricLearner(alpha=0.0, random_state=0).fit(X, y)
    assert model.loss_curve_[-1] <= 1.01 * min(model.loss_curve_)


def test_feature_names_out_and_set_output(wine):
    X, y = wine
    model = RobustMetricLearner(n_components=4, max_iter=5).fit(X, y)
    np.testing.assert_array_equal(
        model.get_feature_names_out(), [f"robustmetriclearner{i}" for i in range(4)]
    )
    pipe = make_pipeline(RobustMetricLearner(n_components=3, max_iter=5), KNeighborsClassifier())
    pipe.set_output(transform="default").fit(X, y)
    assert pipe[:-1].get_feature_names_out().shape == (3,)
    assert model.set_output(transform="default") is model
