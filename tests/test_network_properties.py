"""Attacks and certificates on random small ReLU networks: the promises, tried by hypothesis.

The attack stays within budget and box; no certified pair or kNN point is broken by the
attack or by random and corner perturbations; the interval (IBP) and Lipschitz bounds hold
every sampled perturbed distance; on a linear map, IBP is checked against the exact maximum.
"""

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import AckMetricAttack, CascadeKNNAttack, Eq23, MarginPGD
from skrobust._network_bounds import input_boxes, interval_embedding
from skrobust.certificates import (
    certified_radius,
    certify_knn,
    certify_pairs,
    perturbed_distance_bounds,
)
from skrobust.testing import FixedMetric, relu_networks

from .exact import exact_max_distance
from .strategies import (
    budgets,
    eps_values,
    pairs_in_box,
    perturbations,
    points_in_box,
    triplets_in_box,
)

RTOL = 1e-9
NETWORK_BOUNDS = ["best", "interval", "lipschitz"]


@st.composite
def network_pairs(draw, box=(0.0, 1.0)):
    """A random network, pairs in the box, a budget and a threshold near the pairs' D."""
    net = draw(relu_networks())
    d = net.n_features_in_
    pairs = draw(pairs_in_box(n_features=d, box=box))
    D = net.__skrobust_target__().squared_pair_distances(pairs)
    threshold = float(np.quantile(D, draw(st.floats(0.0, 1.0)))) * draw(st.floats(0.5, 1.5))
    return net, pairs, threshold


@settings(deadline=None)
@given(st.data())
def test_interval_box_holds_every_perturbed_embedding(data):
    net = data.draw(relu_networks())
    target = net.__skrobust_target__()
    X = data.draw(points_in_box(n_features=target.n_features))
    eps = data.draw(eps_values())
    box = data.draw(st.sampled_from([None, (0.0, 1.0)]))
    L, U = interval_embedding(target.layers, *input_boxes(X, eps, box))
    for _ in range(4):
        moved = data.draw(perturbations(X, eps, box=box))
        E = target.embed(moved)
        assert np.all(L <= E) and np.all(E <= U)


@settings(deadline=None)
@given(network_pairs(), eps_values(), budgets(), st.sampled_from(NETWORK_BOUNDS), st.data())
def test_network_bounds_hold_every_sampled_perturbed_distance(problem, eps, budget, bound, data):
    net, pairs, _ = problem
    lower, upper = perturbed_distance_bounds(net, pairs, eps, bound=bound, budget=budget)
    target = net.__skrobust_target__()
    D = target.squared_pair_distances(pairs)
    assert np.all(lower <= D * (1 + RTOL) + 1e-12) and np.all(D <= upper * (1 + RTOL) + 1e-12)
    for _ in range(4):
        moved = data.draw(perturbations(pairs, eps, budget=budget))
        D_moved = target.squared_pair_distances(moved)
        assert np.all(lower <= D_moved * (1 + RTOL) + 1e-12)
        assert np.all(D_moved <= upper * (1 + RTOL) + 1e-12)


