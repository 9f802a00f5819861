"""Defences that train on adversarial points: RML, TLA and adversarial metric training.

Three estimators share one training loop (``skrobust._training.train``), one network and
its vocabulary (:class:`~skrobust.ReluMetricLearner`: no hidden layer is a linear metric)
and one sampler of mined triplets (:class:`MinedTripletBatches`). They differ in where the
adversarial points come from, and each is named for that:

- :class:`AdversarialHeadLearner` (RML, Paket & Baytas 2024): adversarial anchors are
  generated **once**, by PGD against a frozen starting embedding (a linear metric: NT-ML,
  ``RobustMetricLearner(alpha=0)``; a network: ``ReluMetricLearner(alpha=0)`` of the same
  architecture, the project's undefended baselines), and a linear metric head on that
  embedding is trained on (adversarial anchor, natural positive, natural negative).
- :class:`AdversarialAnchorLearner` (TLA, Mao et al. 2019): adversarial anchors are
  **regenerated for every mini-batch** by PGD against the current model, and negatives are
  mined semi-hard for the adversarial anchors.
- :class:`AdversarialBatchLearner` (adversarial metric training, Panum et al.'s line of
  work): triplets are mined on the natural mini-batch and held fixed, then PGD on **that
  same batch loss** moves the points of the chosen roles (anchors, positives, negatives,
  all), and the model takes its step on the perturbed batch.

**Mini-batches.** Every epoch the training points are reshuffled into batches of
``batch_size``. In a batch, each point whose class has another point there is an anchor
once: its positive is drawn uniformly among the other points of its class in the batch and
its negative is mined semi-hard under the current model
(:func:`skrobust.losses.semi_hard_triplets`: the closest negative farther than the
positive, else the farthest). Each triplet gets its own rows, so a role can be perturbed
alone. A pair loss (contrastive, hinge) trains on the triplet's two pairs: (anchor,
positive) similar, (anchor, negative) dissimilar.

**Training attacks.** ``attack_max_iter`` signed-gradient steps of ``attack_step_size``
(default ``2.5 robust_eps / attack_max_iter``), projected onto the L-infinity ball of
radius ``robust_eps`` around the natural point and onto ``feature_range``; no random start.
RML and TLA ascend the retrieval loss (``skrobust._retrieval_attack``: the anchor's nearest
positive against its nearest negative, re-found at every step) over the training set
(RML) or the mini-batch (TLA); TLA's own paper attacks a classifier's cross-entropy, which
a metric learner does not have. Adversarial metric training ascends the training loss
itself.
"""

import numbers
from typing import NamedTuple

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ._batch_losses import AngularLoss, semi_hard_triplets
from ._embedding_losses import ContrastiveLoss, EmbeddingLoss, PairHingeLoss, TripletLoss
from ._learner import RobustMetricLearner, data_scale
from ._loss_engine import SINGLE_THREAD_WORK
from ._network import ReluNetwork, ReluNetworkTarget
from ._network_learner import ReluMetricLearner
from ._retrieval_attack import retrieval_pgd
from ._target import LinearTarget
from ._threads import single_threaded
from ._training import Batch, _chunks, loss_input_gradient, train
from ._validation import check_feature_range, check_in_box

__all__ = [
    "AdversarialAnchorLearner",
    "AdversarialBatchLearner",
    "AdversarialHeadLearner",
    "MinedTripletBatches",
    "mined_batch",
    "role_pgd",
]

_LOSSES = {
    "triplet": TripletLoss,
    "contrastive": ContrastiveLoss,
    "angular": AngularLoss,
    "hinge": PairHingeLoss,
}
ROLES = ("anchor", "positive", "negative")


class TrainingAttack(NamedTuple):
    """The training attack's settings, in the training units."""

    eps: float
    step_size: float
    max_iter: int
    box: tuple | None


def _draw_positives(y, rng):
    """One positive per point: another point of its class, uniformly; -1 when none."""
    positives = np.full(len(y), -1)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < 2:
            continue
        # A draw among the others, skipping the anchor itself.
        pick = rng.randint(0, len(members) - 1, size=len(members))
        positives[members] = members[pick + (pick >= np.arange(len(members)))]
    return positives


