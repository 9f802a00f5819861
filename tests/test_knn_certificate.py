"""Certified kNN: a certified point's vote never flips, whatever the attack."""

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skrobust import AckMetricAttack, RobustMetricLearner
from skrobust._knn_certificate import _certify, _KnnParts
from skrobust.certificates import (
    certified_knn_accuracy,
    certified_knn_radius,
    certify_knn,
    verify_knn,
)
from skrobust.datasets import load_wine
from skrobust.metrics import make_certified_scorer

from .strategies import knn_pipeline, linear_metrics, points_in_box, property_examples


@st.composite
def knn_problems(draw, max_features=4, max_refs=24):
    """A fitted kNN pipeline over a random metric, test points, and a budget."""
    W = draw(linear_metrics(max_features=max_features))
    d = W.shape[1]
    n_refs = draw(st.integers(2, max_refs))
    X = draw(points_in_box(n_refs, d))
    n_classes = draw(st.integers(2, 3))
    y = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n_refs, max_size=n_refs)))
    k = draw(st.integers(1, min(5, n_refs)))
    tests = draw(points_in_box(draw(st.integers(1, 6)), d))
    # Test points near the references, where votes are decided and certificates are close.
    near = X[: len(tests)] + draw(st.floats(0.0, 0.2)) * (tests[: len(X)] - 0.5)
    tests = np.concatenate([tests, near])
    eps = 10 ** draw(st.floats(-3.0, -0.5))  # log-uniform; eps = 0 is tested apart
    return knn_pipeline(W, X, y, k), W, np.clip(tests, 0.0, 1.0), eps


@settings(max_examples=property_examples())
@given(knn_problems(), st.floats(0.05, 1.0), st.sampled_from([None, (0.0, 1.0)]))
def test_no_certified_knn_point_is_broken_by_the_attack(problem, step_fraction, box):
    pipe, _, tests, eps = problem
    certified = certify_knn(pipe, tests, eps, feature_range=box)
    event("some point certified" if certified.any() else "no point certified")
    if step_fraction * eps == 0:
        return
    attack = AckMetricAttack(
        pipe, mode="knn", eps=eps, step_size=step_fraction * eps, feature_range=box
    ).fit()
    result = attack.attack(tests)
    event("the attack flipped a point" if result.success.any() else "the attack flipped none")
    assert not np.any(result.success[0] & certified)
    assert np.array_equal(
        pipe.predict(result.adversarial[0])[certified], pipe.predict(tests)[certified]
    )


@settings(max_examples=property_examples())
@given(knn_problems(), st.integers(0, 2**32 - 1), st.sampled_from([None, (0.0, 1.0)]))
def test_no_certified_knn_point_is_broken_by_corner_or_random_perturbations(problem, seed, box):
    pipe, W, tests, eps = problem
    certified = certify_knn(pipe, tests, eps, feature_range=box)
    event("some point certified" if certified.any() else "no point certified")
    if not certified.any():
        return
    rng = np.random.default_rng(seed)
    d = W.shape[1]
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * d)).reshape(d, -1).T
    inside = rng.uniform(-1.0, 1.0, (64, d))
    directions = np.concatenate([corners, inside])
    points = tests[certified]
    moved = points[:, None, :] + eps * directions[None, :, :]
    if box is not None:
        moved = np.clip(moved, *box)
    predicted = pipe.predict(moved.reshape(-1, d)).reshape(len(points), -1)
    assert np.all(predicted == pipe.predict(points)[:, None])


@settings(max_examples=property_examples())
@given(knn_problems(), st.floats(0.0, 1.0))
def test_knn_certificate_shrinks_as_eps_grows(problem, fraction):
    pipe, _, tests, eps = problem
    wide = certify_knn(pipe, tests, eps)
    narrow = certify_knn(pipe, tests, fraction * eps)
    assert np.all(narrow >= wide)


@settings(max_examples=property_examples())
@given(knn_problems(max_features=3), st.sampled_from([None, (0.0, 1.0)]))
def test_no_pairwise_certified_1nn_point_is_broken_by_the_exact_verifier(problem, box):
    pipe, _, tests, eps = problem
    pipe.set_params(kneighborsclassifier__n_neighbors=1)
    certified = certify_knn(pipe, tests, eps, feature_range=box)
    result = verify_knn(pipe, tests, eps, feature_range=box)
    event(f"{certified.sum()} certified, {result.robust.sum()} robust")
    assert not np.any(certified & ~result.robust)


