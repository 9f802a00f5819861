"""CascadeKNNAttack: every flip is real, inside budget and box; members only ever add flips."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import AckMetricAttack, CascadeKNNAttack
from skrobust._knn_attack import (
    Eq23,
    KNNAttackMember,
    MarginPGD,
    MaxMarginLP,
    TargetedLineSearch,
    default_members,
)

from .strategies import knn_pipeline, linear_metrics, points_in_box, property_examples


@st.composite
def knn_problems(draw, max_features=4, ks=(1, 2, 3)):
    """A fitted kNN pipeline over a random metric, test points near the references, eps."""
    W = draw(linear_metrics(max_features=max_features))
    d = W.shape[1]
    n_refs = draw(st.integers(3, 16))
    X = draw(points_in_box(n_refs, d))
    n_classes = draw(st.integers(2, 3))
    y = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n_refs, max_size=n_refs)))
    k = min(draw(st.sampled_from(ks)), n_refs)
    tests = draw(points_in_box(draw(st.integers(1, 6)), d))
    near = X[: len(tests)] + draw(st.floats(0.0, 0.3)) * (tests[: len(X)] - 0.5)
    tests = np.clip(np.concatenate([tests, near]), 0.0, 1.0)
    eps = draw(st.floats(0.01, 0.4))
    return knn_pipeline(W, X, y, k), tests, eps


FAST_MEMBERS = [
    ("eq23", Eq23(max_iter=5)),
    ("targeted", TargetedLineSearch(lsq_iter=10)),
    ("pgd", MarginPGD(max_iter=10, n_restarts=1)),
    ("lp", MaxMarginLP(max_lps=4)),
]


def _attack(pipe, members=FAST_MEMBERS, seed=0):
    return CascadeKNNAttack(FrozenEstimator(pipe), members=members, random_state=seed).fit()


@settings(max_examples=property_examples())
@given(knn_problems())
def test_outputs_lie_in_budget_and_box_and_every_flip_is_a_flip_of_predict(problem):
    pipe, X, eps = problem
    result = _attack(pipe).attack(X, eps=[0.0, eps])
    assert not result.success[0].any()
    adv = result.adversarial[1]
    assert np.all(np.abs(adv - X) <= eps + 1e-12)
    assert np.all((adv >= 0.0) & (adv <= 1.0))
    before, after = pipe.predict(X), pipe.predict(adv)
    np.testing.assert_array_equal(result.predictions_after[1], after)
    np.testing.assert_array_equal(result.success[1], after != before)
    # A point no member flipped comes back clean.
    np.testing.assert_array_equal(adv[~result.success[1]], X[~result.success[1]])
    np.testing.assert_array_equal(result.found_by[1] >= 0, result.success[1])


class _Corner(KNNAttackMember):
    """A user member: the corner of the feasible box that a fixed sign vector picks."""

    def __init__(self, sign=1.0):
        self.sign = sign

    def perturb(self, problem, X, y_idx, lower, upper, run, rng):
        return upper if self.sign > 0 else lower


@settings(max_examples=property_examples())
@given(knn_problems(), st.integers(0, len(FAST_MEMBERS)), st.sampled_from([-1.0, 1.0]))
def test_adding_a_member_never_loses_a_flip(problem, where, sign):
    pipe, X, eps = problem
    deterministic = [m for m in FAST_MEMBERS if m[0] != "pgd"] + [
        ("pgd0", MarginPGD(max_iter=10, n_restarts=0))
    ]
    base = _attack(pipe, deterministic).attack(X, eps=eps).success[0]
    more = deterministic[:where] + [("corner", _Corner(sign))] + deterministic[where:]
    assert np.all(_attack(pipe, more).attack(X, eps=eps).success[0] >= base)
    # Appending keeps every earlier member's random draws, restarts included.
    base = _attack(pipe).attack(X, eps=eps).success[0]
    appended = FAST_MEMBERS + [("corner", _Corner(sign))]
    assert np.all(_attack(pipe, appended).attack(X, eps=eps).success[0] >= base)


@settings(max_examples=property_examples(ci=300))
@given(knn_problems(), st.integers(0, 2**16))
def test_same_random_state_same_result(problem, seed):
    pipe, X, eps = problem
    members = [("pgd", MarginPGD(max_iter=8, n_restarts=3))]
    first = _attack(pipe, members, seed).attack(X, eps=eps)
    second = _attack(pipe, members, seed).attack(X, eps=eps)
    np.testing.assert_array_equal(first.adversarial, second.adversarial)
    np.testing.assert_array_equal(first.found_by, second.found_by)


@settings(max_examples=property_examples(ci=300))
@given(knn_problems(max_features=2, ks=(1,)), st.integers(0, 2**16))
def test_lp_member_finds_every_1nn_flip_dense_sampling_finds(problem, seed):
    """For 1-NN an LP per rival against every own reference is exact: a flip found by
    dense sampling of the feasible box (d <= 2) is found by the LP member too."""
    pipe, X, eps = problem
    lp = [("lp", MaxMarginLP(max_lps=100, n_candidates=100))]
    found = _attack(pipe, lp).attack(X, eps=eps).success[0]
    rng = np.random.default_rng(seed)
    lower, upper = np.maximum(X - eps, 0.0), np.minimum(X + eps, 1.0)
    before = pipe.predict(X)
    for i in np.flatnonzero(~found):
        grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 41)] * X.shape[1]), -1)
        grid = grid.reshape(-1, X.shape[1])
        samples = lower[i] + np.vstack([grid, rng.random((500, X.shape[1]))]) * (
            upper[i] - lower[i]
        )
        margin = _margin_1nn(pipe, samples, before[i])
        # A flip by sampling with a clear margin (ties are left to the tie rule).
        assert not np.any(margin > 1e-9), (i, samples[np.argmax(margin)])


def _margin_1nn(pipe, X, label):
    """Nearest own distance minus nearest rival distance (squared, in the embedding)."""
    knn = pipe[-1]
    E = pipe[:-1].transform(X)
    D = ((E[:, None, :] - knn._fit_X[None, :, :]) ** 2).sum(-1)
    own = knn.classes_[knn._y] == label
    return D[:, own].min(axis=1, initial=np.inf) - D[:, ~own].min(axis=1, initial=np.inf)


def test_each_default_member_alone_flips_points_on_real_data(cancer_pipeline):
    pipe, X, y = cancer_pipeline
    for name, member in default_members():
        result = _attack(pipe, [(name, member)]).attack(X, y, eps=0.1)
        assert result.success[0].mean() > 0.1, name


@pytest.fixture(scope="module")
def cancer_pipeline():
    from skrobust import RobustMetricLearner
    from skrobust.datasets import load_breast_cancer

    X, y = load_breast_cancer()
    pipe = make_pipeline(
        RobustMetricLearner(max_iter=100, random_state=0), KNeighborsClassifier(3)
    )
    return pipe.fit(X[::2], y[::2]), X[1::2], y[1::2]


def test_strong_attack_beats_the_paper_attack_on_real_data(cancer_pipeline):
    pipe, X, y = cancer_pipeline
    strong = _attack(pipe, None).attack(X, y, eps=0.05)
    paper = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=0.05).fit().attack(X, y)
    # The paper's attack is the first member: every flip it finds, the cascade keeps.
    assert np.all(strong.success[0] >= paper.success[0])
    assert strong.success[0].mean() > paper.success[0].mean() + 0.05


def test_clone_pickle_and_labels_never_seen(cancer_pipeline):
    pipe, X, y = cancer_pipeline
    attack = _attack(pipe)
    assert clone(attack).get_params()["members"] is not None
    restored = pickle.loads(pickle.dumps(attack))
    np.testing.assert_array_equal(
        restored.attack(X[:20], y[:20], eps=0.05).adversarial,
        attack.attack(X[:20], y[:20], eps=0.05).adversarial,
    )
    # A label the classifier never saw: the point is wrong already, returned clean.
    result = attack.attack(X[:5], np.full(5, 7), eps=0.1)
    assert not result.success.any()
    np.testing.assert_array_equal(result.adversarial[0], X[:5])


@pytest.mark.parametrize(
    "members, error, match",
    [
        ([Eq23()], TypeError, "list of \\(name, KNNAttackMember\\)"),
        ([("x", object())], TypeError, "must be a KNNAttackMember"),
        ([], ValueError, "at least one member"),
    ],
)
def test_bad_members_are_refused(cancer_pipeline, members, error, match):
    pipe, _, _ = cancer_pipeline
    with pytest.raises(error, match=match):
        CascadeKNNAttack(FrozenEstimator(pipe), members=members).fit()


def test_inputs_outside_the_box_are_refused_not_clipped(cancer_pipeline):
    pipe, X, y = cancer_pipeline
    with pytest.raises(ValueError, match="outside feature_range"):
        _attack(pipe).attack(X + 0.5, y)


def test_targeted_line_search_reaches_a_rival_reference_inside_the_budget():
    # 1-NN, W = I: an own reference just nearer than a rival one, the rival inside the
    # feasible box. The line search's target is the rival itself (feasible, so the nearest
    # feasible point to it in the metric); the end of its segment sits on it, where the
    # rival is at distance 0 and the vote flips. Random directions, so the rival lies on
    # every side of the point.
    rng = np.random.default_rng(0)
    eps = 0.1
    for _ in range(20):
        z = rng.uniform(0.3, 0.7, 2)
        step = rng.uniform(-0.8 * eps, 0.8 * eps, 2)
        rival, own = z + step, z - 0.95 * step
        pipe = knn_pipeline(np.eye(2), np.array([own, rival]), np.array([0, 1]), 1)
        assert pipe.predict(z[None, :])[0] == 0
        attack = CascadeKNNAttack(
            FrozenEstimator(pipe), eps=eps, members=[("targeted", TargetedLineSearch())]
        ).fit()
        result = attack.attack(z[None, :])
        assert result.success[0, 0]
        assert result.found_by[0, 0] == 0


@pytest.mark.parametrize("max_lps", [1, 3])
def test_lp_member_flips_a_breakable_1nn_point_within_its_lp_budget(max_lps):
    # 1-NN, one own and one rival reference, the rival reachable: one LP (rival set {b},
    # nothing allowed ahead) finds the flip, so even max_lps=1 must find it.
    z = np.array([0.5, 0.5])
    X = np.array([[0.45, 0.52], [0.56, 0.47]])
    pipe = knn_pipeline(np.eye(2), X, np.array([0, 1]), 1)
    assert pipe.predict(z[None, :])[0] == 0
    attack = CascadeKNNAttack(
        FrozenEstimator(pipe), eps=0.05, members=[("lp", MaxMarginLP(max_lps=max_lps))]
    ).fit()
    result = attack.attack(z[None, :])
    assert result.success[0, 0]
    assert result.found_by[0, 0] == 0
