"""Attacks, bounds and certificates on dask arrays, block by block, on any dask scheduler.

Each function here takes its inputs as dask arrays chunked along the samples (pairs,
triplets or points; the other axes are merged into one chunk) and returns dask arrays with
the same chunks along the samples, computed block by block by the in-memory function of
the same name on whatever scheduler is active: the threaded default, processes, or a
``dask.distributed`` cluster. Nothing is computed until you ask (``.compute()``,
``dask.compute(...)``, ``.persist()``).

- The fitted model is prepared once (the metric's norms, the kNN's embedded references, the
  fitted attack) and enters the graph as a single node: a cluster ships it to each worker
  once, not with every task.
- A task holds one block of inputs and its results, and the in-memory functions work
  through a block in bounded sub-chunks, so a worker's memory is set by the chunk size (and
  the model), not by the whole input.
- Per-sample results are computed sample by sample, and the random starts of restarts are
  drawn per input (from the seed and the input's own values, see
  :class:`~skrobust.AckMetricAttack`), so the results do not depend on the chunking and
  equal the in-memory results.
- Parameters are checked when the graph is built (the same messages as in memory); errors
  in the values of a block (NaN, outside the box) are raised when it is computed.

Limits. A kNN's references are part of the model, so every worker holds all of them:
``n_references x n_components`` doubles, plus, for a certificate with
``method="pairwise"``, a table of ``n_own x n_other`` doubles per predicted class (the
pairwise argument needs every own reference against every rival: 20,000 references of two
balanced classes need 800 MB of it). ``method="interval"`` needs no table. References
beyond what one worker holds are not supported. Inputs that stray outside the box by a few
ulps widen the box per block here, per call in memory: the results may differ by those ulps.

``GridSearchCV`` over a defence's strength needs nothing from this module: run it under
``joblib.parallel_backend("dask")`` with a ``distributed.Client``; see the scaling guide.

Install with ``pip install "skrobust[dask]"``; ``import skrobust`` never imports dask.
"""

import copy
import operator
from collections import namedtuple

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _bounds, _knn_certificate
from ._attack import AckMetricAttack, AttackResult
from ._knn_attack import CascadeKNNAttack, CascadeResult
from ._validation import check_eps, check_feature_range, check_scalar_choice

__all__ = [
    "attack",
    "certified_knn_accuracy",
    "certified_knn_radius",
    "certified_radius",
    "certify_knn",
    "certify_pairs",
    "perturbed_distance_bounds",
]

# What one block returns, for each output: its shape given the block's rows, the axis that
# runs over the rows, its dtype.
_Output = namedtuple("_Output", "shape axis dtype")


def _dask():
    """``(dask, dask.array)``, or an ``ImportError`` that says how to install them."""
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            'skrobust.dask needs dask: pip install "skrobust[dask]" (it installs '
            f"dask[distributed]). ({exc})"
        ) from exc
    return dask, da


def _samples(X, name, tail=None):
    """``X`` as a dask array chunked along its first axis only, its shape checked.

    ``tail``: the shape every sample must have (``None``: any). An array that is not a dask
    array is wrapped with dask's automatic chunks.
    """
    _, da = _dask()
    if not isinstance(X, da.Array):
        X = da.asarray(np.asarray(X))
    if X.ndim < 1 or (tail is not None and tuple(X.shape[1:]) != tuple(tail)):
        expected = "(n_samples, ...)" if tail is None else str(("n_samples",) + tuple(tail))
        raise ValueError(f"{name} must have shape {expected}, got shape {X.shape}.")
    if np.isnan(X.shape[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes along the samples: call "
            f"{name}.compute_chunk_sizes() first."
        )
    if X.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}.")
    return X.rechunk({axis: -1 for axis in range(1, X.ndim)})


def _aligned(y, X, name="y"):
    """Labels ``y`` (array-like or dask array, or ``None``) chunked as the rows of ``X``."""
    if y is None:
        return None
    _, da = _dask()
    if not isinstance(y, da.Array):
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"{name} must have shape ({X.shape[0]},), got shape {y.shape}.")
        return da.from_array(y, chunks=(X.chunks[0],))
    if y.shape != (X.shape[0],):
        raise ValueError(f"{name} must have shape ({X.shape[0]},), got shape {y.shape}.")
    return y.rechunk((X.chunks[0],))


