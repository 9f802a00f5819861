"""Metric losses on embeddings: value and gradient with respect to the embeddings.

Each loss is called as ``loss(E, batch) -> (value, dL/dE)`` by the training loop
(``skrobust._training``), with ``E`` the embeddings of ``batch.X``. Pair losses take the
pairs the batch names (``batch.tuples`` with ``batch.signs``) or, when it names none, every
pair of its points labelled by ``batch.y`` (same class similar, ``+1``; else ``-1``).
All distances are squared Euclidean distances ``D`` between embeddings (eq. 2).
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

__all__ = ["ContrastiveLoss", "EmbeddingLoss", "PairHingeLoss", "TripletLoss"]


class EmbeddingLoss(BaseEstimator):
    """Base class of the losses: parameters as scikit-learn parameters (so ``clone`` and
    ``GridSearchCV``'s ``loss__margin`` work), and the values the learner reads.

    Subclasses set ``arity`` (2 for pair losses, 3 for triplet losses) and implement
    ``__call__(E, batch) -> (value, dL/dE)``, :attr:`threshold` and :attr:`distance_scale`.

    Examples
    --------
    A loss of your own: the mean squared norm of the embeddings, which pulls every point to
    the origin (a toy; real losses compare points, as :class:`PairHingeLoss` does).

    >>> import numpy as np
    >>> from skrobust._training import Batch
    >>> from skrobust.losses import EmbeddingLoss
    >>> class CentreLoss(EmbeddingLoss):
    ...     distance_scale = 1.0
    ...     def __call__(self, E, batch):
    ...         return float((E**2).sum(axis=1).mean()), 2.0 * E / len(E)
    >>> E = np.ones((2, 3))
    >>> value, grad = CentreLoss()(E, Batch(E))
    >>> value, grad.shape
    (3.0, (2, 3))
    """

    arity = 2

    @property
    def threshold(self):
        """The loss's own threshold on ``D`` between similar and dissimilar, or ``None``."""
        return None

    @property
    def distance_scale(self):
        """A squared distance the loss is calibrated to: the learner scales its initial
        network so that the mean training ``D`` equals it."""
        raise NotImplementedError

    def __call__(self, E, batch):
        raise NotImplementedError


class _PairLoss(EmbeddingLoss):
    """A mean over pairs of ``phi_s(D)``, ``s`` the pair's label: subclasses give
    :meth:`terms`, the values ``phi`` and their slopes ``dphi/dD``."""

    def terms(self, D, signs):
        raise NotImplementedError

    def __call__(self, E, batch):
        if batch.tuples is None:
            return self._all_pairs(E, batch.y)
        if batch.tuples.shape[1] != 2 or batch.signs is None:
            raise ValueError(
                f"{type(self).__name__} is a pair loss: it needs a batch of labelled pairs "
                "or of labelled points."
            )
        first, second = batch.tuples[:, 0], batch.tuples[:, 1]
        U = E[first] - E[second]
        values, slopes = self.terms(np.einsum("ij,ij->i", U, U), batch.signs)
        n_pairs = len(U)
        grad = np.zeros_like(E)
        U *= (2.0 / n_pairs) * slopes[:, None]
        np.add.at(grad, first, U)
        np.subtract.at(grad, second, U)
        return float(values.sum()) / n_pairs, grad

    def _all_pairs(self, E, y):
        """Every pair ``i < j`` of the batch. ``sum_ij c_ij (e_i - e_j)(e_i - e_j)^T``
        differentiates to ``2 (diag(C 1) - C) E``, ``C`` the symmetric slope matrix, so no
        ``n^2 x m`` array of differences is built."""
        n = len(E)
        if y is None or n < 2:
            raise ValueError("A pair loss on a batch of points needs two labelled points.")
        sq = np.einsum("ij,ij->i", E, E)
        D = sq[:, None] + sq[None, :] - 2.0 * (E @ E.T)
        rows, cols = np.triu_indices(n, k=1)
        signs = np.where(y[rows] == y[cols], 1.0, -1.0)
        values, slopes = self.terms(np.maximum(D[rows, cols], 0.0), signs)
        n_pairs = len(rows)
        C = np.zeros((n, n))
        C[rows, cols] = slopes
        C += C.T
        grad = (2.0 / n_pairs) * (C.sum(axis=1)[:, None] * E - C @ E)
        return float(values.sum()) / n_pairs, grad


class PairHingeLoss(_PairLoss):
    """The paper's pair hinge (eq. 20): the mean of ``max(0, 1 + s (D - gamma))``.

    Similar pairs (``s = +1``) are pulled below ``gamma - 1``, dissimilar ones (``s = -1``)
    pushed beyond ``gamma + 1``; ``gamma`` is the threshold on ``D`` the model is then
    judged by (the attack's and the certificates' threshold).

    Parameters
    ----------
    gamma : float, default=2.0
        The threshold on the squared distance ``D``; the margin is 1 on either side.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._training import Batch
    >>> from skrobust.losses import PairHingeLoss
    >>> E = np.array([[0.0], [1.5], [2.0]])
    >>> value, grad = PairHingeLoss(gamma=2.0)(E, Batch(E, y=np.array([0, 0, 1])))
    >>> round(value, 6), grad.shape
    (1.333333, (3, 1))
    """

    _parameter_constraints = {"gamma": [Interval(numbers.Real, 0, None, closed="neither")]}

    def __init__(self, gamma=2.0):
        self.gamma = gamma

    @property
    def threshold(self):
        """``gamma``: pairs with ``D <= gamma`` are predicted similar."""
        return float(self.gamma)

    @property
    def distance_scale(self):
        """``gamma``."""
        return float(self.gamma)

    def terms(self, D, signs):
        """The per-pair terms and their slopes.

        Parameters
        ----------
        D : ndarray of shape (n_pairs,)
            Squared distances.
        signs : ndarray of shape (n_pairs,)
            ``+1`` similar, ``-1`` dissimilar.

        Returns
        -------
        values, slopes : ndarray of shape (n_pairs,)
            ``max(0, 1 + s (D - gamma))``, and its derivative in ``D``: ``s`` where the
            term is positive, else 0.
        """
        h = 1.0 + signs * (D - self.gamma)
        active = h > 0
        return np.where(active, h, 0.0), np.where(active, signs, 0.0)


class ContrastiveLoss(_PairLoss):
    """The contrastive loss (Hadsell, Chopra & LeCun 2006): the mean over pairs of ``D``
    for a similar pair and ``max(0, margin - sqrt(D))^2`` for a dissimilar one.

    It has no threshold of its own: calibrate one on labelled pairs
    (:func:`skrobust.calibrate_threshold`) before a pair attack or a pair certificate.

    Parameters
    ----------
    margin : float, default=1.0
        The distance (``sqrt(D)``) beyond which dissimilar pairs cost nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._training import Batch
    >>> from skrobust.losses import ContrastiveLoss
    >>> E = np.array([[0.0], [0.5], [0.75]])
    >>> batch = Batch(E, tuples=np.array([[0, 1], [0, 2]]), signs=np.array([1.0, -1.0]))
    >>> value, grad = ContrastiveLoss(margin=1.0)(E, batch)
    >>> round(value, 6), np.round(grad.ravel(), 6).tolist()
    (0.15625, [-0.25, 0.5, -0.25])
    """

    _parameter_constraints = {"margin": [Interval(numbers.Real, 0, None, closed="neither")]}

    def __init__(self, margin=1.0):
        self.margin = margin

    @property
    def distance_scale(self):
        """``margin ** 2``."""
        return float(self.margin) ** 2

    def terms(self, D, signs):
        """The per-pair terms and their slopes.

        Parameters
        ----------
        D : ndarray of shape (n_pairs,)
            Squared distances.
        signs : ndarray of shape (n_pairs,)
            ``+1`` similar, ``-1`` dissimilar.

        Returns
        -------
        values, slopes : ndarray of shape (n_pairs,)
            ``D`` or ``max(0, margin - sqrt(D))^2``, and the derivative in ``D``: 1 for
            similar pairs; ``-(margin - r) / r`` with ``r = sqrt(D)`` for dissimilar ones
            within the margin (0 at ``r = 0``, where the direction to push is undefined).
        """
        r = np.sqrt(D)
        gap = np.maximum(self.margin - r, 0.0)
        similar = signs > 0
        slope_dis = -np.divide(gap, r, out=np.zeros_like(r), where=r > 0)
        return np.where(similar, D, gap * gap), np.where(similar, 1.0, slope_dis)


class TripletLoss(EmbeddingLoss):
    """The triplet loss with margin (Schroff et al. 2015) on squared distances: the mean
    over triplets of ``max(0, D(a, p) - D(a, n) + margin)``.

    It needs batches of triplets (``batch.tuples`` of arity 3: anchor, positive,
    negative); it has no threshold on ``D`` of its own.

    Parameters
    ----------
    margin : float, default=1.0
        How much farther (in ``D``) the negative must be than the positive.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._training import Batch
    >>> from skrobust.losses import TripletLoss
    >>> E = np.array([[0.0], [1.0], [1.2]])
    >>> value, grad = TripletLoss(margin=1.0)(E, Batch(E, tuples=np.array([[0, 1, 2]])))
    >>> round(value, 6), np.round(grad.ravel(), 6).tolist()
    (0.56, [0.4, 2.0, -2.4])
    """

    arity = 3
    _parameter_constraints = {"margin": [Interval(numbers.Real, 0, None, closed="neither")]}

    def __init__(self, margin=1.0):
        self.margin = margin

    @property
    def distance_scale(self):
        """``margin``."""
        return float(self.margin)

    def __call__(self, E, batch):
        if batch.tuples is None or batch.tuples.shape[1] != 3:
            raise ValueError("TripletLoss needs a batch of (anchor, positive, negative) triplets.")
        a, p, n = batch.tuples.T
        U_pos, U_neg = E[a] - E[p], E[a] - E[n]
        h = np.einsum("ij,ij->i", U_pos, U_pos) - np.einsum("ij,ij->i", U_neg, U_neg)
        h += self.margin
        active = (h > 0).astype(np.float64)[:, None] * (2.0 / len(h))
        U_pos *= active
        U_neg *= active
        grad = np.zeros_like(E)
        np.add.at(grad, a, U_pos - U_neg)
        np.subtract.at(grad, p, U_pos)
        np.add.at(grad, n, U_neg)
        return float(np.maximum(h, 0.0).sum()) / len(h), grad
