"""ReLU-network embeddings: forward pass, vector-Jacobian products, parameter gradients.

The network of eq. (2): ``f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L``, ReLU between
layers and none after the last. Layers are ``(W_l, b_l)`` with ``W_l`` of shape
``(h_l, h_{l-1})``, as ``components_`` of a linear metric: a linear metric is the network of
one layer with ``b = 0``, so one forward pass, one backward pass and one training loop serve
both.

Every pass is a chain of matrix products (BLAS) and elementwise masks: the input VJP of
eq. (10)-(11), ``J_f(x)^T g = W_1^T (m_1 * W_2^T (m_2 * ... W_L^T g))`` with ``m_l`` the
0/1 masks of the hidden units that are on, costs what the forward pass costs. numba does not
pay here: the products dominate, and the masks are one vectorised multiply each.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._target import MetricTarget

__all__ = ["CallableTarget", "ReluNetwork", "ReluNetworkTarget", "relu_forward", "relu_vjp"]


def relu_forward(layers, X, keep=False):
    """The embedding ``f(X)``, and with ``keep`` the input of every layer.

    Parameters
    ----------
    layers : sequence of (W, b)
        ``W`` of shape ``(h_l, h_{l-1})``, ``b`` of shape ``(h_l,)``.
    X : ndarray of shape (n, d)
        Points in the raw input space.
    keep : bool, default=False
        Also return the inputs of the layers (``X`` and the post-ReLU activations), what
        the backward passes need.

    Returns
    -------
    E : ndarray of shape (n, h_L)
    inputs : list of ndarray, only with ``keep``
        ``inputs[l]`` is the input of layer ``l`` (``inputs[0]`` is ``X``).
    """
    H = X
    inputs = []
    last = len(layers) - 1
    for index, (W, b) in enumerate(layers):
        if keep:
            inputs.append(H)
        H = H @ W.T
        H += b
        if index < last:
            np.maximum(H, 0.0, out=H)
    return (H, inputs) if keep else H


def _backward(layers, inputs, G, parameter_grads, input_grad):
    """Backpropagate ``G = dL/dE`` through the layers. Returns the input VJP ``dL/dX``
    (``None`` without ``input_grad``) and, with ``parameter_grads``, the list of
    ``(dL/dW_l, dL/db_l)`` of each layer, first layer first."""
    grads = []
    for index in range(len(layers) - 1, -1, -1):
        W, _ = layers[index]
        H = inputs[index]
        if parameter_grads:
            grads.append((G.T @ H, G.sum(axis=0)))
        if index == 0 and not input_grad:
            return None, grads[::-1]
        G = G @ W
        if index > 0:
            # The ReLU's derivative: 1 where the unit is on (its output positive), else 0.
            G *= H > 0
    return G, grads[::-1]


def relu_vjp(layers, X, G):
    """Vector-Jacobian products ``J_f(x_i)^T G_i`` of each point (eq. 10-11).

    Parameters
    ----------
    layers : sequence of (W, b)
    X : ndarray of shape (n, d)
        Points in the raw input space.
    G : ndarray of shape (n, h_L)
        Cotangents (gradients with respect to the embeddings), one row per point.

    Returns
    -------
    V : ndarray of shape (n, d)
        Row ``i`` is ``J_f(x_i)^T G_i``. At a unit exactly at 0 the ReLU's derivative is
        taken as 0 (a valid choice of subgradient, as PyTorch's).
    """
    _, inputs = relu_forward(layers, X, keep=True)
    return _backward(layers, inputs, np.asarray(G, dtype=np.float64), False, True)[0]


class ReluNetwork:
    """The mutable parameters of a ReLU network, as the training loop updates them.

    Parameters
    ----------
    layers : sequence of (W, b)
        Initial weights; copied. ``W_l`` of shape ``(h_l, h_{l-1})``, ``b_l`` of shape
        ``(h_l,)``. Hidden layers are followed by a ReLU; the last layer is not.
    fit_bias : bool, default=True
        Whether the biases are trained. ``False`` keeps them as given (zero for a linear
        metric, the network of one layer without bias).

    Attributes
    ----------
    layers : list of (ndarray, ndarray)
        The current ``(W_l, b_l)``; the training loop updates these arrays in place.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust._network import ReluNetwork
    >>> net = ReluNetwork.initialize([2, 3, 1], random_state=0)
    >>> X = np.array([[0.5, -1.0], [1.0, 2.0]])
    >>> E, inputs = net.forward(X)
    >>> E.shape, len(net.parameters)
    ((2, 1), 4)
    >>> [g.shape for g in net.backward(inputs, np.ones_like(E))]
    [(3, 2), (3,), (1, 3), (1,)]
    """

    def __init__(self, layers, fit_bias=True):
        self.layers = [
            (np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in layers
        ]
        self.fit_bias = fit_bias

    @classmethod
    def initialize(cls, sizes, fit_bias=True, random_state=None):
        """A network of the given layer sizes with He-initialised weights and zero biases.

        Parameters
        ----------
        sizes : sequence of int
            ``[d, h_1, ..., h_L]``: input dimension, then each layer's width.
        fit_bias : bool, default=True
            See the class.
        random_state : int, RandomState instance or None, default=None
            Draws the weights.

        Returns
        -------
        network : ReluNetwork
            ``W_l`` drawn from ``N(0, 2 / h_{l-1})`` (He et al., for layers feeding a ReLU)
            and ``N(0, 1 / h_{L-1})`` for the last one.
        """
        rng = check_random_state(random_state)
        layers = []
        for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            gain = 2.0 if index < len(sizes) - 2 else 1.0
            W = rng.standard_normal((n_out, n_in)) * np.sqrt(gain / n_in)
            layers.append((W, np.zeros(n_out)))
        return cls(layers, fit_bias=fit_bias)

    @property
    def parameters(self):
        """The trained arrays, in the order of :meth:`backward`'s gradients: ``W_1, b_1,
        ..., W_L, b_L`` (without the ``b_l`` when ``fit_bias`` is ``False``)."""
        return [array for W, b in self.layers for array in ((W, b) if self.fit_bias else (W,))]

    def forward(self, X):
        """The embedding of ``X`` and what the backward passes need.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Points in the raw input space.

        Returns
        -------
        E : ndarray of shape (n, h_L)
        inputs : list of ndarray
            The input of each layer, for :meth:`backward` and :meth:`input_vjp`.
        """
        return relu_forward(self.layers, X, keep=True)

    def embed(self, X):
        """The embedding ``f(X)``, shape ``(n, h_L)``."""
        return relu_forward(self.layers, X)

    def backward(self, inputs, G):
        """Gradients of a loss with ``dL/dE = G`` with respect to :attr:`parameters`.

        Parameters
        ----------
        inputs : list of ndarray
            From :meth:`forward`.
        G : ndarray of shape (n, h_L)
            Cotangents (gradients with respect to the embeddings), one row per point.

        Returns
        -------
        grads : list of ndarray
            One per array of :attr:`parameters`, in the same order and shapes.
        """
        _, grads = _backward(self.layers, inputs, G, True, False)
        return [g for gW, gb in grads for g in ((gW, gb) if self.fit_bias else (gW,))]

    def input_vjp(self, inputs, G):
        """``J_f(x_i)^T G_i`` for the points of a :meth:`forward` pass, shape ``(n, d)``."""
        return _backward(self.layers, inputs, G, False, True)[0]

    def copy_parameters(self):
        """A copy of :attr:`parameters` (to restore a best iterate)."""
        return [p.copy() for p in self.parameters]

    def set_parameters(self, values):
        """Copy ``values`` (as from :meth:`copy_parameters`) into :attr:`parameters`."""
        for p, v in zip(self.parameters, values, strict=True):
            p[...] = v


class ReluNetworkTarget(MetricTarget):
    """A fitted ReLU network as skrobust's attacks and certificates see it (the protocol).

    ``f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L`` and ``D = ||f(x) - f(x')||^2``.
    Gradient attacks use :meth:`vjp` (eq. 10-11); the certificates read its ``layers``
    (interval bound propagation and the Lipschitz bound).

    Parameters
    ----------
    layers : sequence of (W, b)
        The network in the caller's raw input space; copied and made read-only. ``W_l`` of
        shape ``(h_l, h_{l-1})``, ``b_l`` of shape ``(h_l,)``.
    threshold : float or None, default=None
        The model's own threshold on the squared distance ``D``, or ``None``.

    Attributes
    ----------
    layers : tuple of (ndarray, ndarray)
        The read-only ``(W_l, b_l)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.targets import ReluNetworkTarget
    >>> target = ReluNetworkTarget([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])
    >>> target.embed(np.array([[1.0, -1.0]])).tolist()
    [[1.0]]
    >>> target.squared_pair_distances(np.array([[[1.0, 1.0], [0.0, 0.0]]])).tolist()
    [4.0]
    >>> target.vjp(np.array([[1.0, -1.0]]), np.array([[1.0]])).tolist()  # unit 2 is off
    [[1.0, 0.0]]
    """

    def __init__(self, layers, threshold=None):
        frozen = []
        for index, (W, b) in enumerate(layers):
            W, b = np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)
            width = frozen[-1][0].shape[0] if frozen else None
            if W.ndim != 2 or b.shape != (W.shape[0],) or (width and W.shape[1] != width):
                raise ValueError(
                    f"Layer {index} must be (W, b) with W of shape (h, {width or 'd'}) and b "
                    f"of shape (h,); got W {W.shape} and b {b.shape}."
                )
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                raise ValueError(f"Layer {index} contains NaN or infinite values.")
            W.flags.writeable = b.flags.writeable = False
            frozen.append((W, b))
        if not frozen:
            raise ValueError("A network needs at least one layer.")
        self.layers = tuple(frozen)
        self.threshold = None if threshold is None else float(threshold)

    @property
    def n_features(self):
        """Input dimension ``d``."""
        return self.layers[0][0].shape[1]

    @property
    def n_components(self):
        """Embedding dimension, the rows of ``W_L``."""
        return self.layers[-1][0].shape[0]

    def embed(self, X):
        """``f(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.

        Returns
        -------
        E : ndarray of shape (n_samples, n_components)
        """
        return relu_forward(self.layers, np.asarray(X, dtype=np.float64))

    def vjp(self, X, G):
        """Row ``i``: ``J_f(x_i)^T G_i`` (eq. 10-11), one backward pass.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.
        G : array-like of shape (n_samples, n_components)
            Cotangents (gradients with respect to the embeddings), one row per point.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
        """
        return relu_vjp(self.layers, np.asarray(X, dtype=np.float64), G)

    def compose_input(self, scale, offset):
        """Fold ``x -> scale * x + offset`` into the first layer.

        Parameters
        ----------
        scale, offset : ndarray of shape (n_features,)
            The affine map's scale and offset per feature.

        Returns
        -------
        target : ReluNetworkTarget
        """
        (W, b), *rest = self.layers
        return ReluNetworkTarget(
            [(W * scale[np.newaxis, :], W @ offset + b), *rest], self.threshold
        )


class CallableTarget(MetricTarget):
    """A metric given by two functions: wrap your own network (PyTorch, JAX, ...) this way.

    skrobust's gradient attacks need only the embedding and its vector-Jacobian product,
    both on NumPy arrays; with them any differentiable model is attacked as skrobust's own
    networks are. The certificates need the layers of a ReLU network and refuse a
    ``CallableTarget`` (a ``TypeError`` saying what works instead).

    Parameters
    ----------
    embed : callable
        ``embed(X) -> E``: ``(n, n_features)`` float64 array to ``(n, n_components)``.
    vjp : callable
        ``vjp(X, G) -> V``: row ``i`` of ``V`` is ``J_f(x_i)^T G_i``, ``(n, n_features)``.
    n_features : int
        Input dimension.
    threshold : float or None, default=None
        The model's threshold on the squared distance ``D``, if it has one.

    Examples
    --------
    A model of your own, here ``f(x) = tanh(A x)`` in NumPy:

    >>> import numpy as np
    >>> from skrobust.targets import CallableTarget
    >>> A = np.array([[1.0, 2.0], [0.0, -1.0]])
    >>> target = CallableTarget(
    ...     lambda X: np.tanh(X @ A.T),
    ...     lambda X, G: (G * (1.0 - np.tanh(X @ A.T) ** 2)) @ A,
    ...     n_features=2)
    >>> target.embed(np.zeros((1, 2))).tolist(), target.n_components
    ([[0.0, 0.0]], 2)

    With PyTorch, the two callables are a forward pass and ``torch.autograd.grad`` (see the
    user guide's page on networks):

    .. code-block:: python

        def embed(X):
            with torch.no_grad():
                return module(torch.from_numpy(X)).numpy()

        def vjp(X, G):
            x = torch.from_numpy(X).requires_grad_(True)
            (grad,) = torch.autograd.grad(module(x), x, torch.from_numpy(G))
            return grad.numpy()

        target = CallableTarget(embed, vjp, n_features=X.shape[1])
    """

    def __init__(self, embed, vjp, n_features, threshold=None):
        if not (callable(embed) and callable(vjp)):
            raise TypeError(
                f"embed and vjp must be callables, got {type(embed).__name__} and "
                f"{type(vjp).__name__}."
            )
        if not (isinstance(n_features, numbers.Integral) and n_features >= 1):
            raise ValueError(f"n_features must be a positive integer, got {n_features!r}.")
        self._embed, self._vjp = embed, vjp
        self._n_features = int(n_features)
        self.threshold = None if threshold is None else float(threshold)

    @property
    def n_features(self):
        """Input dimension ``d``."""
        return self._n_features

    def embed(self, X):
        """The wrapped ``embed``, its output checked and made float64.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.

        Returns
        -------
        E : ndarray of shape (n_samples, n_components)
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        E = np.asarray(self._embed(X), dtype=np.float64)
        if E.ndim != 2 or E.shape[0] != X.shape[0]:
            raise ValueError(
                f"embed returned shape {E.shape} for {X.shape[0]} points; expected "
                f"({X.shape[0]}, n_components)."
            )
        return E

    def vjp(self, X, G):
        """The wrapped ``vjp``, its output checked and made float64.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the raw input space.
        G : array-like of shape (n_samples, n_components)
            Cotangents (gradients with respect to the embeddings), one row per point.

        Returns
        -------
        V : ndarray of shape (n_samples, n_features)
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        V = np.asarray(self._vjp(X, np.ascontiguousarray(G, dtype=np.float64)), np.float64)
        if V.shape != X.shape:
            raise ValueError(f"vjp returned shape {V.shape}; expected {X.shape} (that of X).")
        return V