def _as_tuple(func, *args, **params):
    out = func(*args, **params)
    return out if isinstance(out, tuple) else (out,)


def _blockwise(func, arrays, model, outputs, **params):
    """``func(*blocks, model, **params)`` on each block of rows of ``arrays`` (dask arrays
    with the same row chunks, or ``None``), ``model`` entering the graph once.

    ``func`` returns one array per entry of ``outputs`` (a tuple of them, or the array
    itself for one output); the result is a tuple of dask arrays, each the blocks' arrays
    concatenated along the output's row axis.
    """
    dask, da = _dask()
    shipped = dask.delayed(model, pure=True)
    rows = arrays[0].chunks[0]
    blocks = [a.to_delayed().ravel() if a is not None else [None] * len(rows) for a in arrays]
    task = dask.delayed(_as_tuple, pure=True)
    results = [task(func, *block, shipped, **params) for block in zip(*blocks, strict=True)]
    columns = []
    for k, out in enumerate(outputs):
        pieces = [
            da.from_delayed(
                dask.delayed(operator.getitem, pure=True)(result, k),
                shape=out.shape(n),
                dtype=out.dtype,
            )
            for result, n in zip(results, rows, strict=True)
        ]
        columns.append(da.concatenate(pieces, axis=out.axis))
    return tuple(columns)


# -- pairs: bounds and certificates -------------------------------------------------------


def _pairs_and_norms(model, pairs, name="pairs"):
    norms = _bounds.metric_norms(model)
    return _samples(pairs, name, (2, norms.n_features)), norms


def _probe(norms, feature_range):
    """One pair inside the box: calling the in-memory function on it checks the
    parameters now, with the in-memory messages."""
    box = check_feature_range(feature_range)
    return np.full((1, 2, norms.n_features), 0.0 if box is None else box[0])


def _bounds_block(pairs, norms, **params):
    return _bounds.perturbed_distance_bounds(norms, pairs, **params)


def perturbed_distance_bounds(
    model, pairs, eps, bound="best", budget="shared", feature_range=(0.0, 1.0)
):
    """:func:`skrobust.perturbed_distance_bounds` on a dask array of pairs.

    Bounds on the squared distance ``D`` any perturbation within the budget can reach, per
    pair, computed block by block.

    Parameters
    ----------
    model : fitted Mahalanobis model or MetricNorms
        As in :func:`skrobust.perturbed_distance_bounds`; its norms are computed once, here.
    pairs : dask array of shape (n_pairs, 2, n_features)
        Clean pairs, inside the box, chunked along the pairs.
    eps : float or array-like of shape (n_eps,)
        Budget(s), ``>= 0``.
    bound : {"best", "paper", "spectral", "frobenius", "triangle"}, default="best"
        Which bound (see :func:`skrobust.perturbed_distance_bounds`).
    budget : {"shared", "per_point"}, default="shared"
        The attacker's budget.
    feature_range : (float, float) or None, default=(0.0, 1.0)
        The box of the clean and the perturbed points; ``None``: no box (the triangle
        bound only).

    Returns
    -------
    lower, upper : dask arrays of shape (n_pairs,), or (n_eps, n_pairs) for several eps
        Equal to the in-memory bounds. Compute them together (``dask.compute(lower,
        upper)``): each block's bounds are computed once for both.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> import skrobust.dask as skd
    >>> from skrobust import perturbed_distance_bounds
    >>> from skrobust._mahalanobis import MahalanobisMetric
    >>> metric = MahalanobisMetric(np.diag([2.0, 1.0]), np.zeros(2))
    >>> pairs = np.random.default_rng(0).random((1000, 2, 2))
    >>> lower, upper = skd.perturbed_distance_bounds(
    ...     metric, da.from_array(pairs, chunks=(300, 2, 2)), eps=0.05)
    >>> lower.chunks
    ((300, 300, 300, 100),)
    >>> lower, upper = dask.compute(lower, upper)
    >>> expected = perturbed_distance_bounds(metric, pairs, eps=0.05)
    >>> bool(np.array_equal(lower, expected[0]) and np.array_equal(upper, expected[1]))
    True
    """
    pairs, norms = _pairs_and_norms(model, pairs)
    params = dict(eps=eps, bound=bound, budget=budget, feature_range=feature_range)
    _bounds.perturbed_distance_bounds(norms, _probe(norms, feature_range), **params)
    eps_values, scalar = check_eps(eps)
    n_eps = len(eps_values)
    out = (
        _Output(lambda n: (n,), 0, np.float64)
        if scalar
        else _Output(lambda n: (n_eps, n), 1, np.float64)
    )
    return _blockwise(_bounds_block, [pairs], norms, [out, out], **params)


