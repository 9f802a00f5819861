"""Batch metric losses on embeddings and semi-hard mining: values, gradients, documented
negatives."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skrobust.retrieval import (
    angular_loss,
    contrastive_loss,
    semi_hard_triplets,
    triplet_loss,
)

LOSSES = {
    "triplet": (triplet_loss, {"margin": 1.5}),
    "contrastive": (contrastive_loss, {"margin": 2.0}),
    "angular": (angular_loss, {"angle": 40.0}),
}


def _reference_loss(name, a, p, n, param):
    """One triplet at a time, straight from the formulas of the module docstring."""
    if name == "triplet":
        return max(0.0, np.sum((a - p) ** 2) - np.sum((a - n) ** 2) + param["margin"])
    if name == "contrastive":
        gap = max(0.0, np.sqrt(param["margin"]) - np.linalg.norm(a - n))
        return (np.sum((a - p) ** 2) + gap**2) / 2.0
    t = np.tan(np.radians(param["angle"])) ** 2
    a, p, n = (v / np.linalg.norm(v) for v in (a, p, n))
    f = 4.0 * t * (a + p) @ n - 2.0 * (1.0 + t) * a @ p
    return np.log1p(np.exp(f))


def _triplet_embeddings(seed, n=7, m=3):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, m)) for _ in range(3))


@pytest.mark.parametrize("name", LOSSES)
def test_loss_value_is_the_mean_of_the_per_triplet_formula(name):
    loss_fn, param = LOSSES[name]
    E = _triplet_embeddings(1)
    expected = np.mean([_reference_loss(name, *rows, param) for rows in zip(*E, strict=True)])
    assert loss_fn(*E, **param)[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", range(3))
def test_gradient_of_every_role_matches_finite_differences(name, seed):
    loss_fn, param = LOSSES[name]
    E = _triplet_embeddings(seed)
    _, grads = loss_fn(*E, **param)
    h = 1e-6
    for role in range(3):
        numeric = np.zeros_like(E[role])
        for index in np.ndindex(E[role].shape):
            plus = [e.copy() for e in E]
            minus = [e.copy() for e in E]
            plus[role][index] += h
            minus[role][index] -= h
            numeric[index] = (loss_fn(*plus, **param)[0] - loss_fn(*minus, **param)[0]) / (2 * h)
        np.testing.assert_allclose(grads[role], numeric, atol=1e-6, err_msg=f"role {role}")


def test_triplet_and_contrastive_gradients_cover_active_and_inactive_terms():
    # Triplet 0 satisfies the margin (no gradient); triplet 1 violates it.
    a = np.array([[0.0, 0.0], [0.0, 0.0]])
    p = np.array([[0.1, 0.0], [1.0, 0.0]])
    n = np.array([[3.0, 0.0], [0.0, 0.5]])
    loss, (ga, gp, gn) = triplet_loss(a, p, n, margin=1.0)
    assert loss == pytest.approx((1.0 - 0.25 + 1.0) / 2)
    assert not ga[0].any() and not gp[0].any() and not gn[0].any()
    np.testing.assert_allclose(gn[1], [0.0, -0.5])  # 2 (a - n) / 2
    # Contrastive: negative 0 is beyond sqrt(margin) = 1, negative 1 inside it.
    loss, (_, _, gn) = contrastive_loss(a, p, n, margin=1.0)
    assert loss == pytest.approx((0.01 + 1.0 + 0.25) / 4)
    assert not gn[0].any()
    np.testing.assert_allclose(gn[1], [0.0, -0.25])  # -(1 - 0.5) n / |n| / 2


def test_angular_loss_sees_directions_only():
    E = _triplet_embeddings(4)
    loss, grads = angular_loss(*E)
    scaled, scaled_grads = angular_loss(*(3.0 * e for e in E))
    assert scaled == pytest.approx(loss, rel=1e-12)
    # Gradients scale as 1 / scale, and are orthogonal to the embedding.
    for e, g, g3 in zip(E, grads, scaled_grads, strict=True):
        np.testing.assert_allclose(g3, g / 3.0, atol=1e-12)
        np.testing.assert_allclose(np.einsum("ij,ij->i", e, g), 0.0, atol=1e-12)


def test_a_zero_embedding_gets_a_zero_gradient_not_nan():
    a = np.zeros((1, 2))
    p, n = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    for loss_fn in (angular_loss, contrastive_loss):
        loss, grads = loss_fn(a, p, a.copy())
        assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)
    _, (ga, _, _) = angular_loss(a, p, n)
    assert not ga.any()


@pytest.mark.parametrize("name", LOSSES)
def test_no_triplets_cost_nothing(name):
    loss_fn, param = LOSSES[name]
    empty = np.zeros((0, 3))
    loss, grads = loss_fn(empty, empty, empty, **param)
    assert loss == 0.0 and all(g.shape == (0, 3) for g in grads)


def test_losses_do_not_modify_their_inputs():
    E = _triplet_embeddings(5)
    copies = [e.copy() for e in E]
    for loss_fn, param in LOSSES.values():
        loss_fn(*E, **param)
    for e, c in zip(E, copies, strict=True):
        np.testing.assert_array_equal(e, c)


# -- semi-hard mining --------------------------------------------------------------------


def test_semi_hard_mining_returns_the_documented_negatives_on_a_hand_made_batch():
    # On a line. Class 0 at 0, 1, 2.5; class 1 at 0.8, 3, 6; class 2 at 9 (alone).
    E = np.array([[0.0], [1.0], [2.5], [0.8], [3.0], [6.0], [9.0]])
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    got = {(a, p): n for a, p, n in semi_hard_triplets(E, E, y).tolist()}
    # Anchor 0, positive 1 (D 1): negative 3 (D 0.64) is closer, so the closest farther
    # one is 4 (D 9), not 6 (D 81).
    assert got[0, 1] == 4
    # Anchor 0, positive 2 (D 6.25): 4 (D 9) again.
    assert got[0, 2] == 4
    # Anchor 1, positive 0 (D 1): negatives at D 0.04 (3), 4 (4), 25 (5), 64 (6): 4.
    assert got[1, 0] == 4
    # Anchor 2, positive 0 (D 6.25): 3 (D 2.89) and 4 (D 0.25) are closer; 5 (D 12.25).
    assert got[2, 0] == 5
    # Anchor 3, positive 5 (D 27.04): every negative is closer (0: 0.64, 1: 0.04,
    # 2: 2.89, 6: 67.24 is farther) -> 6.
    assert got[3, 5] == 6
    # Anchor 4, positive 3 (D 4.84): negatives 0 (9), 1 (4), 2 (0.25), 6 (36): 0.
    assert got[4, 3] == 0
    # Anchor 4, positive 5 (D 9): 6 (D 36) is the only one farther.
    assert got[4, 5] == 6
    # Anchor 5, positive 3 (D 27.04): negatives 0 (36), 1 (25), 2 (12.25), 6 (9): none
    # farther but 0 -> 0.
    assert got[5, 3] == 0
    # Anchor 2, positive 1 (D 2.25): 3 (D 2.89) is the closest farther one.
    assert got[2, 1] == 3
    # Point 6 is alone in its class: no triplet has it as anchor.
    assert not any(a == 6 for a, _ in got)
    # Every ordered same-class pair of the others is there once.
    assert len(got) == 3 * 2 + 3 * 2


def test_when_no_negative_is_farther_the_farthest_negative_is_taken():
    # Anchor 0 at 0, positive 1 at 10; negatives at 1, 2 and 3: all closer than 10.
    E = np.array([[0.0], [10.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1, 1])
    triplets = semi_hard_triplets(E, E, y)
    assert triplets[(triplets[:, 0] == 0) & (triplets[:, 1] == 1)].tolist() == [[0, 1, 4]]


def test_mining_uses_the_anchor_embedding_for_anchors():
    # The natural batch mines 3 for anchor 0; its adversarial anchor sits next to 3 and 2,
    # so the closest negative farther than its positive becomes 4.
    E = np.array([[0.0], [1.0], [1.5], [2.0], [4.0]])
    y = np.array([0, 0, 1, 1, 1])
    anchors = E.copy()
    anchors[0] = 1.9
    natural = semi_hard_triplets(E, E, y)
    adversarial = semi_hard_triplets(anchors, E, y)
    assert natural[(natural[:, 0] == 0)].tolist() == [[0, 1, 2]]
    assert adversarial[(adversarial[:, 0] == 0)].tolist() == [[0, 1, 4]]


def test_a_batch_of_one_class_forms_no_triplet():
    E = np.arange(4.0)[:, None]
    assert semi_hard_triplets(E, E, [1, 1, 1, 1]).shape == (0, 3)


@settings(deadline=None)
@given(
    st.integers(2, 9).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 2), min_size=n, max_size=n),
            st.lists(st.floats(-5, 5), min_size=2 * n, max_size=2 * n),
            st.lists(st.floats(-5, 5), min_size=2 * n, max_size=2 * n),
        )
    )
)
def test_mined_triplets_follow_the_definition(drawn):
    labels, natural, moved = drawn
    y = np.array(labels)
    E = np.array(natural).reshape(-1, 2)
    A = np.array(moved).reshape(-1, 2)
    triplets = semi_hard_triplets(A, E, y)
    expected_pairs = {
        (i, j)
        for i in range(len(y))
        for j in range(len(y))
        if i != j and y[i] == y[j] and np.any(y != y[i])
    }
    assert {(i, j) for i, j, _ in triplets.tolist()} == expected_pairs
    assert len(triplets) == len(expected_pairs)
    D = ((A[:, None, :] - E[None, :, :]) ** 2).sum(axis=2)
    for i, j, k in triplets.tolist():
        assert y[k] != y[i]
        negatives = np.flatnonzero(y != y[i])
        farther = negatives[D[i, negatives] > D[i, j]]
        if len(farther):
            assert D[i, k] == D[i, farther].min()
        else:
            assert D[i, k] == D[i, negatives].max()


def test_a_negative_as_far_as_the_positive_is_not_semi_hard():
    # Anchor 0 at 0, positive at 2 (D 4); negatives at -2 (D 4, a tie) and 3 (D 9).
    E = np.array([[0.0], [2.0], [-2.0], [3.0]])
    triplets = semi_hard_triplets(E, E, [0, 0, 1, 1])
    assert triplets[(triplets[:, 0] == 0)].tolist() == [[0, 1, 3]]
