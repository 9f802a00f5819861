"""skrobust: adversarial robustness of metric learning, as scikit-learn estimators.

Attacks (AckMetric), certificates and defences from Huai et al., "On the Robustness of
Metric Learning: An Adversarial Perspective" (ACM TKDD 2022), and related work.
"""

from ._adversarial import (
    AdversarialAnchorLearner,
    AdversarialBatchLearner,
    AdversarialHeadLearner,
)
from ._attack import AckMetricAttack, AttackResult
from ._classifier import CertifiedPairClassifier
from ._eq23_attack import KNNAttack, KNNAttackResult
from ._knn_attack import (
    CascadeKNNAttack,
    CascadeResult,
    Eq23,
    KNNAttackMember,
    KNNProblem,
    MarginPGD,
    MaxMarginLP,
    TargetedLineSearch,
)
from ._learner import RobustMetricLearner
from ._mahalanobis import MahalanobisMetric, calibrate_threshold, mahalanobis_metric
from ._network_learner import ReluMetricLearner
from ._pair_attack import PairAttack, PairAttackResult, TripletAttack, TripletAttackResult
from ._target import KnnTarget, LinearTarget, MetricTarget, as_knn_target, as_target
from .certificates import (
    MetricNorms,
    certified_radius,
    inf_to_2_norm,
    metric_norms,
    perturbed_distance_bounds,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AdversarialAnchorLearner",
    "AdversarialBatchLearner",
    "AdversarialHeadLearner",
    "AckMetricAttack",
    "AttackResult",
    "CascadeKNNAttack",
    "CascadeResult",
    "Eq23",
    "KNNAttack",
    "KNNAttackMember",
    "KNNAttackResult",
    "KNNProblem",
    "MarginPGD",
    "MaxMarginLP",
    "TargetedLineSearch",
    "TripletAttack",
    "TripletAttackResult",
    "CertifiedPairClassifier",
    "KnnTarget",
    "LinearTarget",
    "MahalanobisMetric",
    "MetricNorms",
    "MetricTarget",
    "PairAttack",
    "PairAttackResult",
    "ReluMetricLearner",
    "RobustMetricLearner",
    "as_knn_target",
    "as_target",
    "calibrate_threshold",
    "certified_radius",
    "inf_to_2_norm",
    "mahalanobis_metric",
    "metric_norms",
    "perturbed_distance_bounds",
]
