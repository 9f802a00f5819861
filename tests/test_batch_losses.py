"""The angular loss (value, gradient) and semi-hard mining (the documented negatives)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skrobust._training import Batch
from skrobust.losses import AngularLoss, semi_hard_triplets


def _reference_angular(a, p, n, angle):
    """One triplet, straight from Wang et al.'s formula on unit vectors."""
    t = np.tan(np.radians(angle)) ** 2
    a, p, n = (v / np.linalg.norm(v) for v in (a, p, n))
    return np.log1p(np.exp(4.0 * t * (a + p) @ n - 2.0 * (1.0 + t) * a @ p))


def _triplet_batch(seed, n_points=8, n_triplets=6, m=3):
    """Embeddings of a batch and triplets sharing rows (a point in several roles)."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n_points, m))
    tuples = np.array([rng.choice(n_points, 3, replace=False) for _ in range(n_triplets)])
    return E, Batch(E, tuples=tuples)


def test_angular_loss_is_the_mean_of_the_per_triplet_formula():
    E, batch = _triplet_batch(1)
    expected = np.mean([_reference_angular(*E[t], 40.0) for t in batch.tuples])
    assert AngularLoss(angle=40.0)(E, batch)[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("angle", [30.0, 50.0])
def test_angular_gradient_matches_finite_differences(seed, angle):
    E, batch = _triplet_batch(seed)
    loss = AngularLoss(angle=angle)
    _, grad = loss(E, batch)
    h = 1e-6
    numeric = np.zeros_like(E)
    for index in np.ndindex(E.shape):
        step = np.zeros_like(E)
        step[index] = h
        numeric[index] = (loss(E + step, batch)[0] - loss(E - step, batch)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_angular_loss_sees_directions_only():
    E, batch = _triplet_batch(4)
    loss, grad = AngularLoss()(E, batch)
    scaled, scaled_grad = AngularLoss()(3.0 * E, batch)
    assert scaled == pytest.approx(loss, rel=1e-12)
    # The gradient scales as 1 / scale and is orthogonal to each embedding.
    np.testing.assert_allclose(scaled_grad, grad / 3.0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("ij,ij->i", E, grad), 0.0, atol=1e-12)


def test_angular_loss_prefers_a_negative_on_the_far_side():
    a, p = np.array([1.0, 0.0]), np.array([1.0, 0.1])
    E = np.array([a, p, -a, 0.9 * a + 0.2])
    far = AngularLoss()(E, Batch(E, tuples=np.array([[0, 1, 2]])))[0]
    near = AngularLoss()(E, Batch(E, tuples=np.array([[0, 1, 3]])))[0]
    assert far < near


def test_a_zero_embedding_gets_a_zero_gradient_not_nan():
    E = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss, grad = AngularLoss()(E, Batch(E, tuples=np.array([[0, 1, 2]])))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert not grad[0].any()


def test_angular_loss_needs_triplets_and_costs_nothing_without_any():
    E = np.zeros((0, 2))
    assert AngularLoss()(E, Batch(E, tuples=np.zeros((0, 3), dtype=int)))[0] == 0.0
    with pytest.raises(ValueError, match="triplets"):
        AngularLoss()(np.ones((2, 2)), Batch(np.ones((2, 2)), y=np.array([0, 1])))


def test_angular_loss_validates_its_angle():
    E, batch = _triplet_batch(0)
    with pytest.raises(ValueError, match="angle"):
        AngularLoss(angle=90.0)._validate_params()


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


def test_given_positives_pick_one_triplet_per_anchor():
    E = np.array([[0.0], [1.0], [0.4], [3.0], [2.0]])
    y = np.array([0, 0, 1, 1, 1])
    # Anchor 0, positive 1 (D 1): negatives 2 (0.16), 4 (4), 3 (9) -> 4. Anchor 1,
    # positive 0 (D 1): 4 (D 1) ties with the positive, so 3 (D 4). Anchor 2's positive is
    # 4 (D 2.56): negatives 0 (0.16) and 1 (0.36) are closer -> the farthest, 1. Anchor 3
    # skipped (-1). Anchor 4, positive 3 (D 1): 1 (D 1) ties, so 0 (D 4).
    triplets = semi_hard_triplets(E, E, y, positives=[1, 0, 4, -1, 3])
    assert triplets.tolist() == [[0, 1, 4], [1, 0, 3], [2, 4, 1], [4, 3, 0]]


@pytest.mark.parametrize("positives", [[1, 0, 0, -1], [0, 0, 3, 2], [1, 0, 3], [1, 0, 3, 9]])
def test_positives_must_be_other_points_of_the_class(positives):
    E = np.arange(4.0)[:, None]
    with pytest.raises(ValueError, match="positives"):
        semi_hard_triplets(E, E, [0, 0, 1, 1], positives=np.array(positives))
