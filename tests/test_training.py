"""The mini-batch training loop, its samplers, and the losses on embeddings."""

import numpy as np
import pytest

from skrobust._network import ReluNetwork
from skrobust._training import (
    Batch,
    PairBatches,
    PointBatches,
    TripletBatches,
    eigenvalue_penalty,
    loss_input_gradient,
    train,
)
from skrobust.losses import ContrastiveLoss, PairHingeLoss, TripletLoss


def _blobs(n_per_class=15, n_classes=3, d=4, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.normal(0.0, 3.0, (n_classes, d))
    X = np.vstack([c + rng.normal(size=(n_per_class, d)) for c in centres])
    return X, np.repeat(np.arange(n_classes), n_per_class)


def _numeric_gradient(f, E, h=1e-6):
    grad = np.zeros_like(E)
    for idx in np.ndindex(E.shape):
        step = np.zeros_like(E)
        step[idx] = h
        grad[idx] = (f(E + step) - f(E - step)) / (2 * h)
    return grad


def _pair_batch(rng, n=6, m=3):
    E = rng.normal(size=(2 * n, m))
    tuples = rng.permutation(2 * n).reshape(n, 2)
    return E, Batch(E, tuples=tuples, signs=rng.choice([-1.0, 1.0], n))


LOSSES = [PairHingeLoss(gamma=3.0), ContrastiveLoss(margin=2.0)]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
@pytest.mark.parametrize("form", ["all_pairs", "given_pairs"])
def test_pair_loss_gradient_matches_finite_differences(loss, form):
    rng = np.random.RandomState(0)
    if form == "all_pairs":
        E = rng.normal(size=(7, 3))
        batch = Batch(E, y=rng.randint(0, 2, 7))
    else:
        E, batch = _pair_batch(rng)
    value, grad = loss(E, batch)
    assert value > 0  # some terms active: the check below checks something
    np.testing.assert_allclose(
        grad, _numeric_gradient(lambda Z: loss(Z, batch)[0], E), rtol=1e-5, atol=1e-8
    )


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
def test_all_pairs_equals_the_same_pairs_given_explicitly(loss):
    rng = np.random.RandomState(1)
    E = rng.normal(size=(6, 2))
    y = np.array([0, 1, 0, 2, 1, 0])
    rows, cols = np.triu_indices(6, k=1)
    explicit = Batch(
        E, tuples=np.stack([rows, cols], 1), signs=np.where(y[rows] == y[cols], 1.0, -1.0)
    )
    v1, g1 = loss(E, Batch(E, y=y))
    v2, g2 = loss(E, explicit)
    assert v1 == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)


def test_pair_hinge_is_eq20():
    E = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    y = np.array([0, 0, 1])
    # D: (0,1) = 2 similar, (0,2) = 9 dissimilar, (1,2) = 5 dissimilar; gamma = 4.
    terms = [max(0, 1 + (2 - 4)), max(0, 1 - (9 - 4)), max(0, 1 - (5 - 4))]
    assert PairHingeLoss(gamma=4.0)(E, Batch(E, y=y))[0] == pytest.approx(np.mean(terms))
    assert PairHingeLoss(gamma=4.0).threshold == 4.0


def test_contrastive_values_by_hand():
    E = np.array([[0.0], [0.5], [0.75], [3.0]])
    batch = Batch(E, tuples=np.array([[0, 1], [0, 2], [0, 3]]), signs=np.array([1.0, -1, -1]))
    # Similar D = 0.25; dissimilar (1 - 0.75)^2 = 0.0625 and max(0, 1 - 3)^2 = 0.
    assert ContrastiveLoss(margin=1.0)(E, batch)[0] == pytest.approx((0.25 + 0.0625) / 3)
    assert ContrastiveLoss().threshold is None


def test_triplet_loss_gradient_and_values():
    rng = np.random.RandomState(2)
    E = rng.normal(size=(9, 3))
    batch = Batch(E, tuples=rng.permutation(9).reshape(3, 3))
    loss = TripletLoss(margin=4.0)
    value, grad = loss(E, batch)
    a, p, n = batch.tuples.T
    expected = np.maximum(
        ((E[a] - E[p]) ** 2).sum(1) - ((E[a] - E[n]) ** 2).sum(1) + 4.0, 0.0
    ).mean()
    assert value == pytest.approx(expected) and value > 0
    np.testing.assert_allclose(
        grad, _numeric_gradient(lambda Z: loss(Z, batch)[0], E), rtol=1e-5, atol=1e-8
    )


