"""RobustMetricLearner: pairwise hinge metric learning with the paper's eigenvalue defence."""

import numbers
import time
import warnings
from functools import partial

import numpy as np
from scipy.linalg import eigh
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._loss_engine import all_pairs_loss_grad, loss_threads, pair_list_loss_grad
from ._margin_loss import MinedMarginObjective
from ._pairs import PairDistanceMixin
from ._sampled_loss import AUTO_FULL_MAX_SAMPLES, SAMPLE_SIZE, sampled_objective
from ._target import LinearTarget
from ._validation import check_labelled_pairs, check_labelled_points

# Certified margin training (certificate="pairwise"): target neighbours and rivals per
# point, and how often they are re-mined. Three targets are the vote of a 3-NN (the paper's
# m = 3, table 5); ten rivals cover the other-class points within reach of it; mining costs
# one N x N distance matrix, so every ten steps keeps it a small part of a step's cost.
_MARGIN_TARGETS = 3
_MARGIN_RIVALS = 10
_MARGIN_REMINE_EVERY = 10
# Steps over which the objective must stay within tol to count as converged.
_N_ITER_CONVERGED = 10
# ConvergenceWarning when a fit stops at max_iter with its last objective more than this
# fraction above the best one (oscillating or diverging), or having fallen by more than this
# fraction over its last tenth of steps (still descending fast).
_CONVERGENCE_RTOL = 0.01


def eigenvalue_weights(alpha, eig_k, n_eigenvalues):
    """The weights of the eigenvalue defence (eq. 21), largest eigenvalue first, or ``None``
    when they are all 0: a float ``alpha`` spreads as ``alpha / eig_k`` on each of the top
    ``eig_k`` eigenvalues, an array gives one weight each; weights past the matrix's
    ``n_eigenvalues`` go unused."""
    if np.ndim(alpha) == 0:
        weights = np.full(eig_k, float(alpha) / eig_k)
    else:
        weights = np.asarray(alpha, dtype=np.float64)
        if weights.shape != (eig_k,):
            raise ValueError(
                f"alpha must be a float or an array of eig_k={eig_k} weights (one per "
                f"eigenvalue, largest first), got shape {weights.shape}."
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"alpha weights must be finite and >= 0, got {weights}.")
    weights = weights[:n_eigenvalues]
    return None if not np.any(weights) else weights


def data_scale(X, name="X"):
    """The learner's global scale of ``X``: the range of its widest feature.

    It equals 1 on data min-max scaled to ``[0, 1]`` (every bundled loader), and scales with
    the data (``X -> c X`` gives ``c`` times the scale), so a fit on ``X / scale`` makes the
    learner invariant under rescaling. Raises a ``ValueError`` when it is 0 (every sample
    equal) or not finite.
    """
    peak = float(np.max(np.abs(X)))
    # Ranges of X / peak cannot overflow, whatever the magnitude of X.
    width = float(np.max(np.ptp(X / peak, axis=0))) if peak > 0 else 0.0
    if not (width > 0 and np.isfinite(peak * width) and peak * width > 0):
        raise ValueError(
            f"{name} is degenerate: every sample is the same point (no feature varies), so "
            "no metric can be learned from it."
            if width == 0
            else f"{name} spans a range (x{peak:.3g}) too large or too small for float64."
        )
    return peak * width


