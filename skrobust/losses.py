"""Metric losses on embeddings, for :class:`~skrobust.ReluMetricLearner` and its training loop.

Each loss is a small object with scikit-learn parameters (so ``clone`` and ``GridSearchCV``
reach them as ``loss__gamma``, ``loss__margin``) called as ``loss(E, batch)``, returning the
loss and its gradient with respect to the embeddings ``E``.
"""

from ._embedding_losses import ContrastiveLoss, EmbeddingLoss, PairHingeLoss, TripletLoss

__all__ = ["ContrastiveLoss", "EmbeddingLoss", "PairHingeLoss", "TripletLoss"]
