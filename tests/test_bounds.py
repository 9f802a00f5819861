"""Certificates: every bound, upper and lower, under its budget, on unit and non-unit boxes."""

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from sklearn.frozen import FrozenEstimator

from skrobust import (
    AckMetricAttack,
    MetricNorms,
    certified_radius,
    inf_to_2_norm,
    metric_norms,
    perturbed_distance_bounds,
)
from skrobust._mahalanobis import MahalanobisMetric

from .exact import FixedMetric, exact_max_distance, proven_min_distance
from .strategies import boxes, linear_metrics, pairs_in_box, points_in_box, property_examples

BOUNDS = ("paper", "spectral", "frobenius", "triangle", "best")
BUDGETS = ("shared", "per_point")
RTOL = 1e-9


def as_model(W):
    return MahalanobisMetric(np.asarray(W, dtype=np.float64), np.zeros(W.shape[0]))


def valid_bounds(feature_range):
    return BOUNDS if feature_range is not None else ("triangle", "best")


@st.composite
def box_or_none(draw):
    if draw(st.integers(0, 4)) == 0:
        return None
    return draw(boxes())


@st.composite
def certificate_problems(draw, max_features=4, max_pairs=1):
    """``(W, pairs, eps, feature_range)``; ``eps`` up to 0.75 of the box width."""
    W = draw(linear_metrics(max_features=max_features))
    feature_range = draw(box_or_none())
    box = feature_range if feature_range is not None else (-1.0, 1.0)
    pairs = draw(pairs_in_box(W.shape[1], max_pairs=max_pairs, box=box))
    # Hypothesis draws the lower end of a range very often; eps = 0 has its own tests.
    fraction = draw(st.floats(1e-3, 0.75))
    eps = fraction * (box[1] - box[0])
    return W, pairs, eps, feature_range


def test_paper_constant_is_false_per_point():
    # eq. (19) with 2 d eps lam_max under the per-point budget: d=1, W=1, x=(0.9, 0.1),
    # eps=0.1. Moving both points outward reaches D = 1.0, above D + 2 d eps lam_max = 0.84.
    W = np.eye(1)
    pair = np.array([[0.9], [0.1]])
    eps = 0.1
    D = 0.8**2
    perturbed = np.array([[1.0], [0.0]])
    reached = float(np.sum(((perturbed[0] - perturbed[1]) @ W.T) ** 2))
    assert reached == pytest.approx(1.0)
    assert reached > D + 2 * 1 * eps * 1.0
    assert exact_max_distance(W, pair, eps, "per_point", (0.0, 1.0)) == pytest.approx(1.0)
    # skrobust's per-point paper bound doubles the constant, and holds.
    _, upper = perturbed_distance_bounds(
        as_model(W), pair[None], eps, bound="paper", budget="per_point"
    )
    assert upper[0] == pytest.approx(D + 4 * eps) and upper[0] >= reached
    # Under the shared budget the paper's constant is right (and tight enough here).
    _, upper = perturbed_distance_bounds(as_model(W), pair[None], eps, bound="paper")
    assert upper[0] == pytest.approx(D + 2 * eps)
    assert upper[0] >= exact_max_distance(W, pair, eps, "shared", (0.0, 1.0))


@settings(max_examples=property_examples())
@given(certificate_problems(), st.sampled_from(BUDGETS))
@example((np.eye(1), np.array([[[0.9], [0.1]]]), 0.1, (0.0, 1.0)), "per_point").via(
    "the paper's per-point counterexample"
)
def test_bounds_hold_against_exact_worst_case(problem, budget):
    W, pairs, eps, feature_range = problem
    model = metric_norms(as_model(W))
    pair = pairs[0]
    worst_max = exact_max_distance(W, pair, eps, budget, feature_range)
    proven_min, found_min = proven_min_distance(W, pair, eps, budget, feature_range)
    slack = (found_min - proven_min) / (1.0 + worst_max)
    event(
        f"min solver slack {'< 1e-9' if slack < 1e-9 else '< 1e-7' if slack < 1e-7 else '>= 1e-7'}"
    )
    for bound in valid_bounds(feature_range):
        lower, upper = perturbed_distance_bounds(
            model, pairs, eps, bound=bound, budget=budget, feature_range=feature_range
        )
        scale = 1.0 + worst_max
        assert upper[0] >= worst_max - RTOL * scale, bound
        # The minimiser is found numerically; proven_min is a proven lower bound on the true
        # minimum (Frank-Wolfe gap), so this is sound up to the small solver tolerance.
        assert lower[0] <= proven_min + 1e-7 * scale, bound


