"""The doctests of ``skrobust.dask`` need dask (the ``skrobust[dask]`` extra).

Where ``dask[distributed]`` is not installed they are skipped with the reason, which
``pytest -ra`` lists; with ``SKROBUST_REQUIRE_DASK=1`` (the main CI job) they fail instead.
The tests in ``tests/test_dask.py`` follow the same rule.
"""

import os

import pytest


def dask_missing():
    """Why the dask tests cannot run, or ``None`` when they can."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        reason = f'dask[distributed] is not installed (pip install "skrobust[dask]"): {exc}'
        if os.environ.get("SKROBUST_REQUIRE_DASK") == "1":
            raise pytest.UsageError(f"SKROBUST_REQUIRE_DASK=1 but {reason}") from None
        return reason
    return None


def pytest_collection_modifyitems(config, items):
    doctests = [item for item in items if item.nodeid.startswith("skrobust/dask.py")]
    reason = dask_missing() if doctests else None
    if reason is None:
        return
    for item in doctests:
        item.add_marker(pytest.mark.skip(reason=reason))