def _certify_pairs_block(pairs, norms, **params):
    return _bounds.certify_pairs(norms, pairs, **params)


def certify_pairs(
    model, pairs, eps, threshold=None, bound="best", budget="shared", feature_range=(0.0, 1.0)
):
    """:func:`skrobust.certificates.certify_pairs` on a dask array of pairs.

    Parameters
    ----------
    model : fitted Mahalanobis model or MetricNorms
        Its norms are computed once, here.
    pairs : dask array of shape (n_pairs, 2, n_features)
        Clean pairs, inside the box, chunked along the pairs.
    eps : float
        The L-infinity budget.
    threshold : float or None, default=None
        Threshold on the squared distance; ``None`` uses the model's own.
    bound : {"best", "paper", "spectral", "frobenius", "triangle"}, default="best"
        Which bound certifies (see :func:`skrobust.perturbed_distance_bounds`).
    budget : {"shared", "per_point"}, default="shared"
        The attacker's budget.
    feature_range : (float, float) or None, default=(0.0, 1.0)
        The box of the clean and the perturbed points; ``None``: no box.

    Returns
    -------
    certified : dask array of bool, shape (n_pairs,)
        Equal to the in-memory result.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import skrobust.dask as skd
    >>> from skrobust._mahalanobis import MahalanobisMetric
    >>> identity = MahalanobisMetric(np.eye(1), np.zeros(1))
    >>> pairs = da.from_array(np.array([[[0.0], [0.1]], [[0.0], [0.5]], [[0.0], [0.3]]]),
    ...                       chunks=(2, 2, 1))
    >>> skd.certify_pairs(identity, pairs, 0.1, threshold=0.09).compute().tolist()
    [True, True, False]
    """
    pairs, norms = _pairs_and_norms(model, pairs)
    params = dict(
        eps=eps, threshold=threshold, bound=bound, budget=budget, feature_range=feature_range
    )
    _bounds.certify_pairs(norms, _probe(norms, feature_range), **params)
    out = _Output(lambda n: (n,), 0, bool)
    return _blockwise(_certify_pairs_block, [pairs], norms, [out], **params)[0]


def _radius_block(pairs, norms, **params):
    return _bounds.certified_radius(norms, pairs, **params)


def certified_radius(model, pairs, threshold=None, budget="shared"):
    """:func:`skrobust.certified_radius` on a dask array of pairs.

    Parameters
    ----------
    model : fitted Mahalanobis model or MetricNorms
        Its norms are computed once, here.
    pairs : dask array of shape (n_pairs, 2, n_features)
        Pairs, chunked along the pairs.
    threshold : float or None, default=None
        Threshold on the squared distance; ``None`` uses the model's own.
    budget : {"shared", "per_point"}, default="shared"
        The attacker's budget.

    Returns
    -------
    radius : dask array of shape (n_pairs,)
        Equal to the in-memory radii.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import skrobust.dask as skd
    >>> from skrobust import certified_radius
    >>> from skrobust._mahalanobis import MahalanobisMetric
    >>> metric = MahalanobisMetric(np.array([[1.0, 0.5]]), np.zeros(1), threshold=0.2)
    >>> pairs = np.random.default_rng(0).random((500, 2, 2))
    >>> radius = skd.certified_radius(metric, da.from_array(pairs, chunks=(64, 2, 2)))
    >>> radius.shape, bool(np.allclose(radius.compute(), certified_radius(metric, pairs)))
    ((500,), True)
    """
    pairs, norms = _pairs_and_norms(model, pairs)
    params = dict(threshold=threshold, budget=budget)
    _bounds.certified_radius(norms, _probe(norms, None), **params)
    out = _Output(lambda n: (n,), 0, np.float64)
    return _blockwise(_radius_block, [pairs], norms, [out], **params)[0]


