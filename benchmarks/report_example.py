"""The README's report: ``python -m skrobust`` with its defaults (breast cancer), logged.

Run: ``python benchmarks/report_example.py [report options]``. Writes
``benchmarks/results/report_breast_cancer.log`` (the printed table, the chosen strengths and
the run time) and ``report_breast_cancer.png``.
"""

import os
import sys

from _log import RESULTS, logged

from skrobust.__main__ import main

if __name__ == "__main__":
    figure = os.path.relpath(RESULTS / "report_breast_cancer.png")
    with logged("report_breast_cancer"):
        status = main([*sys.argv[1:], "--output", figure])
    sys.exit(status)
