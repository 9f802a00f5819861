"""One mini-batch training loop for metric embeddings (ReLU networks and linear metrics).

The loop knows nothing of metric learning: it asks a *sampler* for the batches of an epoch,
passes each batch's inputs through an optional *perturbation hook* (adversarial training
moves them there), embeds them with the *network*, asks the *loss* for its value and its
gradient with respect to the embeddings, backpropagates, adds an optional *penalty* on the
parameters, and takes an Adam or SGD step. A linear metric is the network of one layer
without bias (``ReluNetwork([(W, zeros)], fit_bias=False)``), so one loop trains both.

The pieces, each replaceable:

- sampler: an object with ``batches(batch_size, rng)`` yielding :class:`Batch` objects, one
  epoch's worth (:class:`PointBatches`, :class:`PairBatches`, :class:`TripletBatches`);
- loss: ``loss(E, batch) -> (value, dL/dE)``, on the embeddings ``E = f(batch.X)``
  (``skrobust.losses``);
- perturb: ``perturb(network, batch, loss, rng) -> X`` of ``batch.X``'s shape; it must not
  modify ``batch.X``. :func:`loss_input_gradient` gives it ``dL/dX`` of the batch loss;
- penalty: ``penalty(network) -> (value, grads)``, ``grads`` aligned with
  ``network.parameters`` (``None`` for arrays it does not touch).
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_random_state

from ._loss_engine import SINGLE_THREAD_WORK
from ._threads import single_threaded

__all__ = [
    "Batch",
    "PairBatches",
    "PointBatches",
    "TrainingHistory",
    "TripletBatches",
    "eigenvalue_penalty",
    "loss_input_gradient",
    "train",
]

_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPS = 0.9, 0.999, 1e-8
# SGD's momentum (scikit-learn's MLP default).
_SGD_MOMENTUM = 0.9


@dataclass(eq=False)
class Batch:
    """One mini-batch: the points the network embeds and what the loss needs of them.

    Attributes
    ----------
    X : ndarray of shape (n_points, n_features)
        The inputs; the perturbation hook replaces them (never in place).
    y : ndarray of int, shape (n_points,), or None
        Class index of each point, where the sampler knows it.
    tuples : ndarray of int, shape (n_tuples, arity), or None
        Rows of ``X`` forming pairs (arity 2) or (anchor, positive, negative) triplets
        (arity 3). ``None``: the loss uses all pairs of rows (labelled by ``y``).
    signs : ndarray of shape (n_tuples,) or None
        Pair labels, ``+1`` similar and ``-1`` dissimilar, for pairs given as ``tuples``.
    roles : dict of str to ndarray of int
        Rows of ``X`` by role (``"first"``/``"second"`` of pairs, ``"anchor"``,
        ``"positive"``, ``"negative"`` of triplets), so that a hook can perturb some roles
        only. Samplers of tuples give each tuple its own rows.
    """

    X: np.ndarray
    y: np.ndarray | None = None
    tuples: np.ndarray | None = None
    signs: np.ndarray | None = None
    roles: dict = field(default_factory=dict)


def _chunks(order, batch_size, smallest):
    """Consecutive slices of ``order`` of ``batch_size``; a last one shorter than
    ``smallest`` joins the one before."""
    n = len(order)
    edges = list(range(0, n, batch_size)) + [n]
    if len(edges) > 2 and edges[-1] - edges[-2] < smallest:
        del edges[-2]
    return [order[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


class PointBatches:
    """Mini-batches of labelled points, reshuffled every epoch (pair losses use every pair of
    points in a batch).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of int, shape (n_samples,)
        Class indices.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._training import PointBatches
    >>> sampler = PointBatches(np.arange(9.0)[:, None], np.arange(9) % 2)
    >>> [len(b.X) for b in sampler.batches(4, np.random.RandomState(0))]
    [4, 5]
    """

    def __init__(self, X, y):
        self.X, self.y = X, y

    def batches(self, batch_size, rng):
        """Yield the :class:`Batch` objects of one epoch (a last batch of one point joins
        the one before: a batch of one has no pair)."""
        for rows in _chunks(rng.permutation(len(self.X)), batch_size, 2):
            yield Batch(self.X[rows], y=self.y[rows])


class PairBatches:
    """Mini-batches of given labelled pairs, reshuffled every epoch.

    Parameters
    ----------
    pairs : ndarray of shape (n_pairs, 2, n_features)
    signs : ndarray of shape (n_pairs,)
        ``+1`` similar, ``-1`` dissimilar.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._training import PairBatches
    >>> sampler = PairBatches(np.zeros((5, 2, 3)), np.array([1, -1, 1, -1, 1]))
    >>> batch = next(sampler.batches(2, np.random.RandomState(0)))
    >>> batch.X.shape, batch.tuples.tolist(), sorted(batch.roles)
    ((4, 3), [[0, 2], [1, 3]], ['first', 'second'])
    """

    def __init__(self, pairs, signs):
        self.pairs, self.signs = pairs, signs

    def batches(self, batch_size, rng):
        """Yield the :class:`Batch` objects of one epoch."""
        for rows in _chunks(rng.permutation(len(self.pairs)), batch_size, 1):
            yield _tuple_batch(self.pairs[rows], ("first", "second"), signs=self.signs[rows])


def _tuple_batch(tuples, roles, y=None, signs=None):
    """A :class:`Batch` whose rows are the tuples' points, role after role."""
    n, arity = tuples.shape[:2]
    rows = np.arange(n * arity).reshape(arity, n)
    return Batch(
        tuples.transpose(1, 0, 2).reshape(n * arity, -1),
        y=y,
        tuples=np.ascontiguousarray(rows.T),
        signs=signs,
        roles=dict(zip(roles, rows, strict=True)),
    )