# -- kNN certificates -----------------------------------------------------------------------


def _knn_parts(estimator, method):
    """The kNN's parts, computed once, with the norm the certificate will use (so that no
    worker recomputes it)."""
    parts = _knn_certificate._KnnParts(estimator)
    if method == "interval" or parts.metric.n_features <= _bounds.MAX_EXACT_FEATURES:
        parts.inf_to_2  # noqa: B018  (computed now, cached in parts)
    return parts


def _certify_knn_block(X, parts, eps, method, feature_range):
    X, box = parts.check_X(X, feature_range)
    return _knn_certificate._certify(parts, X, np.full(X.shape[0], eps), method, box)


def _check_knn_call(estimator, X, eps, method, feature_range, methods):
    eps = _knn_certificate._check_single_eps(eps)
    method = check_scalar_choice(method, "method", methods)
    feature_range = check_feature_range(feature_range)
    parts = _knn_parts(estimator, method)
    return _samples(X, "X", (parts.metric.n_features,)), parts, eps, method, feature_range


def certify_knn(estimator, X, eps, *, method="pairwise", feature_range=None):
    """:func:`skrobust.certificates.certify_knn` on a dask array of points.

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        See :func:`skrobust.certificates.certify_knn`. Its references are embedded once,
        here, and every worker holds all of them (see the module's limits).
    X : dask array of shape (n_samples, n_features)
        Test points, chunked along the samples.
    eps : float
        The L-infinity budget.
    method : {"pairwise", "interval"}, default="pairwise"
        The certificate (see :func:`skrobust.certificates.certify_knn`); ``"exact"`` (LPs
        and MILPs per point) is not offered here.
    feature_range : tuple (lo, hi) or None, default=None
        The box the attacker is confined to; ``None``: no box.

    Returns
    -------
    certified : dask array of bool, shape (n_samples,)
        Equal to the in-memory result.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> import skrobust.dask as skd
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.certificates import certify_knn
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(random_state=0), KNeighborsClassifier(3))
    >>> pipe = pipe.fit(X[::2], y[::2])
    >>> certified = skd.certify_knn(pipe, da.from_array(X[1::2], chunks=20), eps=0.02)
    >>> bool((certified.compute() == certify_knn(pipe, X[1::2], eps=0.02)).all())
    True
    """
    X, parts, eps, method, feature_range = _check_knn_call(
        estimator, X, eps, method, feature_range, _knn_certificate.METHODS[:2]
    )
    out = _Output(lambda n: (n,), 0, bool)
    return _blockwise(
        _certify_knn_block, [X], parts, [out], eps=eps, method=method,
        feature_range=feature_range,
    )[0]  # fmt: skip


def _knn_radius_block(X, parts, method, rtol):
    X, _ = parts.check_X(X, None)
    return _knn_certificate.knn_radius(parts, X, method, rtol)


