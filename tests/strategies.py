"""Hypothesis strategies of the test suite: the public ones of :mod:`skrobust.testing`,
plus the few only these tests need."""

from hypothesis import strategies as st

from skrobust.testing import (  # noqa: F401 - re-exported for the test modules
    boxes,
    budgets,
    components,
    eps_values,
    fixed_metrics,
    pairs_in_box,
    pairs_with_perturbations,
    perturbations,
    points_in_box,
    triplets_in_box,
)


def knn_pipeline(W, X, y, k):
    """A fitted ``Pipeline(FixedMetric(W), KNeighborsClassifier(k))`` on references ``X``."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    from skrobust.testing import FixedMetric

    # A k-d tree: scikit-learn's brute-force search starts OpenMP threads on every call,
    # which costs ~40 ms per predict on tiny problems.
    knn = KNeighborsClassifier(k, algorithm="kd_tree")
    return make_pipeline(FrozenEstimator(FixedMetric(W)), knn).fit(X, y)


def property_examples(ci=1000):
    """``max_examples`` for a property test: ``ci`` under the CI profile, else the profile's.

    Use as ``@settings(max_examples=property_examples())`` so the CI run draws at least
    ``ci`` examples while a local run stays quick.
    """
    from hypothesis import settings

    if settings.get_current_profile_name() == "ci":
        return max(ci, settings.default.max_examples)
    return settings.default.max_examples


@st.composite
def linear_metrics(draw, min_features=1, max_features=4, scale=2.0):
    """``W`` of shape (n_components, n_features), ``1 <= n_components <= n_features + 1``."""
    n_features = draw(st.integers(min_features, max_features))
    n_components = draw(st.integers(1, n_features + 1))
    return draw(components(n_features, n_components, scale))


@st.composite
def attack_settings(draw):
    """``(eps, step_size, max_iter)`` of an attack: any budget, step and iteration count."""
    eps = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.6)))
    step_size = draw(st.floats(1e-3, 0.5))
    max_iter = draw(st.integers(0, 12))
    return eps, step_size, max_iter