def random_perturbations(rng, pairs, eps, budget, feature_range, n_draws):
    """Feasible perturbed pairs, (n_draws, n_pairs, 2, d): mostly at the budget's corners."""
    n_pairs, _, d = pairs.shape
    shape = (n_draws, n_pairs, 1)
    if budget == "shared":
        split = rng.uniform(0.0, eps, shape)
        ends = rng.random(shape) < 0.25
        split[ends] = rng.choice([0.0, eps], int(ends.sum()))
        radius = np.concatenate([split, eps - split], axis=2)[..., None]
    else:
        radius = np.full((n_draws, n_pairs, 2, 1), eps)
    sign = rng.choice([-1.0, 1.0], (n_draws, n_pairs, 2, d))
    magnitude = np.where(rng.random(sign.shape) < 0.7, 1.0, rng.random(sign.shape))
    perturbed = pairs[None] + sign * magnitude * radius
    if feature_range is not None:
        # Clipping a point in the box toward the box only shrinks its perturbation.
        perturbed = np.clip(perturbed, *feature_range)
    return perturbed


@settings(max_examples=property_examples())
@given(
    certificate_problems(max_features=8, max_pairs=6),
    st.sampled_from(BUDGETS),
    st.integers(0, 2**32 - 1),
)
def test_bounds_hold_against_random_perturbations(problem, budget, seed):
    W, pairs, eps, feature_range = problem
    rng = np.random.default_rng(seed)
    perturbed = random_perturbations(rng, pairs, eps, budget, feature_range, 64)
    diff = (perturbed[:, :, 0] - perturbed[:, :, 1]) @ W.T
    reached = np.einsum("...i,...i->...", diff, diff)
    model = metric_norms(as_model(W))
    for bound in valid_bounds(feature_range):
        lower, upper = perturbed_distance_bounds(
            model, pairs, eps, bound=bound, budget=budget, feature_range=feature_range
        )
        scale = 1.0 + reached.max(axis=0)
        assert np.all(reached.max(axis=0) <= upper + RTOL * scale), bound
        assert np.all(reached.min(axis=0) >= lower - RTOL * scale), bound


@settings(max_examples=property_examples())
@given(
    certificate_problems(max_features=6, max_pairs=8),
    st.sampled_from(BUDGETS),
    st.floats(0.05, 1.0),
)
def test_bounds_hold_against_the_attacks_output(problem, budget, step_fraction):
    W, pairs, eps, feature_range = problem
    if step_fraction * eps == 0:
        return
    model = metric_norms(as_model(W))
    reached = []
    # A huge threshold makes every pair "similar": the attack pushes them apart (eq. 4).
    # A negative one makes them "dissimilar": it pulls them together (eq. 22).
    for threshold in (1e300, -1.0):
        attack = AckMetricAttack(
            FrozenEstimator(FixedMetric(W, threshold)),
            eps=eps,
            step_size=step_fraction * eps,
            budget=budget,
            feature_range=feature_range,
        ).fit()
        adversarial = attack.attack(pairs).adversarial[0]
        reached.append(as_model(W).pair_distances(adversarial))
    for bound in valid_bounds(feature_range):
        lower, upper = perturbed_distance_bounds(
            model, pairs, eps, bound=bound, budget=budget, feature_range=feature_range
        )
        assert np.all(reached[0] <= upper + RTOL * (1 + reached[0])), bound
        assert np.all(reached[1] >= lower - RTOL * (1 + reached[1])), bound