def mined_batch(A, X, y, triplets, arity):
    """The :class:`~skrobust._training.Batch` of mined triplets: rows anchors
    (from ``A``), then positives, then negatives (from ``X``), each triplet its own rows;
    triplets for a triplet loss (``arity=3``), the two pairs of each for a pair loss."""
    a, p, n = triplets.T
    k = len(triplets)
    rows = np.arange(3 * k).reshape(3, k)
    roles = dict(zip(ROLES, rows, strict=True))
    points = np.concatenate([A[a], X[p], X[n]])
    labels = np.concatenate([y[a], y[p], y[n]])
    if arity == 3:
        return Batch(points, y=labels, tuples=np.ascontiguousarray(rows.T), roles=roles)
    pairs = np.concatenate([rows[[0, 1]].T, rows[[0, 2]].T])
    signs = np.concatenate([np.ones(k), -np.ones(k)])
    return Batch(points, y=labels, tuples=pairs, signs=signs, roles=roles)


class MinedTripletBatches:
    """Mini-batches of labelled points made into triplets mined under the current network.

    A sampler of the training loop (``batches(batch_size, rng)``); see the module docstring.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The natural points (positives and negatives are drawn from them).
    y : ndarray of int, shape (n_samples,)
        Class indices.
    network : ReluNetwork
        The network in training (updated in place by the loop): each batch is mined with
        its current weights.
    arity : {2, 3}
        Of the loss: pairs or triplets.
    anchors : None, ndarray of the shape of ``X``, or callable, default=None
        The anchors: ``None``, the natural points; an array, fixed anchors aligned with
        ``X`` (RML's adversarial anchors, generated once); a callable
        ``anchors(network, X_batch, y_batch) -> A_batch`` (TLA's attack, run on every
        batch before mining).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._adversarial import MinedTripletBatches
    >>> from skrobust._network import ReluNetwork
    >>> X, y = np.arange(6.0)[:, None], np.array([0, 0, 0, 1, 1, 1])
    >>> net = ReluNetwork([(np.eye(1), np.zeros(1))], fit_bias=False)
    >>> batch = next(MinedTripletBatches(X, y, net, 3).batches(6, np.random.RandomState(0)))
    >>> a, p, n = (batch.y[batch.roles[r]] for r in ("anchor", "positive", "negative"))
    >>> bool(np.all(a == p) and np.all(a != n)), len(a)
    (True, 6)
    """

    def __init__(self, X, y, network, arity, anchors=None):
        self.X, self.y, self.network = X, y, network
        self.arity, self.anchors = arity, anchors

    def batches(self, batch_size, rng):
        """Yield the mined :class:`~skrobust._training.Batch` of each batch of one epoch (a
        batch of a single class, with no triplet, is skipped)."""
        for rows in _chunks(rng.permutation(len(self.X)), batch_size, 2):
            X, y = self.X[rows], self.y[rows]
            positives = _draw_positives(y, rng)
            if self.anchors is None:
                A = X
            elif callable(self.anchors):
                A = self.anchors(self.network, X, y)
            else:
                A = self.anchors[rows]
            embed = self.network.embed
            triplets = semi_hard_triplets(embed(A), embed(X), y, positives)
            if len(triplets):
                yield mined_batch(A, X, y, triplets, self.arity)


def _ball(X, eps, box):
    lo, hi = X - eps, X + eps
    if box is not None:
        lo, hi = np.maximum(lo, box[0]), np.minimum(hi, box[1])
    return lo, hi


def role_pgd(roles, eps, step_size, max_iter, box):
    """The perturbation hook of adversarial metric training: PGD on the batch loss itself.

    Parameters
    ----------
    roles : sequence of str
        The roles of the batch whose rows move (``batch.roles``' keys).
    eps, step_size : float
        L-infinity budget per point and signed-gradient step, in the training units.
    max_iter : int
        Steps.
    box : tuple (lo, hi) or None
        Box the points stay in.

    Returns
    -------
    perturb : callable
        ``perturb(network, batch, loss, rng) -> X`` for the training loop; the mined
        triplets of ``batch`` stay fixed, ``batch.X`` is not modified.
    """

    def perturb(network, batch, loss, rng):
        rows = np.concatenate([batch.roles[role] for role in roles])
        lo, hi = _ball(batch.X[rows], eps, box)
        X = batch.X.copy()
        for _ in range(max_iter):
            _, G = loss_input_gradient(network, X, batch, loss)
            X[rows] = np.clip(X[rows] + step_size * np.sign(G[rows]), lo, hi)
        return X

    return perturb


