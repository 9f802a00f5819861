"""Hypothesis strategies shared by the test modules, named for the objects they build."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite_floats = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
unit_floats = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)


@st.composite
def boxes(draw, unit=None):
    """A box ``(lo, hi)``: the unit box, or (when ``unit`` is not True) a random one."""
    if unit or (unit is None and draw(st.booleans())):
        return (0.0, 1.0)
    lo = draw(st.floats(-3.0, 3.0))
    width = draw(st.floats(0.25, 4.0))
    return (lo, lo + width)


@st.composite
def components(draw, n_features, n_components=None, scale=2.0):
    """A random ``W`` of shape (n_components, n_features) with entries in [-scale, scale]."""
    n_components = n_features if n_components is None else n_components
    return draw(
        hnp.arrays(
            np.float64,
            (n_components, n_features),
            elements=st.floats(-scale, scale, allow_nan=False, allow_infinity=False),
        )
    )


@st.composite
def points_in_box(draw, n_points, n_features, box=(0.0, 1.0)):
    """An array (n_points, n_features) with every entry in ``box``."""
    lo, hi = box
    u = draw(hnp.arrays(np.float64, (n_points, n_features), elements=unit_floats))
    return np.clip(lo + u * (hi - lo), lo, hi)


@st.composite
def pairs_in_box(draw, n_features, max_pairs=8, box=(0.0, 1.0)):
    """Pairs of shape (n_pairs, 2, n_features) in ``box``."""
    n_pairs = draw(st.integers(1, max_pairs))
    return draw(points_in_box(2 * n_pairs, n_features, box)).reshape(n_pairs, 2, n_features)


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


@st.composite
def triplets_in_box(draw, n_features, max_triplets=6, box=(0.0, 1.0)):
    """Triplets (anchor, positive, negative) of shape (n_triplets, 3, n_features) in ``box``."""
    n = draw(st.integers(1, max_triplets))
    return draw(points_in_box(3 * n, n_features, box)).reshape(n, 3, n_features)
