"""Metric losses on a mini-batch of embedded triplets, their gradients, and semi-hard mining.

Every loss here is a mean over triplets ``(a, p, n)`` of embeddings (anchor, positive of the
anchor's class, negative of another class), returned with its gradient with respect to
each of the three embedding arrays. The defences that train on adversarial points (RML,
TLA, adversarial metric training) move one role or several, so a gradient per role is what
both the optimiser (through the model's vector-Jacobian product) and the training attack
need. Squared distances are ``D(u, v) = ||u - v||^2``; margins are on ``D``, as every
threshold in skrobust.

- triplet (Schroff et al. 2015; TLA): ``max(0, D(a, p) - D(a, n) + margin)``;
- contrastive (Hadsell et al. 2006; RML's form): the similar pair ``(a, p)`` costs
  ``D(a, p) / 2`` and the dissimilar pair ``(a, n)`` costs
  ``max(0, sqrt(margin) - sqrt(D(a, n)))^2 / 2`` (the classic margin is on the unsquared
  distance; here ``margin`` is its square, on ``D``);
- angular (Wang et al. 2017; RML): ``log(1 + exp(f))`` with
  ``f = 4 tan^2(angle) (a + p)^T n - 2 (1 + tan^2(angle)) a^T p`` on the **unit-normalised**
  embeddings (``f`` grows with the scale of the embedding, so without the normalisation
  the loss is lowered by inflating it); a zero embedding has no direction and gets the
  subgradient 0.

Semi-hard negatives (:func:`semi_hard_triplets`): for an anchor ``a`` and a positive ``p``,
the negative of the batch closest to ``a`` among those **farther** from ``a`` than ``p`` is
(FaceNet's semi-hard negative, TLA's in-batch retrieval). When no negative is farther than
the positive, the farthest negative of the batch is taken (TensorFlow Addons'
``TripletSemiHardLoss`` rule): the least violating one, so the triplet still pulls the
positive in without the collapse the hardest negative invites. An anchor without a positive
or without a negative in the batch forms no triplet.
"""

import numpy as np
from scipy.special import expit

__all__ = [
    "BATCH_LOSSES",
    "angular_loss",
    "contrastive_loss",
    "semi_hard_triplets",
    "triplet_loss",
]


def _empty(Ea, Ep, En):
    return 0.0, (np.zeros_like(Ea), np.zeros_like(Ep), np.zeros_like(En))


def triplet_loss(Ea, Ep, En, margin=1.0):
    """Triplet loss with a margin on ``D``, and its gradient per role.

    Parameters
    ----------
    Ea, Ep, En : ndarray of shape (n_triplets, n_components)
        Embedded anchors, positives and negatives; row ``i`` of each is triplet ``i``.
    margin : float, default=1.0
        Margin on the squared distance: a triplet costs nothing once
        ``D(a, n) >= D(a, p) + margin``.

    Returns
    -------
    loss : float
        ``mean_i max(0, D(a_i, p_i) - D(a_i, n_i) + margin)`` (0 for no triplets).
    grads : tuple of three ndarrays of shape (n_triplets, n_components)
        Gradients of ``loss`` with respect to ``Ea``, ``Ep`` and ``En``.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.retrieval import triplet_loss
    >>> a, p, n = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 1.5]])
    >>> loss, (ga, gp, gn) = triplet_loss(a, p, n, margin=2.0)
    >>> loss  # 1 - 2.25 + 2
    0.75
    >>> gn.tolist()  # pushing the negative farther lowers the loss
    [[0.0, -3.0]]
    """
    if not len(Ea):
        return _empty(Ea, Ep, En)
    n = len(Ea)
    u, v = Ea - Ep, Ea - En
    h = np.einsum("ij,ij->i", u, u) - np.einsum("ij,ij->i", v, v) + margin
    active = (h > 0)[:, np.newaxis] * (2.0 / n)
    Gp, Gn = -active * u, active * v
    return float(np.maximum(h, 0.0).sum() / n), (-(Gp + Gn), Gp, Gn)


def contrastive_loss(Ea, Ep, En, margin=1.0):
    """Contrastive loss of the pairs ``(a, p)`` (similar) and ``(a, n)`` (dissimilar).

    Parameters
    ----------
    Ea, Ep, En : ndarray of shape (n_triplets, n_components)
        Embedded anchors, positives and negatives; row ``i`` of each is triplet ``i``.
    margin : float, default=1.0
        On the squared distance: a dissimilar pair costs nothing once ``D >= margin``.

    Returns
    -------
    loss : float
        ``mean_i [D(a_i, p_i) + max(0, sqrt(margin) - sqrt(D(a_i, n_i)))^2] / 2``
        (0 for no triplets).
    grads : tuple of three ndarrays of shape (n_triplets, n_components)
        Gradients of ``loss`` with respect to ``Ea``, ``Ep`` and ``En`` (where
        ``a = n``, the subgradient 0 for the dissimilar term).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.retrieval import contrastive_loss
    >>> a, p, n = np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    >>> loss, _ = contrastive_loss(a, p, n, margin=4.0)
    >>> loss  # (1 + (2 - 1)^2) / 2
    1.0
    """
    if not len(Ea):
        return _empty(Ea, Ep, En)
    n = len(Ea)
    u, v = Ea - Ep, Ea - En
    dn = np.sqrt(np.einsum("ij,ij->i", v, v))
    gap = np.maximum(np.sqrt(margin) - dn, 0.0)
    loss = (np.einsum("ij,ij->i", u, u).sum() + (gap * gap).sum()) / (2.0 * n)
    # d/dv of gap^2 / 2 is -gap v / |v|.
    push = np.divide(gap, dn, out=np.zeros_like(dn), where=dn > 0)[:, np.newaxis]
    Gp, Gn = -u / n, push * v / n
    return float(loss), (-(Gp + Gn), Gp, Gn)