def anchor_pgd(eps, step_size, max_iter, box):
    """TLA's attack on the anchors of a batch: PGD on the retrieval loss against the
    current network, the batch as gallery (an anchor is not its own neighbour)."""

    def attack(network, X, y):
        target = ReluNetworkTarget(network.layers)
        return retrieval_pgd(
            target, X, y, target.embed(X), y, np.arange(len(y)), eps, step_size, max_iter, box
        )

    return attack


def _not_offered(learner):
    # Mining needs class labels: a list of labelled pairs has none.
    return False


class _AdversarialLearner(ReluMetricLearner):
    """The parameters, validation and training shared by the three defences."""

    _parameter_constraints = {
        **ReluMetricLearner._parameter_constraints,
        "loss": [StrOptions(set(_LOSSES)), EmbeddingLoss],
        "robust_eps": [Interval(numbers.Real, 0, None, closed="left")],
        "attack_max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "attack_step_size": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "feature_range": [tuple, list, None],
    }

    fit_pairs = available_if(_not_offered)(ReluMetricLearner.fit_pairs)

    def __init__(
        self,
        hidden_layer_sizes=(64,),
        n_components=None,
        *,
        loss="triplet",
        robust_eps=0.05,
        attack_max_iter=5,
        attack_step_size=None,
        feature_range=None,
        alpha=0.0,
        eig_k=3,
        solver="adam",
        learning_rate=1e-3,
        batch_size=128,
        n_epochs=100,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            hidden_layer_sizes, n_components, loss=loss, alpha=alpha, eig_k=eig_k,
            solver=solver, learning_rate=learning_rate, batch_size=batch_size,
            n_epochs=n_epochs, random_state=random_state, verbose=verbose,
        )  # fmt: skip
        self.robust_eps = robust_eps
        self.attack_max_iter = attack_max_iter
        self.attack_step_size = attack_step_size
        self.feature_range = feature_range

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train on labelled points with the defence's adversarial points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points; any finite values (inside ``feature_range`` when it is set).
        y : array-like of shape (n_samples,)
            Class labels, at least two classes.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, ensure_min_samples=2, dtype="numeric")
        X = X.astype(np.float64, copy=False)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y must contain at least two classes to mine triplets; got only "
                f"{classes.tolist()}."
            )
        box = check_feature_range(self.feature_range)
        box = check_in_box(X, box)
        scale = data_scale(X)
        step = self.attack_step_size
        if step is None:
            step = 2.5 * self.robust_eps / self.attack_max_iter
        # The defence trains on X / scale, so budgets and the box are divided alike.
        attack = TrainingAttack(
            self.robust_eps / scale,
            step / scale,
            self.attack_max_iter,
            None if box is None else (box[0] / scale, box[1] / scale),
        )
        rng = check_random_state(self.random_state)
        layers = self._fit_defence(
            X / scale, y_idx.astype(np.int64), self._resolve_loss(), attack, rng
        )
        layers[0] = (layers[0][0] / scale, layers[0][1])
        self.layers_ = layers
        return self

    def __skrobust_target__(self):
        """The fitted model as a target of skrobust's attacks and certificates.

        Returns
        -------
        target : LinearTarget or ReluNetworkTarget
            A :class:`~skrobust.targets.LinearTarget` without hidden layers (so the
            linear-only certificates, such as the pairwise kNN certificate, apply), else the
            network; with ``threshold_``.
        """
        target = super().__skrobust_target__()
        if len(self.layers_) > 1:
            return target
        ((W, b),) = self.layers_
        return LinearTarget(W, b, self.threshold_)

    def _resolve_loss(self):
        if isinstance(self.loss, str):
            return _LOSSES[self.loss]()
        self.loss._validate_params()
        return self.loss

    def _initial_network(self, X, loss, rng):
        """He-initialised layers, the last one scaled so that the mean ``D`` over the
        training pairs is the loss's own scale (as :class:`~skrobust.ReluMetricLearner`)."""
        n_components = X.shape[1] if self.n_components is None else self.n_components
        sizes = [X.shape[1], *self._hidden_sizes(), n_components]
        network = ReluNetwork.initialize(sizes, random_state=rng)
        E = network.embed(X)
        # Mean D over all pairs: 2n/(n-1) times the total variance of the embedding.
        mean_distance = 2.0 * len(E) / (len(E) - 1) * E.var(axis=0).sum()
        if mean_distance > 0:
            network.layers[-1][0][...] *= np.sqrt(loss.distance_scale / mean_distance)
        return network

    def _train_mined(self, network, X, y_idx, loss, rng, anchors=None, perturb=None):
        """The one loop, on mined triplets; records the fitted state of the loss."""
        W_last = network.layers[-1][0]
        history = train(
            network, MinedTripletBatches(X, y_idx, network, loss.arity, anchors), loss,
            solver=self.solver, learning_rate=self.learning_rate, n_epochs=self.n_epochs,
            batch_size=self.batch_size, random_state=rng, perturb=perturb,
            penalty=self._penalty(*W_last.shape), verbose=self.verbose,
            name=type(self).__name__,
        )  # fmt: skip
        self.loss_ = loss
        self.threshold_ = loss.threshold
        self.loss_curve_ = history.loss_curve
        self.n_iter_ = history.n_epochs
        return [(W.copy(), b.copy()) for W, b in network.layers]

    def _fit_defence(self, X, y_idx, loss, attack, rng):
        """Train on ``X`` with the training ``attack`` (both in the training units); return
        the layers in those units."""
        raise NotImplementedError