@settings(max_examples=property_examples())
@given(knn_problems(max_features=2, max_refs=10), st.sampled_from([None, (0.0, 1.0)]))
def test_no_pairwise_certified_knn_point_is_broken_by_the_exact_milp(problem, box):
    pipe, _, tests, eps = problem
    # The MILP runs on every point (the exact check prunes with the certificate itself).
    parts = _KnnParts(pipe)
    certified = _certify(parts, tests, np.full(len(tests), eps), "pairwise", box)
    event(f"k={parts.k}: {certified.sum()} certified of {len(tests)}")
    for i in np.flatnonzero(certified):
        from skrobust._exact import _verify_knn_point

        Z = parts.metric.transform(tests[i : i + 1])[0]
        label = pipe.predict(tests[i : i + 1])[0]
        c = list(parts.knn.classes_).index(label)
        status, _ = _verify_knn_point(
            tests[i], Z, parts.references, parts.P, parts.ref_classes, c, label,
            parts.n_classes, parts.k, eps, box, pipe.predict,
        )  # fmt: skip
        event(status)
        # Undecided: the MILP's tolerance (absolute, about 1e-7) cannot see margins of a
        # metric scaled to 1e-100; it never calls such a point broken.
        assert status != "broken"


@settings(max_examples=property_examples())
@given(knn_problems(), st.sampled_from([None, (0.0, 1.0)]))
def test_on_two_classes_pairwise_alone_certifies_what_interval_certifies(problem, box):
    pipe, _, tests, eps = problem
    parts = _KnnParts(pipe)
    if parts.n_classes != 2:
        parts.ref_classes = (parts.ref_classes > 0).astype(int)
        parts.n_classes = 2
    # Outside a rounding band: the interval certificate at a slightly larger budget.
    interval = _certify(parts, tests, np.full(len(tests), eps * 1.001 + 1e-9), "interval", None)
    pairwise = _certify(parts, tests, np.full(len(tests), eps), "pairwise", box, False)
    event(f"interval {interval.sum()}, pairwise {pairwise.sum()}")
    assert np.all(pairwise[interval])


@settings(max_examples=property_examples())
@given(knn_problems())
def test_certified_radius_is_where_the_certificate_stops(problem):
    pipe, _, tests, _ = problem
    radius = certified_knn_radius(pipe, tests)
    finite = np.isfinite(radius) & (radius > 0)
    event(f"{finite.sum()} finite positive radii")
    for i in np.flatnonzero(finite):
        assert certify_knn(pipe, tests[i : i + 1], radius[i])[0]
        assert not certify_knn(pipe, tests[i : i + 1], radius[i] * (1 + 1e-5))[0]
    assert not np.any(certify_knn(pipe, tests[radius == 0], 0.0))


def test_rival_classes_are_counted_apart():
    # 4-NN: two references of class 0 near the test point, one of class 1 and one of
    # class 2 a little farther, the rest far. Every attack keeps the vote at 2 : 1 : 1 or
    # better; lumping the rivals together would call 2 : 2 a tie and certify nothing.
    X = np.array([[0.0], [0.02], [0.06], [-0.04], [0.8], [0.9], [-0.8]])
    y = np.array([0, 0, 1, 2, 1, 2, 1])
    pipe = knn_pipeline(np.eye(1), X, y, 4)
    z = [[0.01]]
    assert certify_knn(pipe, z, 0.02)[0]
    assert verify_knn(pipe, z, 0.02).status[0] == "robust"
    lumped = knn_pipeline(np.eye(1), X, np.minimum(y, 1), 4)
    assert not certify_knn(lumped, z, 0.02)[0]
    assert verify_knn(lumped, z, 0.02).status[0] != "robust"


