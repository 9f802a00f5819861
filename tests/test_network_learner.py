"""ReluMetricLearner and the network targets: scikit-learn conformance, training, the
protocol (ReluNetworkTarget, CallableTarget) and a PyTorch model attacked through it."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrobust import AckMetricAttack, CascadeKNNAttack, ReluMetricLearner
from skrobust.datasets import load_wine, make_pairs
from skrobust.losses import ContrastiveLoss, PairHingeLoss, TripletLoss
from skrobust.targets import CallableTarget, ReluNetworkTarget, as_knn_target, as_target

FAST = dict(hidden_layer_sizes=(8,), n_components=4, n_epochs=20, random_state=0)


@parametrize_with_checks(
    [ReluMetricLearner(n_epochs=5), ReluMetricLearner((), 2, loss="triplet", n_epochs=5)]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def wine():
    return load_wine()


@pytest.mark.parametrize("loss", ["hinge", "contrastive", "triplet"])
def test_each_loss_learns_an_embedding_a_knn_can_use(wine, loss):
    X, y = wine
    pipe = make_pipeline(ReluMetricLearner(loss=loss, **FAST), KNeighborsClassifier(3))
    assert pipe.fit(X[::2], y[::2]).score(X[1::2], y[1::2]) > 0.85
    learner = pipe[0]
    assert learner.loss_curve_[-1] < learner.loss_curve_[0]
    assert learner.n_iter_ == 20 and len(learner.layers_) == 2
    assert learner.threshold_ == (2.0 if loss == "hinge" else None)


def test_same_seed_same_network_and_clone_and_pickle(wine):
    X, y = wine
    a = ReluMetricLearner(**FAST).fit(X, y)
    b = clone(a).fit(X, y)
    c = pickle.loads(pickle.dumps(a))
    for (Wa, ba), (Wb, bb), (Wc, _) in zip(a.layers_, b.layers_, c.layers_, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
        np.testing.assert_array_equal(Wa, Wc)
    other = ReluMetricLearner(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.allclose(a.layers_[0][0], other.layers_[0][0])


def test_learner_is_invariant_under_rescaling_of_the_data(wine):
    X, y = wine
    a = ReluMetricLearner(**FAST).fit(X, y)
    b = ReluMetricLearner(**FAST).fit(7.0 * X, y)
    np.testing.assert_allclose(a.transform(X), b.transform(7.0 * X), rtol=1e-8, atol=1e-10)


def test_transform_and_pair_distances_agree(wine):
    X, y = wine
    learner = ReluMetricLearner(**FAST).fit(X, y)
    pairs = np.stack([X[:10], X[10:20]], axis=1)
    E = learner.transform(X)
    expected = np.linalg.norm(E[:10] - E[10:20], axis=1)
    np.testing.assert_allclose(learner.pair_distance(pairs), expected, rtol=1e-12)
    np.testing.assert_array_equal(learner.score_pairs(pairs), learner.pair_distance(pairs))
    np.testing.assert_array_equal(learner.pair_score(pairs), -learner.pair_distance(pairs))
    assert learner.get_feature_names_out().tolist() == [f"relumetriclearner{i}" for i in range(4)]


def test_fit_pairs_trains_a_pair_loss_and_refuses_triplets(wine):
    X, y = wine
    pairs, labels, _ = make_pairs(X, y, 200, random_state=0)
    learner = ReluMetricLearner(loss=ContrastiveLoss(margin=2.0), **FAST)
    learner.fit_pairs(pairs, labels)
    D = learner.pair_distance(pairs) ** 2
    assert np.median(D[labels == 1]) < np.median(D[labels == -1])
    with pytest.raises(ValueError, match="triplets"):
        ReluMetricLearner(loss="triplet").fit_pairs(pairs, labels)
    with pytest.raises(ValueError, match="both similar"):
        learner.fit_pairs(pairs, np.ones(len(pairs)))


def test_eigenvalue_defence_shrinks_the_last_layer(wine):
    X, y = wine
    plain = ReluMetricLearner(**FAST).fit(X, y)
    defended = ReluMetricLearner(alpha=5.0, eig_k=2, **FAST).fit(X, y)
    top = [np.linalg.norm(m.layers_[-1][0], 2) for m in (plain, defended)]
    assert top[1] < top[0]
    with pytest.raises(ValueError, match="eig_k=2"):
        ReluMetricLearner(alpha=[1.0, 2.0, 3.0], eig_k=2, **FAST).fit(X, y)


def test_loss_objects_are_parameters_grid_search_reaches(wine):
    X, y = wine
    pipe = make_pipeline(ReluMetricLearner(loss=PairHingeLoss(), **FAST), KNeighborsClassifier())
    grid = {"relumetriclearner__loss__gamma": [1.0, 4.0]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert search.best_estimator_[0].threshold_ in (1.0, 4.0)
    with pytest.raises(ValueError, match="margin"):
        ReluMetricLearner(loss=TripletLoss(margin=-1.0)).fit(X, y)


def test_bad_hidden_layer_sizes_raise(wine):
    X, y = wine
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        ReluMetricLearner(hidden_layer_sizes=(4, 0)).fit(X, y)


def test_linear_learner_without_hidden_layers_is_affine(wine):
    X, y = wine
    learner = ReluMetricLearner((), 3, n_epochs=10, random_state=0).fit(X, y)
    (W, b), = learner.layers_  # fmt: skip
    np.testing.assert_allclose(learner.transform(X), X @ W.T + b, rtol=1e-12)


def test_the_learner_is_a_network_target_and_scalers_fold_into_its_first_layer(wine):
    X, y = wine
    raw = 3.0 * X + 1.0
    pipe = make_pipeline(MinMaxScaler(), ReluMetricLearner(**FAST)).fit(raw, y)
    target = as_target(pipe)
    assert isinstance(target, ReluNetworkTarget) and not target.is_linear
    assert target.threshold == 2.0 and target.n_features == X.shape[1]
    np.testing.assert_allclose(target.embed(raw), pipe.transform(raw), rtol=1e-9, atol=1e-12)
    scaled = as_target(make_pipeline(StandardScaler(), ReluMetricLearner(**FAST)).fit(raw, y))
    assert isinstance(scaled, ReluNetworkTarget)


def test_network_target_validates_its_layers():
    with pytest.raises(ValueError, match="Layer 1"):
        ReluNetworkTarget([(np.eye(2), np.zeros(2)), (np.ones((1, 3)), np.zeros(1))])
    with pytest.raises(ValueError, match="NaN"):
        ReluNetworkTarget([(np.array([[np.nan]]), np.zeros(1))])
    with pytest.raises(ValueError, match="at least one layer"):
        ReluNetworkTarget([])


def test_callable_target_checks_what_the_callables_return():
    target = CallableTarget(lambda X: X[:, :1], lambda X, G: G, n_features=2)
    with pytest.raises(ValueError, match="vjp returned shape"):
        target.vjp(np.zeros((3, 2)), np.zeros((3, 1)))
    bad = CallableTarget(lambda X: X[0], lambda X, G: X, n_features=2)
    with pytest.raises(ValueError, match="embed returned shape"):
        bad.embed(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="callables"):
        CallableTarget(None, lambda X, G: X, n_features=2)
    with pytest.raises(ValueError, match="n_features"):
        CallableTarget(np.tanh, np.tanh, n_features=0)


def _callable_copy(learner):
    """The learner's network as a CallableTarget (a user's own network, in NumPy)."""
    target = learner.__skrobust_target__()
    return CallableTarget(target.embed, target.vjp, target.n_features, target.threshold)


def test_a_callable_target_is_attacked_as_the_network_it_wraps(wine):
    X, y = wine
    learner = ReluMetricLearner(**FAST).fit(X, y)
    wrapped = _callable_copy(learner)
    pairs, _, _ = make_pairs(X, y, 30, random_state=0)
    own = AckMetricAttack(FrozenEstimator(learner), eps=0.05).fit().attack(pairs)
    theirs = AckMetricAttack(wrapped, eps=0.05).fit().attack(pairs)
    np.testing.assert_array_equal(own.adversarial, theirs.adversarial)
    assert own.success.any()


def test_certificates_refuse_a_callable_target_and_say_what_works(wine):
    from skrobust.certificates import certify_knn, certify_pairs

    X, y = wine
    wrapped = _callable_copy(ReluMetricLearner(**FAST).fit(X, y))
    pairs, _, _ = make_pairs(X, y, 5, random_state=0)
    with pytest.raises(TypeError, match="attack"):
        certify_pairs(wrapped, pairs, 0.01)
    with pytest.raises(TypeError, match="attack"):
        certify_knn(as_knn_target(wrapped, X, y), X[:3], 0.01, method="interval")


# -- a PyTorch model, attacked through the protocol -----------------------------------------


def _torch_target(torch, module, n_features):
    """The documented wrapping: a forward pass and torch.autograd.grad as NumPy callables."""

    def embed(X):
        with torch.no_grad():
            return module(torch.from_numpy(X)).numpy()

    def vjp(X, G):
        x = torch.from_numpy(X).requires_grad_(True)
        (grad,) = torch.autograd.grad(module(x), x, torch.from_numpy(G))
        return grad.numpy()

    return CallableTarget(embed, vjp, n_features=n_features)


def test_a_pytorch_model_is_attacked_through_the_protocol(wine):
    torch = pytest.importorskip("torch", reason="torch is a test-only dependency")
    threads = torch.get_num_threads()
    # Many tiny products: torch's thread pool costs more than it saves.
    torch.set_num_threads(1)
    try:
        _attack_a_torch_model(torch, *wine)
    finally:
        torch.set_num_threads(threads)


def _attack_a_torch_model(torch, X, y):
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(13, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)
    ).double()
    target = _torch_target(torch, module, 13)
    # The same network as skrobust's own target: equal embeddings, VJPs and attacks.
    layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in module[::2]]
    native = ReluNetworkTarget(layers)
    G = np.random.RandomState(0).normal(size=(len(X), 4))
    np.testing.assert_allclose(target.embed(X), native.embed(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(target.vjp(X, G), native.vjp(X, G), rtol=1e-10, atol=1e-12)
    pairs, _, _ = make_pairs(X, y, 40, random_state=0)
    threshold = float(np.median(target.squared_pair_distances(pairs)))
    result = AckMetricAttack(target, eps=0.05, threshold=threshold).fit().attack(pairs)
    adv = result.adversarial[0]
    assert result.success.mean() > 0.2
    assert np.all(np.abs(adv - pairs).max(axis=2).sum(axis=1) <= 0.05 + 1e-12)
    flipped = (target.squared_pair_distances(adv) > threshold) != (
        target.squared_pair_distances(pairs) > threshold
    )
    np.testing.assert_array_equal(flipped, result.success[0])
    # kNN through the protocol: the strong attack's gradient members run on it.
    knn = as_knn_target(target, X[::2], y[::2])
    cascade = CascadeKNNAttack(knn, eps=0.05, random_state=0).fit()
    strong = cascade.attack(X[1::2], y[1::2])
    assert cascade.stepped_aside_ == ["targeted", "lp", "lp_deep"]
    assert strong.success.any()
    assert np.all(knn.predict(strong.adversarial[0][strong.success[0]])
                  != knn.predict(X[1::2][strong.success[0]]))  # fmt: skip


def test_a_threshold_is_calibrated_for_a_network_without_one(wine):
    from skrobust import calibrate_threshold

    X, y = wine
    pairs, labels, _ = make_pairs(X, y, 100, random_state=0)
    learner = ReluMetricLearner(loss="contrastive", **FAST).fit(X, y)
    assert learner.threshold_ is None
    threshold = calibrate_threshold(learner, pairs, labels)
    D = learner.pair_distance(pairs) ** 2
    accuracy = ((D <= threshold) == (labels == 1)).mean()
    # The best of all thresholds: none between the sorted distances does better.
    candidates = np.concatenate([[-1.0], np.sort(D)])
    best = max(((D <= t) == (labels == 1)).mean() for t in candidates)
    assert accuracy == best > 0.5