class TripletBatches:
    """Random (anchor, positive, negative) triplets from labelled points, drawn anew each
    epoch: every point whose class has another member is an anchor once per epoch, with a
    positive drawn uniformly from the other members of its class and a negative drawn
    uniformly from the points of other classes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of int, shape (n_samples,)
        Class indices; at least two classes, and one with two members.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._training import TripletBatches
    >>> X, y = np.arange(6.0)[:, None], np.array([0, 0, 0, 1, 1, 2])
    >>> batch = next(TripletBatches(X, y).batches(8, np.random.RandomState(0)))
    >>> a, p, n = (batch.y[batch.roles[r]] for r in ("anchor", "positive", "negative"))
    >>> bool(np.all(a == p) and np.all(a != n)), len(a)
    (True, 5)
    """

    def __init__(self, X, y):
        self.X, self.y = X, y
        classes, self._y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
        self._members = [np.flatnonzero(self._y_idx == c) for c in range(len(classes))]
        self._anchors = np.flatnonzero(counts[self._y_idx] > 1)
        if len(classes) < 2 or not self._anchors.size:
            raise ValueError(
                "Triplets need at least two classes and a class with two members; got "
                f"class sizes {counts.tolist()}."
            )

    def batches(self, batch_size, rng):
        """Yield the :class:`Batch` objects of one epoch."""
        anchors = rng.permutation(self._anchors)
        n = len(self.X)
        positives = np.empty_like(anchors)
        negatives = np.empty_like(anchors)
        for c, members in enumerate(self._members):
            mine = np.flatnonzero(self._y_idx[anchors] == c)
            if not mine.size:
                continue
            # Another member of the class: a draw among the others, skipping the anchor.
            pick = rng.randint(0, len(members) - 1, size=mine.size)
            own = np.searchsorted(members, anchors[mine])
            positives[mine] = members[pick + (pick >= own)]
            # A point of another class: a draw among the n - |c| others.
            pick = rng.randint(0, n - len(members), size=mine.size)
            others = np.setdiff1d(np.arange(n), members, assume_unique=True)
            negatives[mine] = others[pick]
        for rows in _chunks(np.arange(len(anchors)), batch_size, 1):
            index = np.stack([anchors[rows], positives[rows], negatives[rows]], axis=1)
            yield _tuple_batch(
                self.X[index],
                ("anchor", "positive", "negative"),
                y=self._y_idx[index].T.reshape(-1),
            )


@dataclass(eq=False)
class TrainingHistory:
    """What :func:`train` records.

    Attributes
    ----------
    loss_curve : list of float
        Per epoch, the mean over its batches of the objective (loss plus penalty) at the
        parameters each batch saw, after the perturbation hook.
    n_epochs : int
        Epochs run.
    n_steps : int
        Optimiser steps taken (batches seen).
    best_epoch : int
        The epoch (from 1) whose end-of-epoch parameters the network holds:
        ``n_epochs`` with ``keep="last"``; with ``keep="best"``, the epoch of the lowest
        entry of ``loss_curve``.
    """

    loss_curve: list
    n_epochs: int
    n_steps: int
    best_epoch: int