def test_even_k_vote_ties_are_never_certified():
    # 2-NN with one reference of each class nearest: a 1 : 1 vote at every budget.
    X = np.array([[0.0], [0.1], [1.0], [1.1]])
    pipe = knn_pipeline(np.eye(1), X, np.array([0, 1, 0, 1]), 2)
    assert not certify_knn(pipe, [[0.05]], 0.0)[0]
    assert verify_knn(pipe, [[0.05]], 0.0).status[0] != "robust"
    # 2-NN with both class-0 references nearest: certified until class 1 can take a seat.
    X = np.array([[0.0], [0.05], [0.5]])
    pipe = knn_pipeline(np.eye(1), X, np.array([0, 0, 1]), 2)
    assert certify_knn(pipe, [[0.0]], 0.2)[0]
    assert not certify_knn(pipe, [[0.0]], 0.26)[0]


def test_duplicate_references_of_two_classes_are_never_certified():
    X = np.array([[0.3, 0.3], [0.3, 0.3], [0.9, 0.9]])
    pipe = knn_pipeline(np.array([[1.0, 2.0]]), X, np.array([0, 1, 0]), 1)
    assert not certify_knn(pipe, [[0.32, 0.3]], 0.0)[0]
    assert not certify_knn(pipe, [[0.32, 0.3]], 0.0, method="interval")[0]
    # W (a - b) = 0 for distinct points: a permanent tie too (0/0 in the radius).
    X = np.array([[0.2, 0.1], [0.0, 0.2], [0.9, 0.9]])
    pipe = knn_pipeline(np.array([[1.0, 2.0]]), X, np.array([0, 1, 0]), 1)
    assert not certify_knn(pipe, [[0.5, 0.5]], 0.0)[0]
    assert certified_knn_radius(pipe, [[0.5, 0.5]])[0] == 0.0


def test_a_margin_below_the_rounding_of_the_moved_point_is_never_certified():
    # Found by hypothesis: references 6e-133 apart in the embedding. Moving a coordinate W
    # keeps makes both squared distances 0.01 + (a few e-265), equal in floats, so the
    # classifier's own predict flips by its tie-breaking; the rounding slack must be taken
    # at the moved point, not at the clean one (whose embedding is 0 here).
    W = np.array([[6.2683602681523026e-133, 0.0, 0.0], [0.0, 1.0, 0.0]])
    refs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    pipe = knn_pipeline(W, refs, np.array([0, 0, 1]), 1)
    tests = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    attack = AckMetricAttack(pipe, mode="knn", eps=0.1, step_size=0.1, feature_range=None)
    assert attack.fit().attack(tests).success[0, 0]
    assert not certify_knn(pipe, tests, 0.1).any()
    assert not certify_knn(pipe, tests, 0.1, method="interval").any()


def test_a_clear_vote_is_certified_and_a_tie_is_not():
    X = np.array([[0.0], [0.1], [1.0]])
    y = np.array([0, 0, 1])
    pipe = knn_pipeline(np.eye(1), X, y, 3)
    # At 0.05 both class-0 references are nearest; the third is far.
    assert certify_knn(pipe, [[0.05]], 0.0)[0]
    assert certify_knn(pipe, [[0.05]], 0.01)[0]
    # 1-NN halfway between a 0 and a 1: a tie, never certified even at eps = 0.
    one = knn_pipeline(np.eye(1), np.array([[0.0], [1.0]]), np.array([0, 1]), 1)
    assert not certify_knn(one, [[0.5]], 0.0)[0]
    # 1-NN at 0.3: distances 0.3 and 0.7, the gap 0.4 exceeds 2 eps K only for eps < 0.2.
    assert certify_knn(one, [[0.3]], 0.199)[0]
    assert not certify_knn(one, [[0.3]], 0.2)[0]