@settings(max_examples=property_examples())
@given(certificate_problems(max_features=6, max_pairs=4), st.sampled_from(BUDGETS))
def test_best_is_the_tightest_valid_bound(problem, budget):
    W, pairs, eps, feature_range = problem
    model = metric_norms(as_model(W))
    kw = {"budget": budget, "feature_range": feature_range}
    best_lower, best_upper = perturbed_distance_bounds(model, pairs, eps, bound="best", **kw)
    each = [
        perturbed_distance_bounds(model, pairs, eps, bound=b, **kw)
        for b in valid_bounds(feature_range)[:-1]
    ]
    np.testing.assert_allclose(best_lower, np.max([lo for lo, _ in each], axis=0))
    np.testing.assert_allclose(best_upper, np.min([up for _, up in each], axis=0))
    if feature_range is not None:
        # Spectral and Frobenius are never tighter than the budget-correct paper bound.
        paper, spectral, frobenius = each[:3]
        assert np.all(paper[1] <= spectral[1] * (1 + RTOL) + RTOL)
        assert np.all(spectral[1] <= frobenius[1] * (1 + RTOL) + RTOL)
        assert np.all(paper[0] >= spectral[0] - RTOL * (1 + spectral[1]))
        assert np.all(spectral[0] >= frobenius[0] - RTOL * (1 + spectral[1]))
    D = as_model(W).pair_distances(pairs)
    assert np.all(best_lower <= D * (1 + RTOL) + RTOL)
    assert np.all(best_upper >= D * (1 - RTOL) - RTOL)


@settings(max_examples=property_examples())
@given(
    certificate_problems(max_features=6, max_pairs=4),
    st.sampled_from(BUDGETS),
    st.floats(0.2, 5.0),
    st.floats(-3.0, 3.0),
)
def test_bounds_scale_with_the_box(problem, budget, scale, shift):
    # Mapping the box affinely, x -> shift + scale x, with eps -> scale eps and
    # W -> W / scale, is the same problem: every bound must give the same numbers. A bound
    # that ignored the box width (or used it wrongly) would change.
    W, pairs, eps, feature_range = problem
    if feature_range is None:
        feature_range = (float(pairs.min()), float(pairs.max()) + 1.0)
    lo, hi = feature_range
    moved_range = (shift + scale * lo, shift + scale * hi)
    moved = np.clip(shift + scale * pairs, *moved_range)
    for bound in BOUNDS:
        kw = {"bound": bound, "budget": budget}
        before = perturbed_distance_bounds(
            as_model(W), pairs, eps, feature_range=feature_range, **kw
        )
        after = perturbed_distance_bounds(
            as_model(W / scale), moved, scale * eps, feature_range=moved_range, **kw
        )
        np.testing.assert_allclose(before, after, rtol=1e-7, atol=1e-9, err_msg=bound)


def test_box_dependent_bounds_scale_linearly_with_box_width():
    # Same pair and eps, a box twice as wide: the paper's increment doubles.
    model = as_model(np.eye(2))
    pairs = np.array([[[0.2, 0.3], [0.4, 0.1]]])
    _, narrow = perturbed_distance_bounds(model, pairs, 0.1, bound="paper")
    _, wide = perturbed_distance_bounds(model, pairs, 0.1, bound="paper", feature_range=(0, 2))
    D = 0.08
    assert narrow[0] == pytest.approx(D + 2 * 2 * 0.1 * 1 * 1.0)
    assert wide[0] == pytest.approx(D + 2 * 2 * 0.1 * 2 * 1.0)
    _, spectral = perturbed_distance_bounds(
        model, pairs, 0.1, bound="spectral", budget="per_point", feature_range=(0, 2)
    )
    # eq. (24) with box width b: D + 4 d (eps^2 + eps b) ||M||_2 per point.
    assert spectral[0] == pytest.approx(D + 4 * 2 * (0.1**2 + 0.1 * 2))