def _unit(E):
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    return np.divide(E, norms, out=np.zeros_like(E), where=norms > 0), norms


def _unit_vjp(U, norms, G):
    """Gradient through ``e -> e / ||e||``: ``(G - u (u . G)) / ||e||`` (0 at ``e = 0``)."""
    radial = np.einsum("ij,ij->i", U, G)[:, np.newaxis]
    return np.divide(G - U * radial, norms, out=np.zeros_like(G), where=norms > 0)


def angular_loss(Ea, Ep, En, angle=45.0):
    """Angular loss of Wang et al. (2017) on unit-normalised embeddings.

    Parameters
    ----------
    Ea, Ep, En : ndarray of shape (n_triplets, n_components)
        Embedded anchors, positives and negatives; row ``i`` of each is triplet ``i``.
    angle : float, default=45.0
        The angle ``alpha`` at the negative, in degrees, strictly between 0 and 90.

    Returns
    -------
    loss : float
        ``mean_i log(1 + exp(f_i))``, ``f = 4 t (a + p)^T n - 2 (1 + t) a^T p`` with
        ``t = tan^2(angle)`` and ``a, p, n`` the unit vectors of the embeddings
        (0 for no triplets).
    grads : tuple of three ndarrays of shape (n_triplets, n_components)
        Gradients of ``loss`` with respect to ``Ea``, ``Ep`` and ``En``.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.retrieval import angular_loss
    >>> a, p = np.array([[1.0, 0.0]]), np.array([[1.0, 0.1]])
    >>> near, far = angular_loss(a, p, p)[0], angular_loss(a, p, -p)[0]
    >>> bool(far < near)
    True
    """
    if not len(Ea):
        return _empty(Ea, Ep, En)
    n = len(Ea)
    t = np.tan(np.deg2rad(angle)) ** 2
    (A, na), (P, np_), (N, nn) = _unit(Ea), _unit(Ep), _unit(En)
    f = 4.0 * t * np.einsum("ij,ij->i", A + P, N) - 2.0 * (1.0 + t) * np.einsum("ij,ij->i", A, P)
    loss = np.logaddexp(0.0, f).sum() / n
    s = (expit(f) / n)[:, np.newaxis]
    GA = s * (4.0 * t * N - 2.0 * (1.0 + t) * P)
    GP = s * (4.0 * t * N - 2.0 * (1.0 + t) * A)
    GN = s * (4.0 * t * (A + P))
    return float(loss), (_unit_vjp(A, na, GA), _unit_vjp(P, np_, GP), _unit_vjp(N, nn, GN))


BATCH_LOSSES = {
    "contrastive": contrastive_loss,
    "triplet": triplet_loss,
    "angular": angular_loss,
}


def _squared_distances(A, B):
    D = np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :]
    D -= 2.0 * (A @ B.T)
    return np.maximum(D, 0.0)


def semi_hard_triplets(anchor_embedding, embedding, y):
    """Triplets of a mini-batch with semi-hard negatives.

    Every ordered pair ``(i, j)``, ``j != i``, of points of the same class is an
    (anchor, positive) pair; its negative is the point ``k`` of another class closest to
    anchor ``i`` among those farther from it than ``j``: ``D(a_i, e_k) > D(a_i, e_j)``,
    smallest. When no negative is farther than the positive, the negative farthest from the
    anchor is taken instead (the least violating one). An anchor whose class has no other
    point, or which has no point of another class in the batch, forms no triplet. Ties go
    to the lowest index.

    Parameters
    ----------
    anchor_embedding : ndarray of shape (n_samples, n_components)
        Row ``i``: the embedding of anchor ``i`` (the batch point ``i`` itself, or an
        adversarial version of it, as in TLA).
    embedding : ndarray of shape (n_samples, n_components)
        The embeddings of the batch points, positives and negatives are drawn from.
    y : array-like of shape (n_samples,)
        Class labels of the batch points.

    Returns
    -------
    triplets : ndarray of int of shape (n_triplets, 3)
        Rows ``(i, j, k)``: anchor, positive and negative, as indices into the batch,
        sorted by anchor then positive.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.retrieval import semi_hard_triplets
    >>> E = np.array([[0.0], [1.0], [0.4], [3.0]])
    >>> semi_hard_triplets(E, E, [0, 0, 1, 1]).tolist()
    [[0, 1, 3], [1, 0, 3], [2, 3, 1], [3, 2, 0]]

    Point 2 is the closest negative of anchor 0 but nearer than its positive, so 3 is
    taken; anchor 2 has no negative farther than its positive 3, so it gets the farthest.
    """
    y = np.asarray(y)
    D = _squared_distances(anchor_embedding, embedding)
    same = y[:, np.newaxis] == y[np.newaxis, :]
    anchors, positives = np.nonzero(same & ~np.eye(len(y), dtype=bool))
    d_pos = D[anchors, positives][:, np.newaxis]
    neg = ~same[anchors]
    d_neg = D[anchors]
    farther = neg & (d_neg > d_pos)
    semi_hard = np.argmin(np.where(farther, d_neg, np.inf), axis=1)
    fallback = np.argmax(np.where(neg, d_neg, -np.inf), axis=1)
    negatives = np.where(farther.any(axis=1), semi_hard, fallback)
    keep = neg.any(axis=1)
    return np.column_stack((anchors, positives, negatives))[keep].astype(np.int64)