def test_third_classes_are_accounted_for():
    # 3-NN: references of class 2 at 0.10 and 0.12, of class 0 at 0.20, of class 1 at 0.21.
    # Within the triangle-bound intervals of eps=0.06 (each distance +- 0.06), 0 and 1 can
    # both come in front of the second 2: the vote 2, 0, 1 is a three-way tie, which
    # scikit-learn breaks toward class 0 - a flip. Putting only one rival class near and
    # every other reference far never shows it (2 keeps two votes of three), so that check
    # would certify the point; a sound certificate over these intervals must not.
    X = np.array([[0.10], [0.12], [0.20], [0.21]])
    y = np.array([2, 2, 0, 1])
    pipe = knn_pipeline(np.eye(1), X, y, 3)
    x = np.array([[0.0]])
    assert pipe.predict(x)[0] == 2
    tie = KNeighborsClassifier(3).fit(np.array([[0.04], [0.14], [0.15], [0.18]]), y[[0, 2, 3, 1]])
    assert tie.predict(x)[0] == 0  # the relaxed worst case does flip the vote
    assert not certify_knn(pipe, x, 0.06, method="interval")[0]
    assert certify_knn(pipe, x, 0.03, method="interval")[0]
    # The distances move together: in one dimension the order 2, 2, 0, 1 holds for every
    # z' in [-0.06, 0.06], and the pairwise certificate sees it.
    assert certify_knn(pipe, x, 0.06)[0]


def test_certified_accuracy_counts_correct_certified_points():
    X, y = load_wine()
    pipe = make_pipeline(
        MinMaxScaler(),
        NeighborhoodComponentsAnalysis(max_iter=20, random_state=0),
        KNeighborsClassifier(3),
    ).fit(X[::2], y[::2])
    test, truth = X[1::2], y[1::2]
    for eps in (0.0, 0.01, 0.05):
        certified = certify_knn(pipe, test, eps)
        expected = np.mean(certified & (pipe.predict(test) == truth))
        assert certified_knn_accuracy(pipe, test, truth, eps) == pytest.approx(expected)
    assert certified_knn_accuracy(pipe, test, truth, 0.0) == pytest.approx(
        pipe.score(test, truth), abs=0.02
    )