def test_several_eps_at_once():
    model = as_model(np.array([[1.0, 2.0]]))
    pairs = np.array([[[0.2, 0.3], [0.4, 0.1]], [[0.0, 0.0], [1.0, 1.0]]])
    lower, upper = perturbed_distance_bounds(model, pairs, [0.0, 0.05, 0.1])
    assert lower.shape == upper.shape == (3, 2)
    D = as_model(np.array([[1.0, 2.0]])).pair_distances(pairs)
    np.testing.assert_allclose(lower[0], D)
    np.testing.assert_allclose(upper[0], D)
    for eps, low, up in zip([0.05, 0.1], lower[1:], upper[1:], strict=True):
        single = perturbed_distance_bounds(model, pairs, eps)
        np.testing.assert_allclose(single, (low, up))
    assert np.all(np.diff(upper, axis=0) >= 0) and np.all(np.diff(lower, axis=0) <= 0)


def test_no_box_allows_only_the_triangle_bound():
    model = as_model(np.eye(2))
    pairs = np.array([[[-5.0, 3.0], [2.0, 7.0]]])
    for bound in ("paper", "spectral", "frobenius"):
        with pytest.raises(ValueError, match="feature_range=None"):
            perturbed_distance_bounds(model, pairs, 0.1, bound=bound, feature_range=None)
    best = perturbed_distance_bounds(model, pairs, 0.1, feature_range=None)
    triangle = perturbed_distance_bounds(model, pairs, 0.1, bound="triangle", feature_range=None)
    np.testing.assert_allclose(best, triangle)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bound": "eq19"}, ValueError, "bound must be one of"),
        ({"budget": "both"}, ValueError, "budget must be one of"),
        ({"eps": -0.1}, ValueError, "eps must be finite and >= 0"),
        ({"eps": "big"}, TypeError, "eps must be a number"),
        ({"feature_range": (1.0, 0.0)}, ValueError, "feature_range must satisfy lo < hi"),
        ({"pairs": np.full((1, 2, 2), 1.5)}, ValueError, "outside feature_range"),
        ({"pairs": np.zeros((1, 2, 3))}, ValueError, "the model expects 2"),
        ({"pairs": np.zeros((2, 2))}, ValueError, "pairs must be an array of pairs"),
        ({"pairs": np.full((1, 2, 2), np.nan)}, ValueError, "NaN"),
    ],
)
def test_bounds_validate_their_input(kwargs, error, match):
    args = {"pairs": np.zeros((1, 2, 2)), "eps": 0.1, **kwargs}
    with pytest.raises(error, match=match):
        perturbed_distance_bounds(as_model(np.eye(2)), **args)


def test_inputs_are_not_modified():
    pairs = np.array([[[0.2, 0.3], [0.4, 0.1]]])
    before = pairs.copy()
    perturbed_distance_bounds(as_model(np.eye(2)), pairs, 0.1)
    certified_radius(as_model(np.eye(2)), pairs, threshold=0.5)
    np.testing.assert_array_equal(pairs, before)


# ||W||_{inf->2}


def brute_force_inf_to_2(W):
    d = W.shape[1]
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * d)).reshape(d, -1).T
    # On W / max|W|: squares of entries near 1e-159 would be subnormal and lose digits.
    unit = float(np.abs(W).max()) or 1.0
    return unit * np.sqrt(((signs @ (W / unit).T) ** 2).sum(axis=1).max())


@pytest.mark.parametrize("value", [1.02129659e-159, 3e-170, 1e150])
def test_inf_to_2_norm_holds_at_extreme_scales(value):
    # Found by hypothesis: at 1e-159 the squares are subnormal, and the blocked bound came
    # out 3.7e-8 (relative) below the true norm. One row of d equal entries: the norm is d * w.
    W = np.full((1, 8), value)
    for block in (1, 3, 16):
        norm, _ = inf_to_2_norm(W, max_exact_features=block)
        assert norm >= 8 * value
        assert norm == pytest.approx(8 * value, rel=1e-9)


