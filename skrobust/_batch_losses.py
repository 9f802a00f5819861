"""The angular loss, and semi-hard negatives mined inside a mini-batch.

Both serve the defences that train on adversarial points (``skrobust._adversarial``) and
plug into the one training loop (``skrobust._training``): :class:`AngularLoss` is a loss on
embeddings, ``loss(E, batch) -> (value, dL/dE)``, beside ``skrobust.losses``' triplet,
contrastive and pair-hinge losses.

**Angular loss** (Wang et al. 2017, the third loss of RML): per triplet ``(a, p, n)``,
``log(1 + exp(f))`` with ``f = 4 tan^2(angle) (a + p)^T n - 2 (1 + tan^2(angle)) a^T p``, on
the **unit-normalised** embeddings. ``f`` grows with the scale of the embedding, so without
the normalisation the loss would be lowered by inflating it (as in the paper and in common
implementations). A zero embedding has no direction: its gradient is the subgradient 0.

**Semi-hard negatives** (:func:`semi_hard_triplets`): for an anchor ``a`` and a positive
``p``, the negative of the batch closest to ``a`` among those strictly **farther** from ``a``
than ``p`` (FaceNet's semi-hard negative; TLA retrieves its negatives inside the mini-batch).
When no negative is farther than the positive, the negative **farthest** from the anchor is
taken instead (the rule of TensorFlow Addons' ``TripletSemiHardLoss``): the least violating
one, so the triplet still pulls the positive in without the collapse the hardest negative
invites. An anchor without a positive or without a negative in the batch forms no triplet.
"""

import numbers

import numpy as np
from scipy.special import expit
from sklearn.utils._param_validation import Interval

from ._embedding_losses import EmbeddingLoss

__all__ = ["AngularLoss", "semi_hard_triplets"]


def _unit(E):
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    return np.divide(E, norms, out=np.zeros_like(E), where=norms > 0), norms


def _unit_vjp(U, norms, G):
    """Gradient through ``e -> e / ||e||``: ``(G - u (u . G)) / ||e||`` (0 at ``e = 0``)."""
    radial = np.einsum("ij,ij->i", U, G)[:, np.newaxis]
    return np.divide(G - U * radial, norms, out=np.zeros_like(G), where=norms > 0)


class AngularLoss(EmbeddingLoss):
    """The angular loss of Wang et al. (2017) on (anchor, positive, negative) triplets.

    The mean over triplets of ``log(1 + exp(f))``,
    ``f = 4 t (a + p)^T n - 2 (1 + t) a^T p``, ``t = tan^2(angle)``, with ``a``, ``p``, ``n``
    the unit vectors of the embeddings: it asks the angle at the negative of the triangle
    ``(a, p, n)`` to stay below ``angle``. It sees directions only, so it has no threshold
    on ``D`` and no scale of its own.

    Parameters
    ----------
    angle : float, default=45.0
        The angle bound ``alpha`` at the negative, in degrees, strictly between 0 and 90
        (Wang et al. use 36 to 55).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._training import Batch
    >>> from skrobust.losses import AngularLoss
    >>> E = np.array([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0], [0.9, 0.2]])
    >>> far = AngularLoss()(E, Batch(E, tuples=np.array([[0, 1, 2]])))[0]
    >>> near = AngularLoss()(E, Batch(E, tuples=np.array([[0, 1, 3]])))[0]
    >>> bool(far < near)
    True
    """

    arity = 3
    _parameter_constraints = {"angle": [Interval(numbers.Real, 0, 90, closed="neither")]}

    def __init__(self, angle=45.0):
        self.angle = angle

    @property
    def distance_scale(self):
        """1: the loss is blind to the scale of the embedding; any scale will do."""
        return 1.0

    def __call__(self, E, batch):
        if batch.tuples is None or batch.tuples.shape[1] != 3:
            raise ValueError("AngularLoss needs a batch of (anchor, positive, negative) triplets.")
        a, p, n = batch.tuples.T
        grad = np.zeros_like(E)
        if not len(a):
            return 0.0, grad
        t = np.tan(np.deg2rad(self.angle)) ** 2
        (A, na), (P, np_), (N, nn) = _unit(E[a]), _unit(E[p]), _unit(E[n])
        f = 4.0 * t * np.einsum("ij,ij->i", A + P, N)
        f -= 2.0 * (1.0 + t) * np.einsum("ij,ij->i", A, P)
        s = (expit(f) / len(f))[:, np.newaxis]
        np.add.at(grad, a, _unit_vjp(A, na, s * (4.0 * t * N - 2.0 * (1.0 + t) * P)))
        np.add.at(grad, p, _unit_vjp(P, np_, s * (4.0 * t * N - 2.0 * (1.0 + t) * A)))
        np.add.at(grad, n, _unit_vjp(N, nn, s * (4.0 * t * (A + P))))
        return float(np.logaddexp(0.0, f).sum()) / len(f), grad


