"""Metric losses on embeddings, for :class:`~skrobust.ReluMetricLearner` and its training loop.

Each loss is a small object with scikit-learn parameters (so ``clone`` and ``GridSearchCV``
reach them as ``loss__gamma``, ``loss__margin``) called as ``loss(E, batch)``, returning the
loss and its gradient with respect to the embeddings ``E``. :func:`semi_hard_triplets` mines
the triplets of a mini-batch that the adversarial-training defences train on.
"""

from ._batch_losses import AngularLoss, semi_hard_triplets
from ._embedding_losses import ContrastiveLoss, EmbeddingLoss, PairHingeLoss, TripletLoss

__all__ = [
    "AngularLoss",
    "ContrastiveLoss",
    "EmbeddingLoss",
    "PairHingeLoss",
    "TripletLoss",
    "semi_hard_triplets",
]