class RobustMetricLearner(
    PairDistanceMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Pairwise hinge metric learning with the paper's eigenvalue defence (eq. 20-21).

    Learns a linear map ``W`` (``components_``) so that the squared distance
    ``D(x, x') = ||W (x - x')||^2`` is at most ``gamma - 1`` for same-class pairs and at least
    ``gamma + 1`` for pairs of different classes (the hinge loss ``L1`` of eq. 20 over all
    pairs of the training set, any number of classes). The defence adds ``alpha`` times a
    robustness regulariser that shrinks the attacker's room (eq. 21):

    - ``regularization="eig"``: the top ``eig_k`` eigenvalues of ``M = W^T W`` — the paper's
      defence;
    - ``"spectral"``: ``||M||_2`` (the Spe-ML baseline of table 3);
    - ``"frobenius"``: ``||M||_F`` (the Fro-ML baseline).

    ``alpha=0`` is the undefended NT-ML baseline.

    The learner is invariant under rescaling of the data: it learns on ``X / s``, with ``s``
    the range of the widest feature of the training data (``s = 1`` on data min-max scaled
    to ``[0, 1]``, the paper's setting, where ``alpha``, ``gamma`` and ``learning_rate`` keep
    their documented meaning), and returns ``W / s``. Fitting ``c X`` with ``c robust_eps``
    gives the same model up to rounding (``components_`` divided by ``c``; the same
    squared distances, kNN and certificates in the scaled space). The returned ``W`` is the
    best iterate (lowest objective), not the last.

    ``robust_eps > 0`` is skrobust's own defence, certified training: the hinge is applied to
    the worst case the triangle bound certifies when one point of a pair moves by
    ``||delta||_inf <= robust_eps`` (``sqrt(D) + robust_eps K`` for a same-class pair,
    ``sqrt(D) - robust_eps K`` for the others, with ``K``, the sum of the column norms of
    ``W``, bounding ``||W||_{inf->2}``). It trains the certificate itself, and so the margin
    a kNN needs relative to ``K``, which no eigenvalue penalty alone can (scaling ``W`` changes
    neither a kNN nor its robustness). It combines with any regulariser.

    Parameters
    ----------
    n_components : int or None, default=None
        Rows of ``W``; ``None`` keeps ``n_features`` (the paper's square ``W``).
    gamma : float, default=2.0
        Threshold of eq. (20) on the **squared** distance ``D``; the hinge margin is 1 on
        either side. The initial ``W`` is scaled so that the mean ``D`` over the training
        pairs equals ``gamma``, so the default suits data of any dimension (in ``[0, 1]^d``
        or standardised): ``gamma=2`` asks same-class pairs to end at half the initial mean
        distance and other pairs at one and a half times it. It is also the threshold the
        attack and the certificates use for this model.
    regularization : {"eig", "spectral", "frobenius"}, default="eig"
        Which robustness regulariser ``alpha`` weighs.
    eig_k : int, default=3
        Number of top eigenvalues of ``M`` penalised by ``"eig"``. When ``M`` has fewer
        (``n_features < eig_k``), all its eigenvalues are used.
    alpha : float or array-like of shape (eig_k,), default=1.0
        Strength of the regulariser, ``>= 0``. For ``"eig"`` a float is spread as
        ``alpha / eig_k`` on each eigenvalue (so ``alpha=1`` is the paper's
        ``alpha_j = 1/k``); an array gives one weight per eigenvalue, **from the largest
        eigenvalue down** (weights past the number of eigenvalues ``M`` has go unused).
        ``"spectral"`` and ``"frobenius"`` take a float (the paper's ``b = 0.2``).
    robust_eps : float, default=0.0
        Radius, in the L-infinity norm of the input space (in the units of ``X``: scale it
        with the data), that certified training defends (see above); 0 trains the paper's
        loss.
    certificate : {"triangle", "pairwise"}, default="triangle"
        Which certificate :meth:`fit` trains. ``"triangle"``: the hinge of eq. (20) over all
        pairs, on the triangle bound's worst case (above); cheap per pair, and the bound
        the pair classifier certifies with. ``"pairwise"``: the kNN vote's own
        certificate: over mined triples ``(z, a, b)`` of a point, one of its 3 nearest
        own-class points and one of its 10 nearest other-class points under the current
        metric (re-mined every 10 steps), it hinges the certified margin
        ``D(z, b) - D(z, a) - 2 robust_eps ||M (a - b)||_1``, with LMNN's pull of the
        targets to fix the scale (see ``skrobust._margin_loss``). Use it for a kNN
        certified by ``skrobust.certificates`` with ``method="pairwise"``; with
        ``robust_eps=0`` it is an LMNN-style learner. :meth:`fit_pairs` always uses the
        triangle form (a list of pairs has no neighbourhoods to mine).
    objective : {"auto", "full", "sampled"}, default="auto"
        What each optimisation step evaluates. ``"full"``: the loss over the whole training
        set (all ``N (N - 1) / 2`` pairs; with ``certificate="pairwise"``, triples mined
        over all points), the paper's objective, at ``O(N^2)`` per step. ``"sampled"``: the
        same loss on a random subset of 2,048 training points, a new one at every step (an
        unbiased estimate of the all-pairs loss; with ``certificate="pairwise"``, targets
        and rivals mined within the subset, kept for 10 steps), at a cost per step that does
        not grow with ``N``; the subsets are drawn from ``random_state``, the returned ``W``
        is the last iterate (the best of the last subset), and on at most 2,048 points it
        is the full loss. ``"auto"``: ``"full"`` up to 10,000 training points (a few
        minutes at most), ``"sampled"`` above. See ``skrobust._sampled_loss``.
    learning_rate : float, default=0.01
        Step size of the Adam optimiser (table 5).
    max_iter : int, default=500
        Number of optimisation steps at most (table 5).
    tol : float or None, default=1e-6
        Stop once the objective has stayed within a band of width
        ``tol * max(1, |objective|)`` for 10 consecutive steps (converged; an early rise or
        fall never stops it); ``None`` runs all ``max_iter`` steps. A fit that stops at
        ``max_iter`` warns (``ConvergenceWarning``) when its last objective is more than 1%
        above its best, or fell by more than 1% over its last tenth of steps.
    init : {"auto", "identity", "pca", "random"} or ndarray, default="auto"
        Initial ``W``: ``"auto"`` is ``"identity"`` for a square ``W`` and ``"pca"``
        otherwise; ``"random"`` draws a Gaussian matrix from ``random_state``. Named inits
        are scaled so the mean training ``D`` equals ``gamma``; an array of shape
        ``(n_components, n_features)`` is used as given (in the units of ``X``).
    random_state : int, RandomState instance or None, default=None
        Seeds ``init="random"`` and the subsets of the sampled objective. The full
        objective's optimisation is deterministic.
    verbose : int, default=0
        Print the objective every 50 steps when ``> 0``.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned ``W``: the iterate with the lowest objective.
    n_iter_ : int
        Optimisation steps run.
    loss_curve_ : list of float
        The objective (``L1`` plus the regulariser) at each step; ``components_`` is the
        iterate of its minimum.
    best_iter_ : int
        The step (from 1) whose iterate is ``components_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined only when ``X`` has feature names that are all strings.

    See Also
    --------
    skrobust.AckMetricAttack : The attack this defence is measured against.
    sklearn.neighbors.NeighborhoodComponentsAnalysis : Another linear metric learner.

    Notes
    -----
    With the full objective, :meth:`fit` costs ``O(N^2 m)`` per step over all
    ``N (N - 1) / 2`` pairs (the sampled objective: the same on a subset) and never holds
    the ``N x N`` pair matrix: it is built in tiles, each turned into hinge slopes and used
    while it is in cache. Once ``N^2 m`` reaches ``5e7`` the tiles run on as many threads as
    BLAS may use (1, 2 or 4; limit them with ``threadpoolctl.threadpool_limits``), with BLAS
    on one thread inside each; a fit started off the main thread (joblib's threading
    backend) runs on one. The tiles are summed in a fixed order and BLAS runs on one thread
    throughout, so the fitted ``W`` is the same, to the last bit, on any number of threads.

    References
    ----------
    .. [1] M. Huai, T. Zheng, C. Miao, L. Yao, A. Zhang. "On the Robustness of Metric
       Learning: An Adversarial Perspective." ACM TKDD 16(5), 2022.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(eig_k=3, alpha=1.0), KNeighborsClassifier(3))
    >>> bool(pipe.fit(X, y).score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "regularization": [StrOptions({"eig", "spectral", "frobenius"})],
        "eig_k": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "robust_eps": [Interval(numbers.Real, 0, None, closed="left")],
        "certificate": [StrOptions({"triangle", "pairwise"})],
        "objective": [StrOptions({"auto", "full", "sampled"})],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "init": [StrOptions({"auto", "identity", "pca", "random"}), np.ndarray],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        gamma=2.0,
        regularization="eig",
        eig_k=3,
        alpha=1.0,
        robust_eps=0.0,
        certificate="triangle",
        objective="auto",
        learning_rate=0.01,
        max_iter=500,
        tol=1e-6,
        init="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.gamma = gamma
        self.regularization = regularization
        self.eig_k = eig_k
        self.alpha = alpha
        self.robust_eps = robust_eps
        self.certificate = certificate
        self.objective = objective
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn ``W`` from labelled points, on all pairs ``i < j`` of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points; any finite values.
        y : array-like of shape (n_samples,)
            Class labels, at least two classes. Pairs of the same class are similar.

        Returns
        -------
        self : RobustMetricLearner
        """
        X, y_idx = check_labelled_points(self, X, y)
        n = X.shape[0]
        scale = data_scale(X)
        X = X / scale
        # Mean squared distance over all pairs i < j: 2n/(n-1) times the total variance.
        centred = X - X.mean(axis=0)

        def mean_distance(W):
            Zc = centred @ W.T
            return 2.0 * np.einsum("ij,ij->", Zc, Zc) / (n - 1)

        eps = self.robust_eps / scale
        if self.certificate == "pairwise":
            objective_on = partial(
                MinedMarginObjective, eps=eps, gamma=self.gamma, n_targets=_MARGIN_TARGETS,
                n_rivals=_MARGIN_RIVALS, remine_every=_MARGIN_REMINE_EVERY,
            )  # fmt: skip
        else:

            def objective_on(X, y_idx):
                return partial(all_pairs_loss_grad, X, y_idx, gamma=self.gamma, eps=eps)

        if self.objective == "full" or (self.objective == "auto" and n <= AUTO_FULL_MAX_SAMPLES):
            loss_grad = objective_on(X, y_idx)
        else:
            loss_grad = sampled_objective(X, y_idx, objective_on, SAMPLE_SIZE, self.random_state)
        lanes = self.certificate != "pairwise"
        return self._optimise(X, scale, mean_distance, loss_grad, lanes=lanes)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_pairs(self, pairs, y):
        """Learn ``W`` from a list of labelled pairs (metric-learn's weakly supervised form).

        The same loss core as :meth:`fit`, over the given pairs only.

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Each row holds the two points of a pair.
        y : array-like of shape (n_pairs,)
            ``+1`` for a similar pair, ``-1`` for a dissimilar one. Both must occur.

        Returns
        -------
        self : RobustMetricLearner

        Examples
        --------
        >>> from skrobust import RobustMetricLearner
        >>> from skrobust.datasets import load_wine, make_pairs
        >>> X, y = load_wine()
        >>> pairs, labels, _ = make_pairs(X, y, 200, random_state=0)
        >>> learner = RobustMetricLearner(alpha=0.0, robust_eps=0.05, random_state=0)
        >>> learner = learner.fit_pairs(pairs, labels)
        >>> D = learner.pair_distance(pairs) ** 2
        >>> bool(((D <= learner.gamma) == (labels == 1)).mean() > 0.8)
        True
        """
        pairs, labels = check_labelled_pairs(self, pairs, y)
        X = pairs.reshape(-1, pairs.shape[2])
        scale = data_scale(X, name="pairs")
        X = X / scale
        U = (pairs[:, 0, :] - pairs[:, 1, :]) / scale
        sign = labels.astype(np.float64)
        eps = self.robust_eps / scale

        def mean_distance(W):
            V = U @ W.T
            return np.einsum("ij,ij->", V, V) / len(U)

        return self._optimise(
            X, scale, mean_distance, lambda W: pair_list_loss_grad(U, sign, W, self.gamma, eps)
        )

    def transform(self, X):
        """Embed points: ``X @ components_.T``.

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
        return X.astype(np.float64, copy=False) @ self.components_.T

    def get_mahalanobis_matrix(self):
        """The Mahalanobis matrix ``M = W^T W``.

        Returns
        -------
        M : ndarray of shape (n_features, n_features)
            Symmetric positive semi-definite; ``D(x, x') = (x - x')^T M (x - x')``.
        """
        check_is_fitted(self)
        return self.components_.T @ self.components_

    def __skrobust_target__(self):
        """The fitted metric for skrobust's attacks and certificates (the model protocol).

        Returns
        -------
        target : LinearTarget
            ``components_``, with ``gamma`` as the threshold on the squared distance.
        """
        check_is_fitted(self)
        return LinearTarget(self.components_, threshold=float(self.gamma))

    @property
    def _n_features_out(self):
        """Columns of :meth:`transform` (``get_feature_names_out`` names them)."""
        return self.components_.shape[0]

    # -- optimisation -------------------------------------------------------------------

    def _optimise(self, X, scale, mean_distance, loss_grad, lanes=False):
        """Initialise and descend on ``X`` divided by ``scale`` (see :func:`data_scale`);
        ``components_`` is the best ``W`` divided by ``scale``, for the caller's units.
        ``lanes``: ``loss_grad`` takes ``map_lanes`` (the all-pairs loss), and its lanes run
        on as many threads as BLAS may use."""
        n_features = X.shape[1]
        n_components = n_features if self.n_components is None else self.n_components
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} must be at most n_features={n_features}."
            )
        weights = self._regularizer_weights(n_features)
        with loss_threads(len(X), n_components, lanes) as (map_lanes, n_threads):
            if self.verbose and lanes:
                print(f"[RobustMetricLearner] all-pairs loss on {n_threads} thread(s)")
            # Inside the limits: with lanes, BLAS runs on one thread throughout, so the
            # result is the same on any number of threads.
            W = self._initial_components(X, scale, n_components, mean_distance)
            if lanes:
                loss_grad = partial(loss_grad, map_lanes=map_lanes)
            W = self._descend(W, loss_grad, weights)
        self.components_ = W / scale
        self._warn_if_not_converged()
        return self

    def _descend(self, W, loss_grad, weights):
        """Adam (Kingma & Ba) on the objective L2 = L1 + regulariser (eq. 21); records
        ``loss_curve_``, ``n_iter_`` and ``best_iter_``, and returns the best iterate."""
        m = np.zeros_like(W)
        v = np.zeros_like(W)
        beta1, beta2, adam_eps = 0.9, 0.999, 1e-8
        self.loss_curve_ = []
        self._converged = False
        W_best, best = W, np.inf
        # Objectives are comparable only on the same training terms: a mined objective
        # (certificate="pairwise") starts a new comparison each time it re-mines.
        self._comparable_from = 0
        start = time.perf_counter()
        for it in range(1, self.max_iter + 1):
            loss, grad = self._objective(W, loss_grad, weights)
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"The objective became {loss} at step {it}: lower learning_rate."
                )
            self.loss_curve_.append(loss)
            # Seen through a partial (which binds the lanes' map and hides attributes).
            if getattr(getattr(loss_grad, "func", loss_grad), "mined_anew", False):
                best, self._comparable_from = np.inf, it - 1
            if loss < best:
                W_best, best, self.best_iter_ = W, loss, it
            if self.verbose and (it == 1 or it % 50 == 0):
                print(
                    f"[RobustMetricLearner] iter {it:4d}  objective {loss:.6f}  "
                    f"({time.perf_counter() - start:.2f} s)"
                )
            if self.tol is not None and it >= _N_ITER_CONVERGED:
                window = self.loss_curve_[-_N_ITER_CONVERGED:]
                if max(window) - min(window) <= self.tol * max(1.0, abs(loss)):
                    self._converged = True
                    break
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad * grad
            m_hat = m / (1 - beta1**it)
            v_hat = v / (1 - beta2**it)
            W = W - self.learning_rate * m_hat / (np.sqrt(v_hat) + adam_eps)
        self.n_iter_ = it
        return W_best

    def _warn_if_not_converged(self):
        """The ``ConvergenceWarning`` rule (see ``tol``)."""
        curve = self.loss_curve_[self._comparable_from :]
        if self._converged or len(curve) < 2:
            return
        best, last = min(curve), curve[-1]
        earlier = curve[-max(2, len(curve) // 10)]
        margin = _CONVERGENCE_RTOL * max(abs(best), 1e-12)
        if last - best > margin:
            reason = (
                f"its last objective {last:.6g} is {100 * (last - best) / abs(best):.1f}% "
                f"above its best {best:.6g} (step {self.best_iter_}, the one returned)"
            )
        elif earlier - last > margin:
            reason = (
                f"its objective fell from {earlier:.6g} to {last:.6g} over its last "
                f"{len(curve) // 10 or 1} steps"
            )
        else:
            return
        warnings.warn(
            f"RobustMetricLearner stopped at max_iter={self.max_iter} before converging: "
            f"{reason}. Raise max_iter or lower learning_rate.",
            ConvergenceWarning,
            stacklevel=5,
        )

    def _objective(self, W, loss_grad, weights):
        """``L1 + regulariser`` and its gradient in ``W``."""
        loss, grad = loss_grad(W)
        if weights is None:
            return loss, grad
        M = W.T @ W
        if self.regularization == "frobenius":
            norm = np.linalg.norm(M)
            if norm > 0:
                grad = grad + weights * 2.0 * (W @ M) / norm
            return loss + weights * norm, grad
        # "eig" and "spectral": a weighted sum of the top eigenvalues of M, largest first.
        # d(lambda)/dW = 2 W u u^T for a unit eigenvector u.
        d, k = M.shape[0], len(weights)
        lam, U = eigh(M, subset_by_index=[d - k, d - 1])
        lam, U = lam[::-1], U[:, ::-1]
        grad = grad + 2.0 * ((W @ U) * weights) @ U.T
        return loss + float(weights @ lam), grad

    def _regularizer_weights(self, n_features):
        """Weights of the regulariser: None (NT-ML), a float, or one per eigenvalue."""
        alpha = self.alpha
        if self.regularization in ("spectral", "frobenius"):
            if np.ndim(alpha) != 0:
                raise ValueError(
                    f"alpha must be a float for regularization={self.regularization!r}, got "
                    f"an array of shape {np.shape(alpha)}."
                )
            alpha = float(alpha)
            if alpha == 0:
                return None
            return np.array([alpha]) if self.regularization == "spectral" else alpha
        return eigenvalue_weights(alpha, self.eig_k, n_features)

    def _initial_components(self, X, scale, n_components, mean_distance):
        n_features = X.shape[1]
        init = self.init
        if isinstance(init, np.ndarray):
            if init.shape != (n_components, n_features):
                raise ValueError(
                    f"init must have shape (n_components, n_features) = "
                    f"({n_components}, {n_features}), got {init.shape}."
                )
            if not np.all(np.isfinite(init)):
                raise ValueError("init contains NaN or infinite values.")
            # Given in the caller's units; X here is divided by scale.
            return np.array(init, dtype=np.float64) * scale
        if init == "auto":
            init = "identity" if n_components == n_features else "pca"
        if init == "identity":
            W = np.eye(n_components, n_features)
        elif init == "pca":
            n_pca = min(n_components, *X.shape)
            W = np.zeros((n_components, n_features))
            W[:n_pca] = PCA(n_components=n_pca).fit(X).components_
        else:
            rng = check_random_state(self.random_state)
            W = rng.standard_normal((n_components, n_features))
        scale = mean_distance(W)
        return W * np.sqrt(self.gamma / scale) if scale > 0 else W

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