def loss_input_gradient(network, X, batch, loss):
    """The batch loss at inputs ``X`` and its gradient with respect to ``X``.

    What a perturbation hook needs for PGD on the training loss itself.

    Parameters
    ----------
    network : ReluNetwork
    X : ndarray of the shape of ``batch.X``
    batch : Batch
    loss : callable
        ``loss(E, batch) -> (value, dL/dE)``.

    Returns
    -------
    value : float
    grad : ndarray of the shape of ``X``
    """
    E, inputs = network.forward(X)
    value, G = loss(E, batch)
    return value, network.input_vjp(inputs, G)


def eigenvalue_penalty(weights):
    """The eigenvalue defence (eq. 21) on a network's last layer, as a ``penalty``.

    ``sum_j weights[j] lam_j`` over the largest eigenvalues of ``M_L = W_L^T W_L``, largest
    first (``lam_j = s_j^2``, the squared singular values of ``W_L``); its gradient is
    ``2 s_j u_j v_j^T`` per eigenvalue. Weights past the number of singular values go
    unused (those eigenvalues are 0). For a linear metric (one layer) it is the paper's
    defence itself.

    Parameters
    ----------
    weights : ndarray of shape (k,)
        One weight per eigenvalue, largest eigenvalue first.

    Returns
    -------
    penalty : callable
        ``penalty(network) -> (value, grads)``.
    """
    weights = np.asarray(weights, dtype=np.float64)

    def penalty(network):
        W = network.layers[-1][0]
        U, s, Vt = np.linalg.svd(W, full_matrices=False)
        k = min(len(weights), len(s))
        w, s = weights[:k], s[:k]
        grad_W = 2.0 * (U[:, :k] * (w * s)) @ Vt[:k]
        grads = [None] * len(network.parameters)
        grads[-2 if network.fit_bias else -1] = grad_W
        return float(w @ (s * s)), grads

    return penalty


