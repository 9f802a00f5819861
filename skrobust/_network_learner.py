"""ReluMetricLearner: a ReLU-network metric (eq. 2) trained by mini-batch descent."""

import numbers

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._embedding_losses import ContrastiveLoss, EmbeddingLoss, PairHingeLoss, TripletLoss
from ._learner import data_scale, eigenvalue_weights
from ._network import ReluNetwork, ReluNetworkTarget, relu_forward
from ._pairs import PairDistanceMixin
from ._training import PairBatches, PointBatches, TripletBatches, eigenvalue_penalty, train
from ._validation import check_labelled_pairs, check_labelled_points

__all__ = ["ReluMetricLearner"]

_LOSSES = {"hinge": PairHingeLoss, "contrastive": ContrastiveLoss, "triplet": TripletLoss}


class ReluMetricLearner(
    PairDistanceMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """A ReLU-network metric (the deep metric models of eq. 2), learned by mini-batch descent.

    The embedding is ``f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L`` and the squared
    distance ``D(x, x') = ||f(x) - f(x')||^2``. The network is trained on one of three
    losses over mini-batches:

    - ``"hinge"``: the paper's eq. (20), ``max(0, 1 + s (D - gamma))`` over every pair of
      points of a batch (``s = +1`` same class, ``-1`` otherwise); ``gamma`` is then the
      model's threshold on ``D`` (:class:`~skrobust.losses.PairHingeLoss`);
    - ``"contrastive"``: ``D`` for same-class pairs, ``max(0, margin - sqrt(D))^2`` for the
      others, over every pair of a batch (:class:`~skrobust.losses.ContrastiveLoss`);
    - ``"triplet"``: ``max(0, D(a, p) - D(a, n) + margin)`` over random triplets drawn
      anew each epoch, each point an anchor once (:class:`~skrobust.losses.TripletLoss`).

    ``alpha > 0`` adds the paper's eigenvalue defence (eq. 21) on the last layer: the top
    ``eig_k`` eigenvalues of ``W_L^T W_L``. With no hidden layer the network is linear and
    this is the paper's defence itself; with hidden layers it shrinks the last layer's
    spectral norm, one factor of the network's Lipschitz bound (it does not constrain the
    hidden layers).

    Like :class:`~skrobust.RobustMetricLearner` the learner is invariant under rescaling of
    the data: it trains on ``X / s`` (``s`` the range of the widest feature, 1 on data in
    ``[0, 1]``) and composes ``1 / s`` into ``W_1``. Before training, the last layer is
    scaled so that the mean ``D`` over the training pairs equals the loss's own scale
    (``gamma``, ``margin^2`` or ``margin``), so the defaults suit data of any dimension. The
    returned network is the last iterate.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(64,)
        Width of each hidden layer (scikit-learn's MLP name); ``()`` is a linear metric
        ``W x + b``.
    n_components : int or None, default=None
        Dimension of the embedding; ``None`` keeps ``n_features``.
    loss : {"hinge", "contrastive", "triplet"} or EmbeddingLoss, default="hinge"
        The training loss; a string takes its default parameters (``gamma=2``,
        ``margin=1``); pass ``PairHingeLoss(gamma=...)``, ``ContrastiveLoss(margin=...)``
        or ``TripletLoss(margin=...)`` to set them (``GridSearchCV`` reaches them as
        ``loss__gamma``, ``loss__margin``).
    alpha : float or array-like of shape (eig_k,), default=0.0
        Strength of the eigenvalue defence on the last layer, ``>= 0``: a float spreads as
        ``alpha / eig_k`` on each eigenvalue (the paper's ``alpha_j = 1/k`` at 1); an array
        gives one weight per eigenvalue, largest first. 0: no defence.
    eig_k : int, default=3
        Number of top eigenvalues penalised (all of them when ``W_L`` has fewer).
    solver : {"adam", "sgd"}, default="adam"
        Adam, or SGD with momentum 0.9.
    learning_rate : float, default=1e-3
        Step size.
    batch_size : int, default=128
        Points per batch (every pair of them enters a pair loss) or triplets per batch.
    n_epochs : int, default=100
        Passes over the training data.
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights, then the batches and triplets, from one generator.
    verbose : int, default=0
        Print the mean objective every tenth of the epochs when ``> 0``.

    Attributes
    ----------
    layers_ : list of (ndarray, ndarray)
        ``(W_l, b_l)`` of each layer, in the caller's units (``1 / s`` composed into
        ``W_1``).
    threshold_ : float or None
        The loss's threshold on the squared distance (``gamma`` of the hinge), or ``None``.
    loss_ : EmbeddingLoss
        The loss trained on.
    loss_curve_ : list of float
        Mean objective (loss plus penalty) of each epoch.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined only when ``X`` has feature names that are all strings.

    See Also
    --------
    skrobust.RobustMetricLearner : The linear metric of the paper, trained on all pairs.
    skrobust.certificates.perturbed_distance_bounds : Interval and Lipschitz bounds on
        the network's distances under attack.

    References
    ----------
    .. [1] M. Huai, T. Zheng, C. Miao, L. Yao, A. Zhang. "On the Robustness of Metric
       Learning: An Adversarial Perspective." ACM TKDD 16(5), 2022.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import ReluMetricLearner
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> learner = ReluMetricLearner(hidden_layer_sizes=(32,), n_components=8,
    ...                             n_epochs=30, random_state=0)
    >>> pipe = make_pipeline(learner, KNeighborsClassifier(3)).fit(X, y)
    >>> bool(pipe.score(X, y) > 0.9), pipe[0].transform(X).shape
    (True, (178, 8))
    """

    _parameter_constraints = {
        "hidden_layer_sizes": [tuple, list],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "loss": [StrOptions(set(_LOSSES)), EmbeddingLoss],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "eig_k": [Interval(numbers.Integral, 1, None, closed="left")],
        "solver": [StrOptions({"adam", "sgd"})],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(64,),
        n_components=None,
        *,
        loss="hinge",
        alpha=0.0,
        eig_k=3,
        solver="adam",
        learning_rate=1e-3,
        batch_size=128,
        n_epochs=100,
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.loss = loss
        self.alpha = alpha
        self.eig_k = eig_k
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network on labelled points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points; any finite values.
        y : array-like of shape (n_samples,)
            Class labels, at least two classes. Pairs of the same class are similar.

        Returns
        -------
        self : ReluMetricLearner
        """
        X, y_idx = check_labelled_points(self, X, y)
        scale = data_scale(X)
        X = X / scale
        loss = self._resolve_loss()
        if loss.arity == 3:
            sampler = TripletBatches(X, y_idx)
        else:
            sampler = PointBatches(X, y_idx)
        return self._train(X, scale, loss, sampler)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_pairs(self, pairs, y):
        """Train the network on labelled pairs (metric-learn's weakly supervised form).

        Only pair losses (``"hinge"``, ``"contrastive"``) train on pairs.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Each row holds the two points of a pair.
        y : array-like of shape (n_pairs,)
            ``+1`` for a similar pair, ``-1`` for a dissimilar one. Both must occur.

        Returns
        -------
        self : ReluMetricLearner

        Examples
        --------
        >>> from skrobust import ReluMetricLearner
        >>> from skrobust.datasets import load_wine, make_pairs
        >>> X, y = load_wine()
        >>> pairs, labels, _ = make_pairs(X, y, 200, random_state=0)
        >>> learner = ReluMetricLearner((16,), 4, batch_size=32, n_epochs=40, random_state=0)
        >>> D = learner.fit_pairs(pairs, labels).pair_distance(pairs) ** 2
        >>> bool(((D <= learner.threshold_) == (labels == 1)).mean() > 0.8)
        True
        """
        loss = self._resolve_loss()
        if loss.arity != 2:
            raise ValueError(
                f"fit_pairs trains a pair loss; loss={self.loss!r} needs triplets. Use "
                "loss='hinge' or 'contrastive', or fit(X, y) with class labels."
            )
        pairs, labels = check_labelled_pairs(self, pairs, y)
        signs = labels.astype(np.float64)
        points = pairs.reshape(-1, pairs.shape[2])
        scale = data_scale(points, name="pairs")
        return self._train(points / scale, scale, loss, PairBatches(pairs / scale, signs))

    def _resolve_loss(self):
        if isinstance(self.loss, str):
            return _LOSSES[self.loss]()
        loss = self.loss
        loss._validate_params()
        return loss

    def _train(self, X, scale, loss, sampler):
        """Initialise on ``X`` (already divided by ``scale``), train, and store the layers in
        the caller's units."""
        n_features = X.shape[1]
        n_components = n_features if self.n_components is None else self.n_components
        sizes = [n_features, *self._hidden_sizes(), n_components]
        rng = check_random_state(self.random_state)
        network = ReluNetwork.initialize(sizes, random_state=rng)
        # Mean D over all pairs of X: 2n/(n-1) times the total variance of the embedding.
        E = network.embed(X)
        mean_distance = 2.0 * len(E) / (len(E) - 1) * E.var(axis=0).sum()
        if mean_distance > 0:
            network.layers[-1][0][...] *= np.sqrt(loss.distance_scale / mean_distance)
        penalty = self._penalty(n_components, sizes[-2])
        history = train(
            network, sampler, loss, solver=self.solver, learning_rate=self.learning_rate,
            n_epochs=self.n_epochs, batch_size=self.batch_size, random_state=rng,
            penalty=penalty, verbose=self.verbose, name=type(self).__name__,
        )  # fmt: skip
        layers = [(W.copy(), b.copy()) for W, b in network.layers]
        layers[0] = (layers[0][0] / scale, layers[0][1])
        self.layers_ = layers
        self.loss_ = loss
        self.threshold_ = loss.threshold
        self.loss_curve_ = history.loss_curve
        self.n_iter_ = history.n_epochs
        return self

    def _hidden_sizes(self):
        sizes = list(self.hidden_layer_sizes)
        if not all(isinstance(h, numbers.Integral) and h >= 1 for h in sizes):
            raise ValueError(
                f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}."
            )
        return [int(h) for h in sizes]

    def _penalty(self, n_components, n_last_inputs):
        """The eigenvalue defence on the last layer, or ``None``."""
        weights = eigenvalue_weights(self.alpha, self.eig_k, min(n_components, n_last_inputs))
        return None if weights is None else eigenvalue_penalty(weights)

    def transform(self, X):
        """Embed points: ``f(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to embed.

        Returns
        -------
        X_embedded : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype="numeric")
        return relu_forward(self.layers_, X.astype(np.float64, copy=False))

    def __skrobust_target__(self):
        """The fitted network as a target of skrobust's attacks and certificates.

        Returns
        -------
        target : ReluNetworkTarget
            Its layers and its threshold on ``D`` (``threshold_``).
        """
        check_is_fitted(self)
        return ReluNetworkTarget(self.layers_, self.threshold_)

    @property
    def _n_features_out(self):
        """Columns of :meth:`transform` (``get_feature_names_out`` names them)."""
        return self.layers_[-1][0].shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