@settings(max_examples=property_examples())
@given(linear_metrics(max_features=9), st.integers(1, 4))
def test_inf_to_2_norm_bounds_are_valid_and_ordered(W, block):
    exact = brute_force_inf_to_2(W)
    norm, is_exact = inf_to_2_norm(W)
    assert is_exact and norm == pytest.approx(exact, rel=1e-9, abs=1e-12)
    assert norm >= exact
    blocked, blocked_exact = inf_to_2_norm(W, max_exact_features=block)
    assert blocked_exact == (W.shape[1] <= block)
    assert blocked >= exact * (1 - 1e-12)
    M = W.T @ W
    d = W.shape[1]
    lam_max = np.linalg.norm(M, 2)
    assert blocked <= np.sqrt(d * lam_max) * (1 + 1e-9) + 1e-12
    assert blocked <= np.linalg.norm(W, axis=0).sum() * (1 + 1e-9) + 1e-12
    assert blocked <= np.sqrt(np.abs(M).sum()) * (1 + 1e-9) + 1e-12


def test_inf_to_2_norm_of_wide_metrics_is_an_upper_bound():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, 18))
    exact = brute_force_inf_to_2(W)
    norm, is_exact = inf_to_2_norm(W)
    assert not is_exact and norm >= exact
    norm, is_exact = inf_to_2_norm(W, max_exact_features=18)
    assert is_exact and norm == pytest.approx(exact)


def test_metric_norms_are_cached_and_accepted_in_place_of_the_model():
    W = np.array([[1.0, -2.0], [0.5, 0.0]])
    norms = metric_norms(as_model(W))
    assert isinstance(norms, MetricNorms) and metric_norms(norms) is norms
    assert norms.inf_to_2 == pytest.approx(brute_force_inf_to_2(W))
    assert norms.spectral == pytest.approx(np.linalg.norm(W.T @ W, 2))
    assert norms.frobenius == pytest.approx(np.linalg.norm(W.T @ W))
    pairs = np.array([[[0.2, 0.3], [0.4, 0.1]]])
    np.testing.assert_allclose(
        perturbed_distance_bounds(norms, pairs, 0.1),
        perturbed_distance_bounds(as_model(W), pairs, 0.1),
    )


# certified radius


@settings(max_examples=property_examples())
@given(
    linear_metrics(max_features=4),
    st.data(),
    st.sampled_from(BUDGETS),
    box_or_none(),
)
def test_certified_radius_is_sound_against_exact_worst_case(W, data, budget, feature_range):
    box = feature_range if feature_range is not None else (-1.0, 1.0)
    pairs = data.draw(pairs_in_box(W.shape[1], max_pairs=1, box=box))
    D = as_model(W).pair_distances(pairs)[0]
    threshold = data.draw(st.floats(0.0, 2.0)) * D
    radius = certified_radius(as_model(W), pairs, threshold=threshold, budget=budget)[0]
    assert radius >= 0
    if not 0 < radius < np.inf:
        return
    eps = radius * data.draw(st.floats(0.0, 1.0, exclude_max=True))
    if D <= threshold:
        assert exact_max_distance(W, pairs[0], eps, budget, feature_range) <= threshold
    else:
        proven_min, _ = proven_min_distance(W, pairs[0], eps, budget, feature_range)
        assert proven_min > threshold - 1e-7 * (1 + threshold)


