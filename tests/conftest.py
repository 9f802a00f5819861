"""Hypothesis profiles: ``dev`` (quick, the default locally) and ``ci`` (thorough).

Select one with ``HYPOTHESIS_PROFILE=ci`` (what ``.ci/run`` does) or pytest's
``--hypothesis-profile=ci``.
"""

import os

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
