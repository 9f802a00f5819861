"""The core never imports dask; skrobust.dask says how to install it when it is missing.

These run with or without dask installed (each in a fresh interpreter).
"""

import subprocess
import sys


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_importing_skrobust_does_not_import_dask():
    out = _run(
        "import sys\n"
        "import skrobust, skrobust.certificates, skrobust.datasets, skrobust.metrics\n"
        "import skrobust.model_selection, skrobust.testing\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_skrobust_dask_without_dask_raises_an_import_error_naming_the_extra():
    # A None entry in sys.modules makes "import dask" raise ImportError.
    out = _run(
        "import sys\n"
        "sys.modules['dask'] = None\n"
        "import numpy as np\n"
        "import skrobust.dask as skd\n"
        "from skrobust._mahalanobis import MahalanobisMetric\n"
        "skd.certified_radius(MahalanobisMetric(np.eye(1), np.zeros(1)), np.zeros((1, 2, 1)), "
        "threshold=1.0)"
    )
    assert out.returncode != 0
    assert 'pip install "skrobust[dask]"' in out.stderr
    assert "ImportError" in out.stderr