def _check_loop_parameters(solver, learning_rate, n_epochs, batch_size, keep):
    if solver not in ("adam", "sgd"):
        raise ValueError(f"solver must be 'adam' or 'sgd', got {solver!r}.")
    if keep not in ("last", "best"):
        raise ValueError(f"keep must be 'last' or 'best', got {keep!r}.")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}.")
    for name, value in (("n_epochs", n_epochs), ("batch_size", batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def train(
    network,
    sampler,
    loss,
    *,
    solver="adam",
    learning_rate=1e-3,
    n_epochs=100,
    batch_size=128,
    random_state=None,
    perturb=None,
    penalty=None,
    keep="last",
    verbose=0,
    name="train",
):
    """Train ``network`` in place by mini-batch descent on ``loss`` (see the module).

    Parameters
    ----------
    network : ReluNetwork
        Updated in place.
    sampler : object
        ``sampler.batches(batch_size, rng)`` yields one epoch's :class:`Batch` objects.
    loss : callable
        ``loss(E, batch) -> (value, dL/dE)`` on the embeddings ``E`` of the batch's inputs.
    solver : {"adam", "sgd"}, default="adam"
        Adam (Kingma & Ba; betas 0.9, 0.999) or SGD with momentum 0.9.
    learning_rate : float, default=1e-3
    n_epochs : int, default=100
        Passes over the sampler's data.
    batch_size : int, default=128
        Passed to the sampler: points, pairs or triplets per batch.
    random_state : int, RandomState instance or None, default=None
        The one generator of the run: the sampler's shuffles and draws and the hook's
        randomness come from it, in order, so the same seed gives the same network.
    perturb : callable or None, default=None
        ``perturb(network, batch, loss, rng) -> X``: the inputs the loss is taken at
        (adversarial training); ``None`` trains on ``batch.X``.
    penalty : callable or None, default=None
        ``penalty(network) -> (value, grads)``, added to the loss at every step (for
        example :func:`eigenvalue_penalty`).
    keep : {"last", "best"}, default="last"
        Which parameters the network ends with: those after the last step, or those at
        the end of the epoch with the lowest mean objective. The mean is over the epoch's
        own iterates, so "best" is a proxy: the objective of the kept parameters
        themselves is not evaluated.
    verbose : int, default=0
        Print the epoch's mean objective every ``max(1, n_epochs // 10)`` epochs when
        positive (every epoch when ``> 1``).
    name : str, default="train"
        Prefix of the printed lines.

    Returns
    -------
    history : TrainingHistory

    Raises
    ------
    FloatingPointError
        When the objective becomes NaN or infinite (the learning rate is too high).

    Examples
    --------
    A linear metric (one layer, no bias) trained on the paper's pair hinge:

    >>> import numpy as np
    >>> from skrobust._network import ReluNetwork
    >>> from skrobust._training import PointBatches, train
    >>> from skrobust.losses import PairHingeLoss
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(0, 1, (20, 2)), rng.normal(3, 1, (20, 2))])
    >>> y = np.repeat([0, 1], 20)
    >>> net = ReluNetwork([(np.eye(2), np.zeros(2))], fit_bias=False)
    >>> history = train(net, PointBatches(X, y), PairHingeLoss(gamma=2.0),
    ...                 learning_rate=0.01, n_epochs=30, batch_size=16, random_state=0)
    >>> bool(history.loss_curve[-1] < history.loss_curve[0]), history.n_steps
    (True, 90)
    """
    _check_loop_parameters(solver, learning_rate, n_epochs, batch_size, keep)
    # A mini-batch's products are small: below the learners' threshold of multiply-adds per
    # step, BLAS threads cost more than they save.
    work = batch_size * sum(W.size for W, _ in network.layers)
    with single_threaded(work < SINGLE_THREAD_WORK):
        return _train(
            network, sampler, loss, solver, learning_rate, n_epochs, batch_size,
            check_random_state(random_state), perturb, penalty, keep, verbose, name,
        )  # fmt: skip


def _train(
    network, sampler, loss, solver, learning_rate, n_epochs, batch_size, rng, perturb, penalty,
    keep, verbose, name,
):  # fmt: skip
    """The loop of :func:`train`, its parameters checked."""
    params = network.parameters
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params] if solver == "adam" else None
    curve, best, best_epoch, best_params = [], np.inf, 0, None
    step = 0
    every = 1 if verbose > 1 else max(1, n_epochs // 10)
    for epoch in range(1, int(n_epochs) + 1):
        total, n_batches = 0.0, 0
        for batch in sampler.batches(int(batch_size), rng):
            X = batch.X if perturb is None else perturb(network, batch, loss, rng)
            step += 1
            # Overflow shows as a non-finite objective or step, reported with its remedy.
            with np.errstate(over="ignore", invalid="ignore"):
                value, grads = _objective(network, X, batch, loss, penalty)
                if np.isfinite(value):
                    _update(params, grads, first, second, learning_rate, step)
            if not (np.isfinite(value) and all(np.isfinite(p).all() for p in params)):
                raise FloatingPointError(
                    f"Training diverged at epoch {epoch} (objective {value}, or a parameter "
                    "no longer finite after the step): lower learning_rate."
                )
            total += value
            n_batches += 1
        curve.append(total / max(1, n_batches))
        if keep == "best" and curve[-1] < best:
            best, best_epoch, best_params = curve[-1], epoch, network.copy_parameters()
        if verbose and (epoch % every == 0 or epoch == 1):
            print(f"[{name}] epoch {epoch:4d}  objective {curve[-1]:.6f}")
    if keep == "best":
        network.set_parameters(best_params)
    else:
        best_epoch = len(curve)
    return TrainingHistory(curve, len(curve), step, best_epoch)


def _objective(network, X, batch, loss, penalty):
    """The objective at inputs ``X`` and its gradient in the network's parameters."""
    E, inputs = network.forward(X)
    value, G = loss(E, batch)
    grads = network.backward(inputs, G)
    if penalty is not None:
        extra, extra_grads = penalty(network)
        value += extra
        grads = [g if e is None else g + e for g, e in zip(grads, extra_grads, strict=True)]
    return value, grads


def _update(params, grads, first, second, learning_rate, step):
    """One Adam step (``second`` given) or SGD-with-momentum step, in place."""
    for p, g, m, v in zip(params, grads, first, second or [None] * len(params), strict=True):
        if v is None:
            m *= _SGD_MOMENTUM
            m -= learning_rate * g
            p += m
            continue
        m *= _ADAM_BETA1
        m += (1.0 - _ADAM_BETA1) * g
        v *= _ADAM_BETA2
        v += (1.0 - _ADAM_BETA2) * g * g
        m_hat = m / (1.0 - _ADAM_BETA1**step)
        v_hat = v / (1.0 - _ADAM_BETA2**step)
        p -= learning_rate * m_hat / (np.sqrt(v_hat) + _ADAM_EPS)
