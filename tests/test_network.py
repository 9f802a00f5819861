"""ReLU networks: forward pass, input VJP (eq. 10-11) and parameter gradients, checked
against finite differences and the explicit Jacobian."""

import numpy as np
import pytest

from skrobust._network import ReluNetwork, relu_forward, relu_vjp

SIZES = [[3, 1], [3, 4, 2], [4, 5, 3, 2], [2, 6, 6, 6, 3]]


def _network(sizes, seed):
    net = ReluNetwork.initialize(sizes, random_state=seed)
    rng = np.random.RandomState(seed + 100)
    for _, b in net.layers:
        b[...] = rng.normal(0.0, 0.5, b.shape)
    return net


def _explicit_jacobian(layers, x):
    """``J = W_L D_{L-1} W_{L-1} ... D_1 W_1``, ``D_l`` the 0/1 diagonal of the hidden units
    on at ``x``: the chain rule written out, independent of the code under test."""
    J = np.eye(len(x))
    h = x
    for index, (W, b) in enumerate(layers):
        pre = W @ h + b
        J = W @ J
        if index < len(layers) - 1:
            J = (pre > 0)[:, None] * J
            h = np.maximum(pre, 0.0)
    return J


def _central_difference(f, x, h=1e-6):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(len(x))])


def _min_abs_preactivation(layers, x):
    h, smallest = x, np.inf
    for W, b in layers[:-1]:
        pre = W @ h + b
        smallest = min(smallest, np.abs(pre).min())
        h = np.maximum(pre, 0.0)
    return smallest


@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_forward_matches_the_layer_formula(sizes):
    net = _network(sizes, 0)
    X = np.random.RandomState(1).normal(size=(7, sizes[0]))
    expected = []
    for x in X:
        h = x
        for index, (W, b) in enumerate(net.layers):
            h = W @ h + b
            if index < len(net.layers) - 1:
                h = np.maximum(h, 0.0)
        expected.append(h)
    np.testing.assert_allclose(net.embed(X), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(relu_forward(net.layers, X), net.forward(X)[0])


@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_vjp_matches_the_explicit_jacobian(sizes):
    net = _network(sizes, 2)
    rng = np.random.RandomState(3)
    X = rng.normal(size=(6, sizes[0]))
    G = rng.normal(size=(6, sizes[-1]))
    V = relu_vjp(net.layers, X, G)
    for x, g, v in zip(X, G, V, strict=True):
        np.testing.assert_allclose(v, _explicit_jacobian(net.layers, x).T @ g, rtol=1e-12)
    # The Jacobian itself: the VJPs of the unit vectors are its rows.
    x = X[0]
    rows = relu_vjp(net.layers, np.repeat(x[None], sizes[-1], 0), np.eye(sizes[-1]))
    np.testing.assert_allclose(rows, _explicit_jacobian(net.layers, x), rtol=1e-12)


@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_input_gradient_matches_finite_differences(sizes):
    net = _network(sizes, 4)
    rng = np.random.RandomState(5)
    worst = 0.0
    for _ in range(20):
        x = rng.normal(size=sizes[0])
        if _min_abs_preactivation(net.layers, x) < 1e-3:
            continue  # a unit at its kink: the derivative there is one-sided
        g = rng.normal(size=sizes[-1])
        numeric = _central_difference(lambda z: g @ net.embed(z[None])[0], x)  # noqa: B023
        analytic = relu_vjp(net.layers, x[None], g[None])[0]
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
        worst = max(worst, np.abs(analytic - numeric).max())
    assert worst < 1e-7


@pytest.mark.parametrize("fit_bias", [True, False])
@pytest.mark.parametrize("sizes", SIZES, ids=str)
def test_parameter_gradients_match_finite_differences(sizes, fit_bias):
    net = _network(sizes, 6)
    net.fit_bias = fit_bias
    rng = np.random.RandomState(7)
    X = rng.normal(size=(5, sizes[0]))
    G = rng.normal(size=(5, sizes[-1]))
    _, inputs = net.forward(X)
    grads = net.backward(inputs, G)
    assert [g.shape for g in grads] == [p.shape for p in net.parameters]
    for p, g in zip(net.parameters, grads, strict=True):
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            saved = p[idx]
            p[idx] = saved + 1e-6
            up = np.sum(G * net.embed(X))
            p[idx] = saved - 1e-6
            down = np.sum(G * net.embed(X))
            p[idx] = saved
            numeric[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)


def test_input_vjp_of_a_forward_pass_equals_relu_vjp():
    net = _network([3, 5, 2], 8)
    X = np.random.RandomState(9).normal(size=(4, 3))
    G = np.random.RandomState(10).normal(size=(4, 2))
    _, inputs = net.forward(X)
    np.testing.assert_array_equal(net.input_vjp(inputs, G), relu_vjp(net.layers, X, G))


def test_one_layer_without_bias_is_a_linear_metric():
    W = np.array([[1.0, -2.0], [0.5, 3.0]])
    net = ReluNetwork([(W, np.zeros(2))], fit_bias=False)
    X = np.array([[0.3, -0.7], [2.0, 1.0]])
    np.testing.assert_allclose(net.embed(X), X @ W.T)
    np.testing.assert_allclose(relu_vjp(net.layers, X, np.ones((2, 2))), np.ones((2, 2)) @ W)
    assert len(net.parameters) == 1


def test_initialize_is_seeded_and_scaled():
    a = ReluNetwork.initialize([50, 400, 300], random_state=0)
    b = ReluNetwork.initialize([50, 400, 300], random_state=0)
    for (Wa, ba), (Wb, _) in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(Wa, Wb)
        assert not ba.any()
    # He: variance 2 / fan_in for layers feeding a ReLU, 1 / fan_in for the last.
    assert abs(a.layers[0][0].var() * 50 / 2.0 - 1.0) < 0.05
    assert abs(a.layers[1][0].var() * 400 - 1.0) < 0.05


def test_set_parameters_restores_a_copy():
    net = _network([2, 3, 1], 11)
    saved = net.copy_parameters()
    for p in net.parameters:
        p += 1.0
    net.set_parameters(saved)
    for p, s in zip(net.parameters, saved, strict=True):
        np.testing.assert_array_equal(p, s)
