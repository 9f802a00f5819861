"""The model protocol: one way every attack and certificate reads the model it is given.

A *target* is a metric ``D(x, x') = ||f(x) - f(x')||^2`` on the raw input space, with the
model's own decision threshold on ``D`` when it has one (:class:`MetricTarget`); a linear one
(:class:`LinearTarget`, ``f(x) = W x + b``) also exposes ``W``. :func:`as_target` reads it
from any supported fitted model, :func:`as_knn_target` reads a kNN classifier over one
(:class:`KnnTarget`), and :func:`resolve_threshold` decides which threshold on ``D`` is in
use. A model of your own plugs in with a ``__skrobust_target__(self)`` method returning a
:class:`MetricTarget`. A ReLU network is a :class:`ReluNetworkTarget` (its layers are what the
network certificates read), and any differentiable model given by its embedding and
vector-Jacobian product as NumPy callables (a PyTorch module, say) is a
:class:`CallableTarget`.
"""

from ._network import CallableTarget, ReluNetworkTarget
from ._target import (
    KnnTarget,
    LinearTarget,
    MetricTarget,
    as_knn_target,
    as_target,
    resolve_threshold,
)

__all__ = [
    "CallableTarget",
    "KnnTarget",
    "LinearTarget",
    "MetricTarget",
    "ReluNetworkTarget",
    "as_knn_target",
    "as_target",
    "resolve_threshold",
]
