"""Certificates: provable lower bounds on robustness, and exact verification.

A certified accuracy is a lower bound on the accuracy under any attack within the budget;
an attacked accuracy (:mod:`skrobust.metrics`) is an upper bound; exact verification
(:func:`verify_knn`) tells, per point, which side the truth is on.

- Pairs (a metric with a threshold): :func:`perturbed_distance_bounds`,
  :func:`certified_radius`, :func:`metric_norms`, :func:`inf_to_2_norm`.
- kNN votes: :func:`certify_knn` (``method="pairwise"``, ``"interval"`` or ``"exact"``),
  :func:`certified_knn_radius`, :func:`certified_knn_accuracy`, :func:`verify_knn`.
"""

from ._bounds import (
    CERTIFICATE_RTOL,
    MetricNorms,
    certified_radius,
    inf_to_2_norm,
    metric_norms,
    perturbed_distance_bounds,
)
from ._exact import KnnVerification, verify_knn
from ._knn_certificate import certified_knn_accuracy, certified_knn_radius, certify_knn

__all__ = [
    "CERTIFICATE_RTOL",
    "KnnVerification",
    "MetricNorms",
    "certified_knn_accuracy",
    "certified_knn_radius",
    "certified_radius",
    "certify_knn",
    "inf_to_2_norm",
    "metric_norms",
    "perturbed_distance_bounds",
    "verify_knn",
]
