"""Certificates: provable lower bounds on robustness, and exact verification.

A certified accuracy is a lower bound on the accuracy under any attack within the budget;
an attacked accuracy (:mod:`skrobust.metrics`) is an upper bound. Exact verification
(:func:`verify_knn`) tells, per point, which side the truth is on.
"""

from ._exact import KnnVerification, verify_knn

__all__ = ["KnnVerification", "verify_knn"]