_SHARED_PARAMETERS = """
    hidden_layer_sizes : tuple of int, default=(64,)
        Width of each hidden layer; ``()`` is a linear metric ``W x + b``.
    n_components : int or None, default=None
        Dimension of the embedding; ``None`` keeps ``n_features``.
    loss : {"triplet", "contrastive", "angular", "hinge"} or EmbeddingLoss, default="triplet"
        The batch loss on the mined triplets (:mod:`skrobust.losses`; a string takes its
        default parameters): ``"triplet"`` (margin 1 on ``D``), ``"contrastive"``
        (margin 1 on ``sqrt(D)``, on the triplet's two pairs), ``"angular"`` (45
        degrees), ``"hinge"`` (the paper's eq. 20, ``gamma=2``, on the two pairs).
    robust_eps : float, default=0.05
        L-infinity budget of the training attack, in the units of ``X`` (suited to
        features in ``[0, 1]``; tune it, with ``GridSearchCV``). 0 trains without attack.
    attack_max_iter : int, default=5
        PGD steps of the training attack.
    attack_step_size : float or None, default=None
        Signed-gradient step of the training attack, in the units of ``X``; ``None``:
        ``2.5 robust_eps / attack_max_iter``.
    feature_range : tuple (lo, hi) or None, default=None
        The box the training attack keeps points in (``X`` must lie in it); ``None`` for
        none.
    alpha : float or array-like of shape (eig_k,), default=0.0
        The eigenvalue defence on the last layer (eq. 21), as in
        :class:`~skrobust.ReluMetricLearner`; 0: none.
    eig_k : int, default=3
        Number of top eigenvalues ``alpha`` weighs.
    solver : {"adam", "sgd"}, default="adam"
        Adam, or SGD with momentum 0.9.
    learning_rate : float, default=1e-3
        Step size of the optimiser.
    batch_size : int, default=128
        Points per mini-batch (one triplet per point with a positive in the batch).
    n_epochs : int, default=100
        Passes over the training data.
    random_state : int, RandomState instance or None, default=None
        One generator for the initial weights, the batches, the drawn positives (and the
        starting embedding of :class:`AdversarialHeadLearner`): same seed, same model.
    verbose : int, default=0
        Print the mean objective every tenth of the epochs when ``> 0``.
"""