def certified_knn_radius(estimator, X, *, method="pairwise", rtol=1e-6):
    """:func:`skrobust.certificates.certified_knn_radius` on a dask array of points.

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        See :func:`certify_knn`.
    X : dask array of shape (n_samples, n_features)
        Test points, chunked along the samples.
    method : {"pairwise", "interval"}, default="pairwise"
        The certificate whose radius is computed.
    rtol : float, default=1e-6
        Relative precision of the bisection.

    Returns
    -------
    radius : dask array of shape (n_samples,)
        Equal to the in-memory radii (each point's bisection is its own).

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> import skrobust.dask as skd
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> radius = skd.certified_knn_radius(knn, da.from_array([[0.3], [0.5], [0.9]], chunks=2))
    >>> [round(float(r), 4) for r in radius.compute()]
    [0.2, 0.0, 0.4]
    """
    if not (isinstance(rtol, float | int) and 0 < rtol < 1):
        raise ValueError(f"rtol must be a number in (0, 1), got {rtol!r}.")
    X, parts, _, method, _ = _check_knn_call(
        estimator, X, 0.0, method, None, _knn_certificate.METHODS[:2]
    )
    out = _Output(lambda n: (n,), 0, np.float64)
    return _blockwise(_knn_radius_block, [X], parts, [out], method=method, rtol=rtol)[0]


def _knn_accuracy_block(X, y, model, eps, method, feature_range):
    parts, estimator = model
    certified = _certify_knn_block(X, parts, eps, method, feature_range)
    return certified & (estimator.predict(X) == y)


def certified_knn_accuracy(estimator, X, y, eps, *, method="pairwise", feature_range=None):
    """:func:`skrobust.certificates.certified_knn_accuracy` on dask arrays.

    Parameters
    ----------
    estimator : fitted Pipeline or KNeighborsClassifier
        See :func:`certify_knn`.
    X : dask array of shape (n_samples, n_features)
        Test points, chunked along the samples.
    y : array-like or dask array of shape (n_samples,)
        True labels (rechunked as ``X``).
    eps : float
        The L-infinity budget.
    method : {"pairwise", "interval"}, default="pairwise"
        The certificate (see :func:`certify_knn`).
    feature_range : tuple (lo, hi) or None, default=None
        The box the attacker is confined to; ``None``: no box.

    Returns
    -------
    certified_accuracy : dask array of shape ()
        The fraction of points classified correctly and certified: a lower bound on the
        accuracy under any attack within ``eps``. Equal to the in-memory value up to the
        rounding of the mean (a sum over blocks instead of one sum).

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> import skrobust.dask as skd
    >>> knn = KNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1])
    >>> X = da.from_array([[0.3], [0.5], [0.9], [0.2]], chunks=2)
    >>> float(skd.certified_knn_accuracy(knn, X, [0, 0, 1, 1], eps=0.1).compute())
    0.5
    """
    X, parts, eps, method, feature_range = _check_knn_call(
        estimator, X, eps, method, feature_range, _knn_certificate.METHODS[:2]
    )
    y = _aligned(y, X)
    out = _Output(lambda n: (n,), 0, bool)
    correct = _blockwise(
        _knn_accuracy_block, [X, y], (parts, estimator), [out], eps=eps, method=method,
        feature_range=feature_range,
    )[0]  # fmt: skip
    return correct.mean()


# -- attacks ------------------------------------------------------------------------------


def _result_fields(fitted):
    """The per-input fields the fitted attack's results fill, in order."""
    if isinstance(fitted, CascadeKNNAttack):
        return ["adversarial", "success", "predictions_before", "predictions_after", "found_by"]
    if fitted.mode == "knn":
        return ["adversarial", "success", "predictions_before", "predictions_after"]
    return ["adversarial", "success", "distances_before", "distances_after", "thresholds"]


def _attack_block(X, y, fitted, eps):
    result = fitted.attack(X, y, eps=eps)
    return tuple(getattr(result, name) for name in _result_fields(fitted))


def _with_integer_seed(attack):
    """The attack, or a copy of it whose ``random_state`` is one integer drawn from it, so
    that every block (each with its own copy of the attack) draws from the same seed."""
    state = attack.random_state
    if state is None or isinstance(state, np.random.RandomState):
        attack = copy.copy(attack)
        attack.random_state = int(check_random_state(state).randint(np.iinfo(np.int32).max))
    return attack


