"""Tests of the numba kernels of the attack against plain NumPy references."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skrobust import _kernels

from .strategies import boxes, points_in_box


def gain(g, X, a, eps, lo, hi):
    """``sum_k |g_k| r_k(a)``: how far the split ``a + (eps - a)`` lets ``v`` follow ``g``."""
    up = g >= 0
    A = np.where(up, hi - X[0], X[0] - lo)
    B = np.where(up, X[1] - lo, hi - X[1])
    return float(np.sum(np.abs(g) * (np.minimum(a, A) + np.minimum(eps - a, B))))


@given(
    st.integers(1, 6).flatmap(
        lambda d: st.tuples(
            hnp.arrays(np.float64, d, elements=st.floats(-3, 3)), st.just(d), boxes()
        )
    ),
    st.floats(0.0, 1.0),
    st.data(),
)
def test_shared_vertex_split_maximises_the_gain_exactly(problem, eps, data):
    g, d, (lo, hi) = problem
    X = data.draw(points_in_box(2, d, (lo, hi)))
    Z_best = (X[0] - X[1])[None, :]
    delta = np.empty((1, d))
    split = np.empty(1)
    _kernels.shared_vertex(g[None, :], X[None], Z_best, np.ones(1), eps, lo, hi, delta, split)
    a = split[0]
    assert 0.0 <= a <= eps
    # The gain is concave and piecewise linear: its maximum is at a breakpoint or an end.
    up = g >= 0
    candidates = np.concatenate(
        [[0.0, eps], np.where(up, hi - X[0], X[0] - lo), eps - np.where(up, X[1] - lo, hi - X[1])]
    )
    candidates = np.clip(candidates, 0.0, eps)
    best = max(gain(g, X, c, eps, lo, hi) for c in candidates)
    assert gain(g, X, a, eps, lo, hi) >= best - 1e-12 * (1.0 + best)
    # delta moves z to the vertex: v within the split's per-point bounds and the box.
    v = Z_best[0] + delta[0] - (X[0] - X[1])
    assert np.all(np.abs(v) <= eps + 1e-12)
    assert float(g @ v) >= gain(g, X, eps / 2, eps, lo, hi) - 1e-12 * (1.0 + best)


@given(st.integers(1, 5), st.floats(0.0, 0.5), st.floats(0.0, 1.0), st.data())
def test_split_pairs_respects_the_split_and_the_box(d, eps, share, data):
    X = data.draw(points_in_box(2, d))[None]
    a = share * eps
    # A feasible difference: any v in the box of the split.
    lo_v = np.maximum(-a, -X[0, 0]) - np.minimum(eps - a, 1 - X[0, 1])
    hi_v = np.minimum(a, 1 - X[0, 0]) - np.maximum(-(eps - a), -X[0, 1])
    t = data.draw(hnp.arrays(np.float64, d, elements=st.floats(0, 1)))
    v = lo_v + t * (hi_v - lo_v)
    Z_best = (X[0, 0] - X[0, 1] + v)[None]
    out = np.empty_like(X)
    _kernels.split_pairs(X, Z_best, np.array([[a, eps - a]]), 0.0, 1.0, out)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out[0, 0] - X[0, 0]).max() <= a + 1e-12
    assert np.abs(out[0, 1] - X[0, 1]).max() <= eps - a + 1e-12
    np.testing.assert_allclose(out[0, 0] - out[0, 1], Z_best[0], atol=1e-12)
