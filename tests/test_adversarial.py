"""The adversarial-training defences: RML (AdversarialHeadLearner), TLA
(AdversarialAnchorLearner) and adversarial metric training (AdversarialBatchLearner)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import skrobust._adversarial as adversarial
from skrobust import (
    AdversarialAnchorLearner,
    AdversarialBatchLearner,
    AdversarialHeadLearner,
    RobustMetricLearner,
)
from skrobust._adversarial import (
    MinedTripletBatches,
    anchor_pgd,
    mined_batch,
    role_pgd,
)
from skrobust._network import ReluNetwork
from skrobust._training import _objective, loss_input_gradient
from skrobust.certificates import certified_knn_accuracy
from skrobust.losses import (
    AngularLoss,
    ContrastiveLoss,
    PairHingeLoss,
    TripletLoss,
    semi_hard_triplets,
)
from skrobust.metrics import robust_accuracy_score
from skrobust.retrieval import make_retrieval_scorer, retrieval_scores
from skrobust.targets import LinearTarget, as_target

# RML's NT-ML start (RobustMetricLearner, 500 steps) warns on these small fits; what it warns
# about is tested in test_learner.py.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LEARNERS = [AdversarialHeadLearner, AdversarialAnchorLearner, AdversarialBatchLearner]
FAST = {"n_epochs": 3, "batch_size": 16, "random_state": 0}


# Every scikit-learn check passes: no expected failures to list.
@parametrize_with_checks(
    [
        AdversarialHeadLearner((), n_epochs=2),
        AdversarialAnchorLearner((4,), n_epochs=2),
        AdversarialBatchLearner((4,), n_epochs=2, loss="contrastive"),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _blobs(n_per_class=8, n_classes=3, d=3, seed=0):
    """Points in [0, 1]^d around well separated class centres."""
    rng = np.random.RandomState(seed)
    centres = rng.uniform(0.2, 0.8, (n_classes, d))
    X = np.vstack([c + 0.08 * rng.normal(size=(n_per_class, d)) for c in centres])
    return np.clip(X, 0.0, 1.0), np.repeat(np.arange(n_classes), n_per_class)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


# -- loss and gradient against finite differences ----------------------------------------

LOSSES = [TripletLoss(margin=0.5), ContrastiveLoss(margin=1.5), AngularLoss(40.0), PairHingeLoss()]


def _numeric_parameter_gradient(network, X, batch, loss, h=1e-6):
    grads = []
    for p in network.parameters:
        g = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            saved = p[index]
            p[index] = saved + h
            up = _objective(network, X, batch, loss, None)[0]
            p[index] = saved - h
            down = _objective(network, X, batch, loss, None)[0]
            p[index] = saved
            g[index] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def _method_batch(method, network, X, y, loss, eps=0.1):
    """One batch as each method builds it: the adversarial points and the mined triplets,
    from here on held fixed."""
    rng = np.random.RandomState(0)
    if method == "rml":
        # Anchors fixed in advance (generated once, here from another network).
        frozen = ReluNetwork.initialize([X.shape[1], X.shape[1]], random_state=1)
        anchors = anchor_pgd(eps, eps / 2, 5, (0.0, 1.0))(frozen, X, y)
        sampler = MinedTripletBatches(X, y, network, loss.arity, anchors=anchors)
    elif method == "tla":
        sampler = MinedTripletBatches(
            X, y, network, loss.arity, anchors=anchor_pgd(eps, eps / 2, 5, (0.0, 1.0))
        )
    else:
        sampler = MinedTripletBatches(X, y, network, loss.arity)
    batch = next(sampler.batches(len(X), rng))
    X_adv = batch.X
    if method == "amt":
        X_adv = role_pgd(("anchor", "negative"), eps, eps / 2, 5, (0.0, 1.0))(
            network, batch, loss, rng
        )
    return batch, X_adv


@pytest.mark.parametrize("method", ["rml", "tla", "amt"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
@pytest.mark.parametrize("hidden", [(), (5,)], ids=["linear", "relu"])
def test_parameter_gradient_matches_finite_differences(method, loss, hidden):
    X, y = _blobs(n_per_class=4)
    network = ReluNetwork.initialize([3, *hidden, 2], random_state=0)
    batch, X_adv = _method_batch(method, network, X, y, loss)
    assert len(batch.tuples)
    if method != "amt":
        assert not np.array_equal(X_adv[batch.roles["anchor"]], X[batch.tuples[:, 0] % len(X)])
    value, grads = _objective(network, X_adv, batch, loss, None)
    assert value > 0  # some terms active: the comparison checks something
    numeric = _numeric_parameter_gradient(network, X_adv, batch, loss)
    for g, n in zip(grads, numeric, strict=True):
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
def test_the_training_attack_gradient_matches_finite_differences(loss):
    # The input gradient PGD ascends in adversarial metric training, at a perturbed batch.
    X, y = _blobs(n_per_class=4)
    network = ReluNetwork.initialize([3, 6, 2], random_state=2)
    batch, X_adv = _method_batch("amt", network, X, y, loss)
    _, G = loss_input_gradient(network, X_adv, batch, loss)
    h, numeric = 1e-6, np.zeros_like(X_adv)
    for index in np.ndindex(X_adv.shape):
        up, down = X_adv.copy(), X_adv.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (
            loss_input_gradient(network, up, batch, loss)[0]
            - loss_input_gradient(network, down, batch, loss)[0]
        ) / (2 * h)
    np.testing.assert_allclose(G, numeric, rtol=1e-5, atol=1e-7)


# -- batches, mining and the training attacks --------------------------------------------


def test_a_mined_batch_gives_every_triplet_its_own_rows():
    A = np.array([[10.0], [11.0], [12.0], [13.0]])
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    triplets = np.array([[0, 1, 2], [3, 2, 0]])
    batch = mined_batch(A, X, y, triplets, 3)
    assert batch.X[:, 0].tolist() == [10.0, 13.0, 1.0, 2.0, 2.0, 0.0]
    assert batch.tuples.tolist() == [[0, 2, 4], [1, 3, 5]]
    assert {r: v.tolist() for r, v in batch.roles.items()} == {
        "anchor": [0, 1],
        "positive": [2, 3],
        "negative": [4, 5],
    }
    pairs = mined_batch(A, X, y, triplets, 2)
    assert pairs.tuples.tolist() == [[0, 2], [1, 3], [0, 4], [1, 5]]
    assert pairs.signs.tolist() == [1.0, 1.0, -1.0, -1.0]


def test_batches_mine_semi_hard_negatives_under_the_current_network():
    X, y = _blobs(n_per_class=5, seed=3)
    network = ReluNetwork.initialize([3, 2], random_state=0)
    batch = next(MinedTripletBatches(X, y, network, 3).batches(len(X), np.random.RandomState(0)))
    E = network.embed(batch.X)
    a, p, n = batch.tuples.T
    # One triplet per point (every class has another point in the batch).
    assert len(a) == len(X)
    assert np.all(batch.y[a] == batch.y[p]) and np.all(batch.y[a] != batch.y[n])
    # Each negative is the documented one among the batch's points of other classes.
    Ex = network.embed(X)
    for i in range(len(a)):
        d_pos = np.sum((E[a[i]] - E[p[i]]) ** 2)
        d_all = np.sum((Ex - E[a[i]]) ** 2, axis=1)
        others = d_all[y != batch.y[a[i]]]
        farther = others[others > d_pos]
        expected = farther.min() if len(farther) else others.max()
        assert np.sum((E[n[i]] - E[a[i]]) ** 2) == pytest.approx(expected)


@pytest.mark.parametrize("roles", [("anchor",), ("positive",), ("negative",), adversarial.ROLES])
def test_role_pgd_moves_only_the_chosen_roles_within_budget_and_box(roles):
    X, y = _blobs(n_per_class=5, seed=4)
    network = ReluNetwork.initialize([3, 6, 2], random_state=0)
    loss = TripletLoss(margin=5.0)
    batch = next(MinedTripletBatches(X, y, network, 3).batches(len(X), np.random.RandomState(0)))
    before = batch.X.copy()
    X_adv = role_pgd(roles, 0.05, 0.02, 5, (0.0, 1.0))(network, batch, loss, None)
    np.testing.assert_array_equal(batch.X, before)
    moved = np.any(X_adv != batch.X, axis=1)
    chosen = np.zeros(len(X_adv), dtype=bool)
    for role in roles:
        chosen[batch.roles[role]] = True
    assert moved[chosen].any() and not moved[~chosen].any()
    assert np.abs(X_adv - batch.X).max() <= 0.05 + 1e-12
    assert X_adv.min() >= 0.0 and X_adv.max() <= 1.0
    # With a margin every triplet violates, the loss is linear in D: ascent raises it.
    assert loss(network.embed(X_adv), batch)[0] > loss(network.embed(batch.X), batch)[0]


def test_tla_mines_negatives_for_the_adversarial_anchors():
    X, y = _blobs(n_per_class=5, seed=5)
    network = ReluNetwork.initialize([3, 2], random_state=0)
    attack = anchor_pgd(0.2, 0.1, 5, (0.0, 1.0))
    # The same generator state: the same shuffle and the same drawn positives.
    adv = next(MinedTripletBatches(X, y, network, 3, anchors=attack).batches(15, _rng()))
    nat = next(MinedTripletBatches(X, y, network, 3).batches(15, _rng()))
    roles = adv.roles
    np.testing.assert_array_equal(adv.X[roles["positive"]], nat.X[roles["positive"]])
    anchors, natural = adv.X[roles["anchor"]], nat.X[roles["anchor"]]
    assert 0 < np.abs(anchors - natural).max() <= 0.2 + 1e-12
    # Each negative is the semi-hard one for the adversarial anchor, among the batch's
    # points of other classes (the batch is all of X).
    E, E_points = network.embed(adv.X), network.embed(X)
    a, p, n = adv.tuples.T
    for i in range(len(a)):
        d_pos = np.sum((E[a[i]] - E[p[i]]) ** 2)
        others = np.sum((E_points[y != adv.y[a[i]]] - E[a[i]]) ** 2, axis=1)
        farther = others[others > d_pos]
        expected = farther.min() if len(farther) else others.max()
        assert np.sum((E[n[i]] - E[a[i]]) ** 2) == pytest.approx(expected)
    # The adversarial anchors changed some of the mined negatives.
    assert np.any(adv.X[roles["negative"]] != nat.X[roles["negative"]])


def _rng():
    return np.random.RandomState(0)


def _count_calls(monkeypatch, name):
    calls = []
    original = getattr(adversarial, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(adversarial, name, counted)
    return calls


def test_rml_attacks_once_tla_every_batch_and_amt_every_step(monkeypatch, digits):
    X, y = digits
    params = {"n_epochs": 2, "batch_size": 60, "random_state": 0, "attack_max_iter": 3}
    # 240 points in batches of 60: 4 batches per epoch, 8 in all.
    calls = _count_calls(monkeypatch, "retrieval_pgd")
    AdversarialHeadLearner((), **params).fit(X, y)
    assert len(calls) == 1
    calls.clear()
    AdversarialAnchorLearner((), **params).fit(X, y)
    assert len(calls) == 8
    calls.clear()
    AdversarialBatchLearner((), **params).fit(X, y)
    assert len(calls) == 0
    steps = _count_calls(monkeypatch, "loss_input_gradient")
    AdversarialBatchLearner((), **params).fit(X, y)
    assert len(steps) == 8 * 3
    steps.clear()
    AdversarialAnchorLearner((), **params, robust_eps=0.0).fit(X, y)
    assert len(calls) == 0 and len(steps) == 0


def test_rml_heads_the_ntml_embedding(digits):
    X, y = digits
    rml = AdversarialHeadLearner((), n_components=10, **FAST).fit(X, y)
    ntml = RobustMetricLearner(10, alpha=0.0).fit(X, y)
    W0 = ntml.components_
    ((W, b),) = rml.layers_
    # W = V W0 for the head V, a 10 x 10 matrix: W's rows lie in the row space of W0.
    V = W @ np.linalg.pinv(W0)
    np.testing.assert_allclose(V @ W0, W, atol=1e-8)
    assert not np.allclose(V, np.eye(10))
    np.testing.assert_allclose(rml.transform(X), X @ W.T + b)


def test_rml_on_a_network_keeps_the_architecture(digits):
    X, y = digits
    rml = AdversarialHeadLearner((12,), n_components=6, **FAST).fit(X, y)
    assert [W.shape for W, _ in rml.layers_] == [(12, 64), (6, 12)]


# -- the estimator API -----------------------------------------------------------------


@pytest.mark.parametrize("learner", LEARNERS)
@pytest.mark.parametrize("hidden", [(), (8,)])
def test_same_random_state_same_model(learner, hidden, digits):
    X, y = digits
    first = learner(hidden, 6, **FAST).fit(X, y)
    second = learner(hidden, 6, **FAST).fit(X, y)
    other = learner(hidden, 6, **{**FAST, "random_state": 1}).fit(X, y)
    for (W1, b1), (W2, b2) in zip(first.layers_, second.layers_, strict=True):
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(first.transform(X), other.transform(X))


@pytest.mark.parametrize("learner", LEARNERS)
def test_linear_models_are_linear_targets_and_networks_are_not(learner, digits):
    X, y = digits
    linear = as_target(learner((), 5, **FAST).fit(X, y))
    assert isinstance(linear, LinearTarget)
    np.testing.assert_allclose(linear.embed(X), learner((), 5, **FAST).fit(X, y).transform(X))
    network = learner((8,), 5, **FAST).fit(X, y)
    target = as_target(network)
    assert not target.is_linear
    np.testing.assert_allclose(target.embed(X), network.transform(X))


@pytest.mark.parametrize("learner", LEARNERS)
def test_attackable_and_certifiable_through_the_same_functions(learner, digits):
    X, y = digits
    for hidden in [(), (8,)]:
        pipe = make_pipeline(learner(hidden, 8, **FAST), KNeighborsClassifier(3))
        pipe.fit(X[:160], y[:160])
        clean = pipe.score(X[160:], y[160:])
        attacked = robust_accuracy_score(pipe, X[160:], y[160:], eps=0.02, attack="paper")
        method = "interval" if hidden else "pairwise"
        certified = certified_knn_accuracy(pipe, X[160:], y[160:], 0.02, method=method)
        assert certified <= attacked <= clean
        retrieval = retrieval_scores(pipe, X[160:], y[160:], k=1, eps=0.05, nmi=False)
        assert 0.0 <= retrieval["recall@1"] <= 1.0


def test_pairwise_certificate_applies_to_the_linear_models(digits):
    X, y = digits
    pipe = make_pipeline(AdversarialBatchLearner((), 8, **FAST), KNeighborsClassifier(3))
    pipe.fit(X[:160], y[:160])
    pairwise = certified_knn_accuracy(pipe, X[160:], y[160:], 0.01, method="pairwise")
    interval = certified_knn_accuracy(pipe, X[160:], y[160:], 0.01, method="interval")
    assert pairwise >= interval


def test_grid_search_tunes_the_budget_with_retrieval_scorers(digits):
    X, y = digits
    search = GridSearchCV(
        AdversarialBatchLearner((), 8, **FAST),
        {"robust_eps": [0.0, 0.05]},
        scoring={
            "clean": make_retrieval_scorer("recall@1"),
            "attacked": make_retrieval_scorer("recall@1", eps=0.05),
        },
        refit="attacked",
        cv=2,
    ).fit(X, y)
    assert search.best_params_["robust_eps"] in (0.0, 0.05)
    results = search.cv_results_
    assert np.all(results["mean_test_attacked"] <= results["mean_test_clean"])


@pytest.mark.parametrize("learner", LEARNERS)
def test_clone_and_pickle(learner, digits):
    X, y = digits
    fitted = learner((4,), 3, **FAST).fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    assert clone(fitted).get_params() == fitted.get_params()


def test_fit_pairs_is_not_offered():
    # Mining needs classes: a list of labelled pairs has none.
    for learner in LEARNERS:
        assert not hasattr(learner(), "fit_pairs")


def test_the_box_is_checked_and_kept(digits):
    X, y = digits
    with pytest.raises(ValueError, match="outside feature_range"):
        AdversarialAnchorLearner((), feature_range=(0.0, 0.5), **FAST).fit(X, y)
    # Scaled data: the attack's budget and box follow the units of X.
    small = AdversarialBatchLearner((), 4, robust_eps=0.05, feature_range=(0, 1), **FAST)
    large = AdversarialBatchLearner((), 4, robust_eps=0.5, feature_range=(0, 10), **FAST)
    np.testing.assert_allclose(
        small.fit(X, y).transform(X), large.fit(10 * X, y).transform(10 * X), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"perturbed": "both"}, "perturbed"),
        ({"robust_eps": -0.1}, "robust_eps"),
        ({"attack_max_iter": 0}, "attack_max_iter"),
        ({"loss": "lifted"}, "loss"),
        ({"feature_range": (1.0, 0.0)}, "feature_range"),
    ],
)
def test_bad_parameters_are_refused(params, match, digits):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        AdversarialBatchLearner((), **FAST, **params).fit(X, y)


def test_semi_hard_mining_is_the_public_one():
    # The sampler mines with skrobust.losses.semi_hard_triplets: one definition.
    assert adversarial.semi_hard_triplets is semi_hard_triplets