def test_losses_refuse_batches_they_cannot_read():
    E = np.zeros((4, 2))
    with pytest.raises(ValueError, match="triplets"):
        TripletLoss()(E, Batch(E, y=np.array([0, 0, 1, 1])))
    with pytest.raises(ValueError, match="pair loss"):
        PairHingeLoss()(E, Batch(E, tuples=np.array([[0, 1, 2]])))


def test_triplet_batches_draw_valid_triplets_once_per_anchor():
    X, y = _blobs(n_per_class=4)
    y = y.copy()
    y[0] = 7  # a class of one point: never an anchor
    sampler = TripletBatches(X, y)
    batches = list(sampler.batches(5, np.random.RandomState(0)))
    anchors = np.concatenate([b.X[b.roles["anchor"]] for b in batches])
    assert len(anchors) == len(X) - 1
    for batch in batches:
        a, p, n = (batch.roles[r] for r in ("anchor", "positive", "negative"))
        assert np.all(batch.y[a] == batch.y[p]) and np.all(batch.y[a] != batch.y[n])
        assert not np.any(np.all(batch.X[a] == batch.X[p], axis=1))
        np.testing.assert_array_equal(batch.tuples, np.stack([a, p, n], axis=1))
    with pytest.raises(ValueError, match="two classes"):
        TripletBatches(X, np.zeros(len(X)))


def test_pair_batches_keep_each_pair_and_its_label():
    rng = np.random.RandomState(0)
    pairs = rng.normal(size=(7, 2, 3))
    signs = rng.choice([-1.0, 1.0], 7)
    seen = []
    for batch in PairBatches(pairs, signs).batches(3, rng):
        for (i, j), s in zip(batch.tuples, batch.signs, strict=True):
            seen.append((tuple(batch.X[i]), tuple(batch.X[j]), s))
    expected = {(tuple(a), tuple(b), s) for (a, b), s in zip(pairs, signs, strict=True)}
    assert set(seen) == expected and len(seen) == 7


def _linear(d=4):
    return ReluNetwork([(np.eye(d), np.zeros(d))], fit_bias=False)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_training_lowers_the_loss_and_is_seeded(solver):
    X, y = _blobs()
    runs = []
    for _ in range(2):
        net = ReluNetwork.initialize([4, 8, 3], random_state=0)
        history = train(
            net, PointBatches(X, y), PairHingeLoss(gamma=4.0), solver=solver,
            learning_rate=0.01 if solver == "adam" else 0.001, n_epochs=40, batch_size=16,
            random_state=3,
        )  # fmt: skip
        runs.append((net, history))
    (a, ha), (b, hb) = runs
    assert ha.loss_curve[-1] < 0.5 * ha.loss_curve[0]
    assert ha.loss_curve == hb.loss_curve
    for p, q in zip(a.parameters, b.parameters, strict=True):
        np.testing.assert_array_equal(p, q)
    # 45 points in batches of 16, 16 and 13.
    assert ha.n_epochs == 40 and ha.best_epoch == 40 and ha.n_steps == 40 * 3


def test_a_linear_metric_trains_in_the_same_loop_and_keeps_zero_bias():
    X, y = _blobs()
    net = _linear()
    train(net, TripletBatches(X, y), TripletLoss(margin=50.0), learning_rate=0.01, n_epochs=5,
          batch_size=8, random_state=0)  # fmt: skip
    W, b = net.layers[0]
    assert not b.any() and not np.allclose(W, np.eye(4))


def test_keep_best_restores_the_best_epoch():
    X, y = _blobs()
    net = ReluNetwork.initialize([4, 8, 3], random_state=0)
    # A learning rate this high makes the objective jump about.
    history = train(net, PointBatches(X, y), PairHingeLoss(gamma=4.0), solver="sgd",
                    learning_rate=0.05, n_epochs=15, batch_size=8, random_state=0,
                    keep="best")  # fmt: skip
    best = int(np.argmin(history.loss_curve)) + 1
    assert history.best_epoch == best
    # Rerun to that epoch with keep="last": the same parameters.
    again = ReluNetwork.initialize([4, 8, 3], random_state=0)
    train(again, PointBatches(X, y), PairHingeLoss(gamma=4.0), solver="sgd",
          learning_rate=0.05, n_epochs=best, batch_size=8, random_state=0)  # fmt: skip
    for p, q in zip(net.parameters, again.parameters, strict=True):
        np.testing.assert_array_equal(p, q)