def attack(attack, X, y=None, eps=None):
    """Run a fitted attack on a dask array of inputs, block by block.

    Parameters
    ----------
    attack : fitted AckMetricAttack or CascadeKNNAttack
        Any mode (pairs, triplets, kNN), fitted before: it is shipped whole (with the
        attacked model) to each worker once. With an integer ``random_state`` the result
        equals the in-memory one; ``None`` or a ``RandomState`` is drawn into one integer
        seed here, so every block draws its restarts from the same seed (and each input
        from its own values): the result does not depend on the chunking.
    X : dask array
        Pairs ``(n_pairs, 2, n_features)``, points ``(n_samples, n_features)`` or triplets
        ``(n_triplets, 3, n_features)``, chunked along the first axis.
    y : array-like or dask array of shape (n_samples,), default=None
        kNN: the labels of the points (rechunked as ``X``); ``None``, the classifier's
        predictions.
    eps : float or array-like of float, default=None
        Budgets; ``None`` uses the attack's own.

    Returns
    -------
    result : AttackResult or CascadeResult
        The in-memory result's type, its per-input fields dask arrays chunked as ``X``
        along the inputs (fields the mode does not fill are ``None``). Compute the fields
        in one call, so that each block is attacked once: ``(result,) =
        dask.compute(result)`` returns the result with NumPy fields.

    Examples
    --------
    >>> import dask
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> import skrobust.dask as skd
    >>> from skrobust import AckMetricAttack, RobustMetricLearner
    >>> from skrobust.datasets import load_wine, make_pairs
    >>> X, y = load_wine()
    >>> model = RobustMetricLearner(random_state=0).fit(X, y)
    >>> pairs, _, _ = make_pairs(X, y, 100, random_state=0)
    >>> fitted = AckMetricAttack(FrozenEstimator(model), n_restarts=2, random_state=0).fit()
    >>> lazy = skd.attack(fitted, da.from_array(pairs, chunks=(30, 2, 13)), eps=[0.05, 0.1])
    >>> lazy.success.shape, lazy.success.chunks
    ((2, 100), ((2,), (30, 30, 30, 10)))
    >>> (result,) = dask.compute(lazy)
    >>> in_memory = fitted.attack(pairs, eps=[0.05, 0.1])
    >>> bool(np.array_equal(result.adversarial, in_memory.adversarial))
    True
    """
    if not isinstance(attack, AckMetricAttack | CascadeKNNAttack):
        raise TypeError(
            "attack must be a fitted AckMetricAttack or CascadeKNNAttack, got "
            f"{type(attack).__name__}."
        )
    check_is_fitted(attack)
    fitted = _with_integer_seed(attack)
    eps_values, _ = check_eps(fitted.eps if eps is None else eps)
    knn = isinstance(fitted, CascadeKNNAttack) or fitted.mode == "knn"
    n_features = fitted.n_features_in_
    if knn:
        tail = (n_features,)
    else:
        tail = (2 if fitted.mode == "pairs" else 3, n_features)
    X = _samples(X, "X", tail)
    y = _aligned(y, X) if knn else None
    n_eps = len(eps_values)
    outputs = {
        "adversarial": _Output(lambda n: (n_eps, n) + tail, 1, np.float64),
        "success": _Output(lambda n: (n_eps, n), 1, bool),
        "distances_before": _Output(lambda n: (n,), 0, np.float64),
        "distances_after": _Output(lambda n: (n_eps, n), 1, np.float64),
        "thresholds": _Output(lambda n: (n,), 0, np.float64),
        "found_by": _Output(lambda n: (n_eps, n), 1, np.int64),
    }
    if knn:
        labels = fitted.classifier_.classes_.dtype
        outputs["predictions_before"] = _Output(lambda n: (n,), 0, labels)
        outputs["predictions_after"] = _Output(lambda n: (n_eps, n), 1, labels)
    fields = _result_fields(fitted)
    columns = _blockwise(
        _attack_block, [X, y], fitted, [outputs[name] for name in fields], eps=eps_values
    )
    result_type = CascadeResult if isinstance(fitted, CascadeKNNAttack) else AttackResult
    return result_type(
        mode="knn" if knn else fitted.mode,
        eps=eps_values,
        **dict(zip(fields, columns, strict=True)),
    )