_SHARED_ATTRIBUTES = """
    layers_ : list of (ndarray, ndarray)
        ``(W_l, b_l)`` of each layer, in the caller's units. ``transform`` is the
        embedding; ``skrobust.targets.as_target`` reads it for attacks and certificates.
    threshold_ : float or None
        The loss's threshold on ``D`` (``gamma`` of the hinge), or ``None``.
    loss_ : EmbeddingLoss
        The loss trained on.
    loss_curve_ : list of float
        Mean objective of each epoch, at the adversarial points the epoch trained on.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined only when ``X`` has feature names that are all strings.
"""


def _docstring(summary, parameters="", attributes="", examples=""):
    """A defence's docstring: its summary, the shared parameters and attributes, its own."""
    return (
        f"{summary}\n\n    Parameters\n    ----------{_SHARED_PARAMETERS}{parameters}"
        f"\n    Attributes\n    ----------{_SHARED_ATTRIBUTES}{attributes}"
        f"\n    See Also\n    --------\n"
        "    skrobust.retrieval.retrieval_scores : Recall@K and NMI, natural and attacked.\n"
        "    skrobust.ReluMetricLearner : The same network trained without attack.\n"
        f"\n    Examples\n    --------{examples}"
    )


class AdversarialHeadLearner(_AdversarialLearner):
    __doc__ = _docstring(
        """RML: a metric head trained on adversarial anchors generated once.

    Paket & Baytas (2024): (1) a starting embedding ``f`` is fitted without attack and
    frozen: for a linear metric (``hidden_layer_sizes=()``) the NT-ML baseline,
    ``RobustMetricLearner(n_components, alpha=0)``; for a network, the same architecture as
    ``ReluMetricLearner(hidden_layer_sizes, n_components, alpha=0)`` (eq. 20 hinge, the
    same optimiser settings). (2) Every training point gets an adversarial version, once,
    by PGD on the retrieval loss against ``f`` over the training set. (3) A linear head
    ``V`` (square, started at the identity) is trained on the embeddings
    ``(f(x_adv) anchor, f(x_p) positive, f(x_n) negative)``, negatives mined semi-hard
    under the current head. The model is ``V f``: ``V`` folds into ``f``'s last layer, so
    it is a linear metric or a network of the same architecture as ``f``.

    Its cost is one fit without attack, one attack of the training set and a cheap head
    (the head's batches cost an ``m x m`` product, not a pass through ``f``): RML's claim,
    against adversarial training's attack on every batch through the whole model.""",
        attributes="",
        examples="""
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import AdversarialHeadLearner
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> rml = AdversarialHeadLearner((), robust_eps=0.05, n_epochs=20, random_state=0)
    >>> pipe = make_pipeline(rml, KNeighborsClassifier(3)).fit(X, y)
    >>> bool(pipe.score(X, y) > 0.9)
    True
""",
    )

    def _fit_defence(self, X, y_idx, loss, attack, rng):
        eps, step, max_iter, box = attack
        start = self._starting_layers(X, y_idx, rng)
        target = ReluNetworkTarget(start)
        H = target.embed(X)
        H_adv = H
        if eps > 0:
            everyone = np.arange(len(X))
            # A step compares every point with every other: n^2 m multiply-adds.
            with single_threaded(len(X) ** 2 * H.shape[1] < SINGLE_THREAD_WORK):
                X_adv = retrieval_pgd(
                    target, X, y_idx, H, y_idx, everyone, eps, step, max_iter, box
                )
            H_adv = target.embed(X_adv)
        m = H.shape[1]
        head = ReluNetwork([(np.eye(m), np.zeros(m))], fit_bias=False)
        ((V, _),) = self._train_mined(head, H, y_idx, loss, rng, anchors=H_adv)
        *hidden, (W, b) = start
        return [*hidden, (V @ W, V @ b)]

    def _starting_layers(self, X, y_idx, rng):
        """The frozen starting embedding, fitted without attack (training units)."""
        hidden = self._hidden_sizes()
        if not hidden:
            ntml = RobustMetricLearner(self.n_components, alpha=0.0).fit(X, y_idx)
            W = ntml.components_
            return [(W, np.zeros(W.shape[0]))]
        start = ReluMetricLearner(
            hidden, self.n_components, alpha=0.0, solver=self.solver,
            learning_rate=self.learning_rate, batch_size=self.batch_size,
            n_epochs=self.n_epochs, random_state=rng,
        ).fit(X, y_idx)  # fmt: skip
        return start.layers_