def test_the_hook_sees_each_batch_and_its_output_is_trained_on():
    X, y = _blobs()
    calls = []

    def shift(network, batch, loss, rng):
        calls.append(len(batch.X))
        value, grad = loss_input_gradient(network, batch.X, batch, loss)
        assert grad.shape == batch.X.shape and np.isfinite(value)
        return batch.X + 1.0

    def identity(network, batch, loss, rng):
        return batch.X

    results = {}
    for name, hook in (("none", None), ("identity", identity), ("shift", shift)):
        net = ReluNetwork.initialize([4, 6, 2], random_state=0)
        train(net, PointBatches(X, y), PairHingeLoss(gamma=4.0), n_epochs=3, batch_size=20,
              random_state=0, perturb=hook)  # fmt: skip
        results[name] = net.parameters
    assert calls == [20, 20, 5] * 3
    for p, q in zip(results["none"], results["identity"], strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.allclose(results["none"][0], results["shift"][0])
    # The caller's data is untouched by the hook.
    np.testing.assert_array_equal(X, _blobs()[0])


def test_loss_input_gradient_matches_finite_differences():
    X, y = _blobs(n_per_class=3, d=3)
    net = ReluNetwork.initialize([3, 5, 2], random_state=1)
    batch = Batch(X, y=y)
    loss = ContrastiveLoss(margin=3.0)
    _, grad = loss_input_gradient(net, X, batch, loss)
    numeric = _numeric_gradient(lambda Z: loss(net.embed(Z), batch)[0], X)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("fit_bias", [True, False])
def test_eigenvalue_penalty_is_the_top_eigenvalues_of_the_last_layer(fit_bias):
    net = ReluNetwork.initialize([3, 4, 3], random_state=2, fit_bias=fit_bias)
    weights = np.array([1.0, 0.5, 0.25, 9.0])  # a fourth eigenvalue of M_L is 0
    penalty = eigenvalue_penalty(weights)
    W = net.layers[-1][0]
    lam = np.sort(np.linalg.eigvalsh(W.T @ W))[::-1]
    value, grads = penalty(net)
    assert value == pytest.approx(weights @ lam)
    index = -2 if fit_bias else -1
    assert all(g is None for i, g in enumerate(grads) if i != len(grads) + index)

    def f(V):
        return float(weights @ np.sort(np.linalg.eigvalsh(V.T @ V))[::-1])

    np.testing.assert_allclose(grads[index], _numeric_gradient(f, W), rtol=1e-5, atol=1e-8)


def test_penalty_enters_the_objective_and_the_step():
    X, y = _blobs()
    plain = ReluNetwork.initialize([4, 6, 3], random_state=0)
    shrunk = ReluNetwork.initialize([4, 6, 3], random_state=0)
    kw = dict(n_epochs=10, batch_size=16, random_state=0, learning_rate=0.01)
    h_plain = train(plain, PointBatches(X, y), PairHingeLoss(gamma=4.0), **kw)
    h_shrunk = train(shrunk, PointBatches(X, y), PairHingeLoss(gamma=4.0),
                     penalty=eigenvalue_penalty(np.array([5.0])), **kw)  # fmt: skip
    assert h_shrunk.loss_curve[0] > h_plain.loss_curve[0]
    top = [np.linalg.norm(net.layers[-1][0], 2) for net in (plain, shrunk)]
    assert top[1] < top[0]


def test_divergence_raises():
    X, y = _blobs()
    with pytest.raises(FloatingPointError, match="lower learning_rate"):
        train(_linear(), PointBatches(X, y), ContrastiveLoss(), solver="sgd",
              learning_rate=100.0, n_epochs=100, random_state=0)  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"solver": "lbfgs"}, "solver"),
        ({"keep": "first"}, "keep"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"batch_size": 2.5}, "batch_size"),
    ],
)
def test_bad_loop_parameters_raise(kwargs, match):
    X, y = _blobs()
    with pytest.raises(ValueError, match=match):
        train(_linear(), PointBatches(X, y), PairHingeLoss(), **kwargs)