@settings(deadline=None)
@given(st.data())
def test_interval_bound_is_at_least_the_exact_maximum_on_a_linear_map(data):
    # One layer: IBP's box of W x + b is the exact range of each coordinate, so the bound is
    # sound and its upper end is at least the exact maximum found by vertex enumeration.
    d = data.draw(st.integers(1, 3))
    W = data.draw(st.lists(st.floats(-2, 2), min_size=d, max_size=3 * d)
                  .map(lambda v: np.array(v[: len(v) // d * d]).reshape(-1, d)))  # fmt: skip
    pairs = data.draw(pairs_in_box(n_features=d, max_pairs=3))
    eps = data.draw(eps_values(max_eps=0.3))
    metric = FixedMetric(W)
    lower, upper = perturbed_distance_bounds(metric, pairs, eps, bound="interval",
                                             budget="per_point")  # fmt: skip
    for p, pair in enumerate(pairs):
        exact = exact_max_distance(W, pair, eps, "per_point", (0.0, 1.0))
        assert exact <= upper[p] * (1 + RTOL) + 1e-12
        D = float(np.sum((W @ (pair[0] - pair[1])) ** 2))
        assert lower[p] <= D * (1 + RTOL) + 1e-12


def _pair_step(eps, fraction):
    return max(fraction * eps, 1e-4)


@settings(deadline=None)
@given(network_pairs(), st.floats(0.0, 0.4), budgets(), st.floats(0.05, 1.0), st.integers(0, 1))
def test_pair_attack_on_a_network_stays_within_budget_and_box(
    problem, eps, budget, fraction, restarts
):
    net, pairs, threshold = problem
    attack = AckMetricAttack(
        FrozenEstimator(net), eps=eps, step_size=_pair_step(eps, fraction), max_iter=10,
        budget=budget, threshold=threshold, n_restarts=restarts, random_state=0,
    ).fit()  # fmt: skip
    result = attack.attack(pairs)
    adv = result.adversarial[0]
    assert np.all((adv >= 0.0) & (adv <= 1.0))
    moved = np.abs(adv - pairs).max(axis=2)
    allowed = moved.sum(axis=1) if budget == "shared" else moved.max(axis=1)
    assert np.all(allowed <= eps * (1 + 1e-12) + 1e-15)
    D_after = net.__skrobust_target__().squared_pair_distances(adv)
    np.testing.assert_allclose(result.distances_after[0], D_after, rtol=1e-12, atol=1e-14)
    similar = result.distances_before <= result.thresholds
    # Never the wrong way: similar pairs never closer, dissimilar ones never farther.
    assert np.all(np.where(similar, D_after >= result.distances_before * (1 - 1e-12),
                           D_after <= result.distances_before * (1 + 1e-12)))  # fmt: skip
    assert np.array_equal(result.success[0], (D_after > result.thresholds) == similar)


@settings(deadline=None)
@given(st.data(), st.floats(0.0, 0.4), st.floats(0.05, 1.0))
def test_triplet_attack_on_a_network_moves_only_the_positive_within_budget(data, eps, fraction):
    net = data.draw(relu_networks())
    triplets = data.draw(triplets_in_box(n_features=net.n_features_in_))
    attack = AckMetricAttack(FrozenEstimator(net), eps=eps, mode="triplets",
                             step_size=_pair_step(eps, fraction), max_iter=10).fit()  # fmt: skip
    adv = attack.attack(triplets).adversarial[0]
    assert np.array_equal(adv[:, [0, 2]], triplets[:, [0, 2]])
    assert np.all(np.abs(adv[:, 1] - triplets[:, 1]) <= eps * (1 + 1e-12) + 1e-15)
    assert np.all((adv >= 0.0) & (adv <= 1.0))


@settings(deadline=None)
@given(network_pairs(), st.floats(-3.0, -0.5), budgets(), st.data())
def test_no_certified_network_pair_is_broken(problem, log_eps, budget, data):
    net, pairs, threshold = problem
    eps = 10**log_eps  # log-uniform: small budgets, where pairs get certified, as often
    certified = certify_pairs(net, pairs, eps, threshold=threshold, budget=budget)
    event("some pair certified" if certified.any() else "no pair certified")
    target = net.__skrobust_target__()
    similar = target.squared_pair_distances(pairs) <= threshold
    attack = AckMetricAttack(FrozenEstimator(net), eps=eps, step_size=eps / 8, budget=budget,
                             threshold=threshold, n_restarts=1, random_state=0).fit()  # fmt: skip
    result = attack.attack(pairs)
    assert not np.any(result.success[0] & certified)
    for _ in range(4):
        moved = data.draw(perturbations(pairs, eps, budget=budget))
        now_similar = target.squared_pair_distances(moved) <= threshold
        assert np.array_equal(now_similar[certified], similar[certified])


@settings(deadline=None)
@given(network_pairs(), budgets(), st.data())
def test_certified_radius_of_a_network_is_certified_and_unbroken(problem, budget, data):
    net, pairs, threshold = problem
    radius = certified_radius(net, pairs, threshold=threshold, budget=budget)
    assert np.all(radius >= 0)
    inside = np.isfinite(radius) & (radius > 0)
    if not inside.any():
        return
    eps = 0.999 * float(radius[inside].min())
    certified = certify_pairs(net, pairs[inside], eps, threshold=threshold, budget=budget,
                              feature_range=None)  # fmt: skip
    assert certified.all()
    target = net.__skrobust_target__()
    similar = target.squared_pair_distances(pairs[inside]) <= threshold
    for _ in range(4):
        moved = data.draw(perturbations(pairs[inside], eps, box=None, budget=budget))
        assert np.array_equal(target.squared_pair_distances(moved) <= threshold, similar)


@st.composite
def network_knn_problems(draw):
    """A kNN over a random network, test points near its references, a budget."""
    net = draw(relu_networks())
    d = net.n_features_in_
    n_refs = draw(st.integers(2, 16))
    X = draw(points_in_box(n_refs, d))
    y = np.array(draw(st.lists(st.integers(0, 2), min_size=n_refs, max_size=n_refs)))
    k = draw(st.sampled_from([1, 3]))
    # A k-d tree: brute force starts OpenMP threads on every predict (slow on tiny data).
    knn = KNeighborsClassifier(min(k, n_refs), algorithm="kd_tree")
    pipe = make_pipeline(FrozenEstimator(net), knn)
    pipe.fit(X, y)
    tests = draw(points_in_box(draw(st.integers(1, 5)), d))
    near = np.clip(X[: len(tests)] + draw(st.floats(0.0, 0.2)) * (tests[: len(X)] - 0.5), 0, 1)
    eps = 10 ** draw(st.floats(-3.0, -0.7))
    return pipe, np.concatenate([tests, near]), eps


@settings(deadline=None)
@given(network_knn_problems(), st.sampled_from([None, (0.0, 1.0)]), st.integers(0, 2**31))
def test_no_certified_network_knn_point_is_broken(problem, box, seed):
    pipe, tests, eps = problem
    certified = certify_knn(pipe, tests, eps, method="interval", feature_range=box)
    event("some point certified" if certified.any() else "no point certified")
    before = pipe.predict(tests)
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=eps, step_size=eps / 5,
                             feature_range=box).fit()  # fmt: skip
    result = attack.attack(tests)
    assert not np.any(result.success[0] & certified)
    members = [("eq23", Eq23(step_size=eps / 5)), ("pgd", MarginPGD(max_iter=20, n_restarts=1))]
    cascade = CascadeKNNAttack(FrozenEstimator(pipe), eps=eps, members=members,
                               feature_range=box, random_state=seed).fit()  # fmt: skip
    strong = cascade.attack(tests)
    assert not np.any(strong.success[0] & certified)
    for adv in (result.adversarial[0], strong.adversarial[0]):
        assert np.all(np.abs(adv - tests) <= eps * (1 + 1e-12) + 1e-15)
        if box is not None:
            assert np.all((adv >= 0.0) & (adv <= 1.0))
    if certified.any():
        rng = np.random.default_rng(seed)
        points = tests[certified]
        d = points.shape[1]
        signs = rng.choice([-1.0, 1.0], (32, d))
        inside = rng.uniform(-1.0, 1.0, (32, d))
        moved = points[:, None, :] + eps * np.concatenate([signs, inside])[None]
        if box is not None:
            moved = np.clip(moved, *box)
        after = pipe.predict(moved.reshape(-1, d)).reshape(len(points), -1)
        assert np.all(after == before[certified][:, None])