def _squared_distances(A, B):
    D = np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :]
    D -= 2.0 * (A @ B.T)
    return np.maximum(D, 0.0)


def semi_hard_triplets(anchor_embedding, embedding, y, positives=None):
    """Triplets of a mini-batch with semi-hard negatives (see the module docstring).

    For each (anchor ``i``, positive ``j``) pair, the negative is the point ``k`` of another
    class with ``D(a_i, e_k) > D(a_i, e_j)`` and ``D(a_i, e_k)`` smallest; if there is none,
    the ``k`` with ``D(a_i, e_k)`` largest. Ties go to the lowest index.

    Parameters
    ----------
    anchor_embedding : ndarray of shape (n_samples, n_components)
        Row ``i``: the embedding of anchor ``i`` (the batch point ``i`` itself, or an
        adversarial version of it, as in TLA and RML).
    embedding : ndarray of shape (n_samples, n_components)
        The embeddings of the batch points, positives and negatives are drawn from.
    y : array-like of shape (n_samples,)
        Class labels of the batch points.
    positives : array-like of int of shape (n_samples,) or None, default=None
        The positive of each anchor (a point of its class other than itself), or -1 for an
        anchor that forms no triplet. ``None``: every ordered pair ``(i, j)``, ``j != i``, of
        points of the same class.

    Returns
    -------
    triplets : ndarray of int of shape (n_triplets, 3)
        Rows ``(i, j, k)``: anchor, positive and negative, as indices into the batch,
        sorted by anchor then positive. Anchors with no point of another class in the batch
        are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.losses import semi_hard_triplets
    >>> E = np.array([[0.0], [1.0], [0.4], [3.0]])
    >>> semi_hard_triplets(E, E, [0, 0, 1, 1]).tolist()
    [[0, 1, 3], [1, 0, 3], [2, 3, 1], [3, 2, 0]]

    Point 2 is the closest negative of anchor 0 but nearer than its positive, so 3 is
    taken; anchor 2 has no negative farther than its positive 3, so it gets the farthest.
    """
    y = np.asarray(y)
    n = len(y)
    same = y[:, np.newaxis] == y[np.newaxis, :]
    if positives is None:
        anchors, positives = np.nonzero(same & ~np.eye(n, dtype=bool))
    else:
        positives = np.asarray(positives)
        if positives.shape != (n,) or positives.dtype.kind not in "iu":
            raise ValueError(f"positives must hold one integer per anchor ({n}).")
        anchors = np.flatnonzero(positives >= 0)
        positives = positives[anchors]
        if (
            np.any(positives >= n)
            or np.any(~same[anchors, positives])
            or np.any(anchors == positives)
        ):
            raise ValueError(
                "positives must name, for each anchor, another point of its class (or -1)."
            )
    D = _squared_distances(anchor_embedding[anchors], embedding)
    d_pos = D[np.arange(len(anchors)), positives][:, np.newaxis]
    neg = ~same[anchors]
    farther = neg & (D > d_pos)
    semi_hard = np.argmin(np.where(farther, D, np.inf), axis=1)
    fallback = np.argmax(np.where(neg, D, -np.inf), axis=1)
    negatives = np.where(farther.any(axis=1), semi_hard, fallback)
    keep = neg.any(axis=1)
    return np.column_stack((anchors, positives, negatives))[keep].astype(np.int64)