@settings(max_examples=property_examples())
@given(
    linear_metrics(max_features=6),
    st.data(),
    st.sampled_from(BUDGETS),
)
def test_certified_radius_is_zero_at_the_threshold_and_grows_away_from_it(W, data, budget):
    d = W.shape[1]
    x = data.draw(points_in_box(1, d))[0]
    direction = data.draw(points_in_box(1, d, box=(-1.0, 1.0)))[0]
    model = as_model(W)
    if np.linalg.norm(W @ direction) < 1e-3:
        return
    steps = np.sort(data.draw(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=8)))
    pivot = data.draw(st.floats(0.05, 0.95))
    pairs = np.stack(
        [np.tile(x, (len(steps) + 1, 1)), x + np.append(steps, pivot)[:, None] * direction], axis=1
    )
    D = model.pair_distances(pairs)
    threshold = D[-1]
    radius = certified_radius(model, pairs, threshold=threshold, budget=budget)
    assert radius[-1] == 0.0
    # sqrt(D) = s ||W direction|| is linear in the step s, so is the radius on each side.
    scale = np.linalg.norm(W @ direction) / metric_norms(model).inf_to_2
    factor = 1.0 if budget == "shared" else 0.5
    expected = factor * scale * np.abs(steps - pivot)
    np.testing.assert_allclose(radius[:-1], expected, rtol=1e-6, atol=1e-8)
    below, above = steps <= pivot, steps > pivot
    assert np.all(np.diff(radius[:-1][below]) <= 1e-12)
    assert np.all(np.diff(radius[:-1][above]) >= -1e-12)


def test_certified_radius_never_certifies_a_tie():
    model = as_model(np.eye(1))
    pairs = np.array([[[0.0], [0.3]], [[0.0], [0.3 + 1e-13]], [[0.0], [0.1]]])
    radius = certified_radius(model, pairs, threshold=0.09)
    assert radius[0] == 0.0 and radius[1] == 0.0
    assert radius[2] == pytest.approx(0.2)
    assert np.all(certified_radius(model, pairs, threshold=0.09, budget="per_point") == radius / 2)


def test_certified_radius_needs_a_threshold():
    with pytest.raises(ValueError, match="no threshold of its own"):
        certified_radius(as_model(np.eye(1)), np.zeros((1, 2, 1)))
    with pytest.raises(ValueError, match="budget must be one of"):
        certified_radius(as_model(np.eye(1)), np.zeros((1, 2, 1)), 0.5, budget="x")


def test_certified_radius_of_a_zero_metric_or_negative_threshold_is_infinite():
    pairs = np.array([[[0.0], [0.3]]])
    assert certified_radius(as_model(np.zeros((1, 1))), pairs, threshold=0.5)[0] == np.inf
    assert certified_radius(as_model(np.eye(1)), pairs, threshold=-1.0)[0] == np.inf


def test_blocked_validation_and_distances_cover_every_block():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 4))
    pairs = rng.random((20_001, 2, 4))
    lower, upper = perturbed_distance_bounds(as_model(W), pairs, 0.0)
    np.testing.assert_allclose(lower, as_model(W).pair_distances(pairs), rtol=1e-12)
    np.testing.assert_allclose(upper, lower)
    bad = pairs.copy()
    bad[-1, 1, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        perturbed_distance_bounds(as_model(W), bad, 0.1)
    bad[-1, 1, 3] = 1.5
    with pytest.raises(ValueError, match="outside feature_range"):
        perturbed_distance_bounds(as_model(W), bad, 0.1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        certified_radius(as_model(W), np.full((1, 2, 4), np.nan), threshold=1.0)


def test_certified_radius_leaves_room_for_float_rounding_of_the_attack():
    # Found by hypothesis in CI: two points one ulp-scale step apart near -1. In exact
    # arithmetic 0.75 of the radius is safe, but x + delta rounds to the nearest float, and
    # that rounding alone crossed the threshold. The radius now leaves room for it.
    W = np.array([[1.0]])
    pairs = np.array([[[-1.0], [-1.0 + 4.440892098500626e-16]]])
    D = as_model(W).pair_distances(pairs)[0]
    threshold = 2.0 * D
    radius = certified_radius(as_model(W), pairs, threshold=threshold, budget="shared")[0]
    for fraction in (0.25, 0.75, 0.999):
        eps = radius * fraction
        assert exact_max_distance(W, pairs[0], eps, "shared", None) <= threshold
    assert radius >= 0