def test_certified_scorer_in_grid_search_and_outside_the_box():
    X, y = load_wine()
    pipe = make_pipeline(RobustMetricLearner(max_iter=30), KNeighborsClassifier(3))
    search = GridSearchCV(
        pipe,
        {"robustmetriclearner__alpha": [0.0, 1.0]},
        scoring={"clean": "accuracy", "certified": make_certified_scorer(eps=0.01)},
        refit="certified",
        cv=3,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_certified"]
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    assert np.all(scores <= search.cv_results_["mean_test_clean"] + 1e-12)
    # Points outside the training box still score (no box is assumed).
    scorer = make_certified_scorer(eps=0.01)
    assert 0.0 <= scorer(search.best_estimator_, X * 3 - 1, y) <= 1.0


def test_knn_certificate_on_a_bare_knn_uses_the_identity_metric():
    X, y = load_wine()
    bare = KNeighborsClassifier(3).fit(X, y)
    identity = knn_pipeline(np.eye(X.shape[1]), X, y, 3)
    for eps in (0.0, 0.01, 0.03):
        np.testing.assert_array_equal(certify_knn(bare, X, eps), certify_knn(identity, X, eps))


@pytest.mark.parametrize(
    "estimator, X, eps, error, match",
    [
        (KNeighborsClassifier(3, weights="distance"), None, 0.1, ValueError, "uniform"),
        (NeighborhoodComponentsAnalysis(), None, 0.1, TypeError, "not a kNN classifier"),
        (KNeighborsClassifier(3), np.zeros((2, 5)), 0.1, ValueError, "shape"),
        (KNeighborsClassifier(3), None, [0.1, 0.2], ValueError, "single number"),
        (KNeighborsClassifier(3), None, -1.0, ValueError, "eps must be finite and >= 0"),
        (KNeighborsClassifier(3), np.full((2, 2), np.nan), 0.1, ValueError, "NaN"),
    ],
)
def test_knn_certificate_rejects_bad_input(estimator, X, eps, error, match):
    rng = np.random.default_rng(0)
    train = rng.random((10, 2))
    labels = np.arange(10) % 2
    estimator.fit(train, labels)
    with pytest.raises(error, match=match):
        certify_knn(estimator, train if X is None else X, eps)


def test_certified_scorer_rejects_several_eps():
    with pytest.raises(ValueError, match="single number"):
        make_certified_scorer(eps=[0.1, 0.2])


# Tightness: soundness alone lets a certificate that certifies nothing pass. On these
# problems the certificate's argument is exact, so it must certify every point whose exact
# margin clears rounding by a wide band, and the exact margin is computed in closed form.
TIGHT = 1e-6


@settings(max_examples=property_examples())
@given(
    linear_metrics(max_features=3),
    st.data(),
    st.sampled_from([None, (0.0, 1.0)]),
)
def test_pairwise_certificate_is_exact_on_one_reference_per_class(W, data, box):
    # 1-NN over two references a (class 0) and b (class 1): the vote holds iff
    # D_b - D_a stays positive over [l, u], and that difference is linear in delta, so its
    # minimum D_b - D_a + sum_i min(c_i l_i, c_i u_i), c = 2 W^T W (a - b), is exact.
    d = W.shape[1]
    X = data.draw(points_in_box(2, d))
    z = data.draw(points_in_box(1, d))[0]
    eps = 10 ** data.draw(st.floats(-3.0, -0.5))
    pipe = knn_pipeline(W, X, np.array([0, 1]), 1)
    D = np.sum((W @ (X - z).T) ** 2, axis=0)
    own, other = (0, 1) if D[0] <= D[1] else (1, 0)
    c = 2.0 * W.T @ W @ (X[own] - X[other])
    lower, upper = np.full(d, -eps), np.full(d, eps)
    if box is not None:
        lower, upper = np.maximum(lower, box[0] - z), np.minimum(upper, box[1] - z)
    margin = D[other] - D[own] + np.minimum(c * lower, c * upper).sum()
    scale = D.sum() + eps * np.abs(c).sum()
    certified = certify_knn(pipe, z[None, :], eps, feature_range=box)[0]
    event("certified" if certified else "not certified")
    if certified:
        assert margin > 0
    if margin > TIGHT * scale:
        assert certified
    # The pairwise argument alone (no interval shortcut) is exact here too.
    parts = _KnnParts(pipe)
    alone = _certify(parts, z[None, :], np.array([eps]), "pairwise", box, False)[0]
    assert alone == certified or abs(margin) <= TIGHT * scale


@settings(max_examples=property_examples())
@given(
    st.floats(0.1, 3.0),
    st.floats(0.05, 0.45),
    st.floats(0.55, 0.95),
    st.floats(0.0, 1.0),
    st.floats(1e-3, 0.3),
)
def test_interval_certificate_is_exact_in_one_dimension(w, a, b, t, eps):
    # 1-NN in one dimension with z between a (class 0) and b (class 1), the metric
    # |w (x - x')|: the worst move takes z toward the farther reference by eps, so the vote
    # holds iff |w| (r_near + eps) < |w| (r_far - eps), which is the interval condition
    # with K = |w| exactly.
    z = a + t * (b - a)
    pipe = knn_pipeline(np.array([[w]]), np.array([[a], [b]]), np.array([0, 1]), 1)
    near, far = sorted([z - a, b - z])
    margin = w * ((far - eps) - (near + eps))
    certified = certify_knn(pipe, [[z]], eps, method="interval")[0]
    if certified:
        assert margin > 0
    if margin > TIGHT * w * (far + near + eps):
        assert certified
    # So the certified radius is the exact one, (r_far - r_near) / 2, by either argument
    # (in one dimension the pairwise one is exact too), less the rounding slack (an
    # absolute ~1e-6 of the squared norms, under its square root).
    for method in ("interval", "pairwise"):
        radius = certified_knn_radius(pipe, [[z]], method=method)[0]
        assert radius <= (far - near) / 2
        assert radius == pytest.approx((far - near) / 2, rel=1e-4, abs=1e-5)


def test_certified_radius_is_infinite_with_a_single_class():
    knn = KNeighborsClassifier(2).fit([[0.0], [1.0], [0.5]], [1, 1, 1])
    np.testing.assert_array_equal(certified_knn_radius(knn, [[0.2], [3.0]]), [np.inf, np.inf])
    assert certify_knn(knn, [[0.2]], 1e6)[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rtol": 0.0}, "rtol must be a number in \\(0, 1\\), got 0.0"),
        ({"rtol": "1e-3"}, "rtol must be a number"),
        ({"method": "exact"}, "^method must be one of \\['pairwise', 'interval'\\]"),
    ],
)
def test_certified_radius_rejects_bad_parameters(kwargs, match):
    knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match=match):
        certified_knn_radius(knn, [[0.3]], **kwargs)