class AdversarialAnchorLearner(_AdversarialLearner):
    __doc__ = _docstring(
        """TLA: triplet loss on adversarial anchors regenerated during training.

    Mao et al. (2019): for every mini-batch, each point is attacked as an anchor (PGD on the
    retrieval loss against the current model, the batch as gallery), and the model is
    trained on (adversarial anchor, natural positive, natural negative), the negative mined
    semi-hard **for the adversarial anchor** inside the batch. With ``robust_eps=0`` it is
    plain triplet training with semi-hard negatives. TLA's own attack targets a
    classifier's cross-entropy, which a metric learner has not; the retrieval loss is its
    metric counterpart (push the nearest positive away, pull the nearest negative in).""",
        examples="""
    >>> from skrobust import AdversarialAnchorLearner
    >>> from skrobust.datasets import load_wine
    >>> from skrobust.retrieval import retrieval_scores
    >>> X, y = load_wine()
    >>> tla = AdversarialAnchorLearner((16,), 8, n_epochs=20, random_state=0).fit(X, y)
    >>> tla.transform(X).shape
    (178, 8)
    >>> bool(retrieval_scores(tla, X, y, k=1, nmi=False)["recall@1"] > 0.9)
    True
""",
    )

    def _fit_defence(self, X, y_idx, loss, attack, rng):
        network = self._initial_network(X, loss, rng)
        anchors = anchor_pgd(*attack) if attack.eps > 0 else None
        return self._train_mined(network, X, y_idx, loss, rng, anchors=anchors)


class AdversarialBatchLearner(_AdversarialLearner):
    __doc__ = _docstring(
        """Adversarial metric training: PGD on the mini-batch loss, on the chosen roles.

    A metric loss depends on the whole mini-batch, so which of its points to perturb is a
    choice (the adversarial deep metric learning seed): here the triplets are mined on the
    natural batch and held fixed, PGD on that same batch loss moves the points of the roles
    ``perturbed`` names (each triplet has its own rows, so a point perturbed as an anchor
    is not perturbed as another triplet's negative), and the model steps on the perturbed
    batch: the min-max of Madry et al. over the batch loss.""",
        parameters="""    perturbed : {"all", "anchor", "positive", "negative"}, default="all"
        Which roles of the mined triplets the training attack moves.
""",
        examples="""
    >>> from skrobust import AdversarialBatchLearner
    >>> from skrobust.datasets import load_wine
    >>> from skrobust.retrieval import retrieval_scores
    >>> X, y = load_wine()
    >>> amt = AdversarialBatchLearner((), perturbed="anchor", n_epochs=20, random_state=0)
    >>> scores = retrieval_scores(amt.fit(X, y), X, y, k=1, nmi=False)
    >>> bool(scores["recall@1"] > 0.9)
    True
""",
    )

    _parameter_constraints = {
        **_AdversarialLearner._parameter_constraints,
        "perturbed": [StrOptions({"all", *ROLES})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(64,),
        n_components=None,
        *,
        loss="triplet",
        perturbed="all",
        robust_eps=0.05,
        attack_max_iter=5,
        attack_step_size=None,
        feature_range=None,
        alpha=0.0,
        eig_k=3,
        solver="adam",
        learning_rate=1e-3,
        batch_size=128,
        n_epochs=100,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            hidden_layer_sizes, n_components, loss=loss, robust_eps=robust_eps,
            attack_max_iter=attack_max_iter, attack_step_size=attack_step_size,
            feature_range=feature_range, alpha=alpha, eig_k=eig_k, solver=solver,
            learning_rate=learning_rate, batch_size=batch_size, n_epochs=n_epochs,
            random_state=random_state, verbose=verbose,
        )  # fmt: skip
        self.perturbed = perturbed

    def _fit_defence(self, X, y_idx, loss, attack, rng):
        network = self._initial_network(X, loss, rng)
        roles = ROLES if self.perturbed == "all" else (self.perturbed,)
        perturb = role_pgd(roles, *attack) if attack.eps > 0 else None
        return self._train_mined(network, X, y_idx, loss, rng, perturb=perturb)
