"""Hypothesis profiles, and the tests that need metric-learn.

Hypothesis profiles: ``dev`` (quick, the default locally) and ``ci`` (thorough). Select one
with ``HYPOTHESIS_PROFILE=ci`` (what ``.ci/run`` does) or pytest's ``--hypothesis-profile=ci``.

Tests marked ``metric_learn`` fit metric-learn's models. metric-learn is optional and its
newest release (0.7.0) cannot fit on scikit-learn 1.8 or later (it passes
``force_all_finite``, which scikit-learn 1.8 removed). Where its ``fit`` does not run, those
tests are skipped with the reason, which ``-ra`` lists; with
``SKROBUST_REQUIRE_METRIC_LEARN=1`` (the main CI job) they fail instead.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _metric_learn_unusable():
    """Why metric-learn's ``fit`` cannot run here, or ``None`` when it can."""
    try:
        import metric_learn
    except ImportError as exc:
        return f"metric-learn is not installed ({exc})"
    try:
        metric_learn.Covariance().fit(np.eye(3))
    except TypeError as exc:
        return f"metric-learn's fit fails with this scikit-learn: {exc}"
    return None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "metric_learn: fits metric-learn's models (needs a scikit-learn it runs on)"
    )


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("metric_learn")]
    reason = _metric_learn_unusable() if marked else None
    if reason is None:
        return
    if os.environ.get("SKROBUST_REQUIRE_METRIC_LEARN") == "1":
        raise pytest.UsageError(
            f"SKROBUST_REQUIRE_METRIC_LEARN=1 but {len(marked)} tests cannot run: {reason}"
        )
    skip = pytest.mark.skip(reason=reason)
    for item in marked:
        item.add_marker(skip)
