"""Input validation shared by the learner, the attack and the certificates.

Every checker returns a validated float64 array and raises a ``ValueError`` /
``TypeError`` that names the parameter. Checkers do not copy float64 input: code that
writes into an array must copy it first, so the caller's arrays are never modified.
"""

import numbers

import numpy as np


def check_feature_range(feature_range, name="feature_range"):
    """Validate a box ``(lo, hi)`` with ``lo < hi``, or ``None`` for no box.

    Returns ``None`` or a tuple of two Python floats.
    """
    if feature_range is None:
        return None
    try:
        lo, hi = feature_range
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be None or a pair (lo, hi) of numbers, got {feature_range!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must satisfy lo < hi with finite bounds, got ({lo!r}, {hi!r}).")
    return lo, hi


# Data may overshoot the box by this many ulps of its largest bound: min-max scaling (the
# bundled loaders before their last step, scikit-learn's MinMaxScaler) rounds past hi in a
# few percent of random boxes.
BOX_ULPS = 4


def box_tolerance(feature_range):
    """How far (a few ulps) data may lie outside ``feature_range`` and still be accepted."""
    lo, hi = feature_range
    return BOX_ULPS * float(np.spacing(max(abs(lo), abs(hi))))


def check_in_box(X, feature_range, name="X"):
    """Raise a ``ValueError`` if any entry of ``X`` lies outside ``feature_range`` by more
    than :func:`box_tolerance`; return the box widened to hold ``X`` (``None`` for none).

    Attacks and certificates assume the data lie in the box; they never clip. Within the
    tolerance they use the widened box, which is sound (a certificate over a larger set
    covers the smaller one; the certificates' relative margin, 1e-9, is far wider than the
    few ulps the bounds move by) and gives the attacker a few ulps more room.
    """
    if feature_range is None:
        return None
    lo, hi = feature_range
    if not X.size:
        return lo, hi
    low, high = float(X.min()), float(X.max())
    tol = box_tolerance(feature_range)
    if low < lo - tol or high > hi + tol:
        # repr: the full value, so an overshoot of an ulp is visible.
        raise ValueError(
            f"{name} has values in [{low!r}, {high!r}], outside feature_range=({lo!r}, "
            f"{hi!r}) by more than the rounding tolerance {tol!r}. Scale the data into the "
            "box first (for example with sklearn.preprocessing.MinMaxScaler), or pass "
            "feature_range=None for an unbounded attacker."
        )
    return min(lo, low), max(hi, high)


def _as_finite_float_array(X, name):
    kind = np.asarray(X).dtype.kind
    # Refused rather than cast: NumPy drops imaginary parts (with a warning only) and parses
    # strings.
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} must hold real numbers.")
    if kind in "US":
        raise TypeError(f"{name} must be an array of numbers, got strings.")
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers: {exc}") from None
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return X


def check_tuples(X, tuple_size, name, n_features=None):
    """Validate an array of pairs (``tuple_size=2``) or triplets (``tuple_size=3``).

    Expected shape ``(n_tuples, tuple_size, n_features)``; returns a float64 array.
    """
    kind = {2: "pairs", 3: "triplets"}[tuple_size]
    X = _as_finite_float_array(X, name)
    if X.ndim != 3 or X.shape[1] != tuple_size:
        raise ValueError(
            f"{name} must be an array of {kind} of shape (n_{kind}, {tuple_size}, "
            f"n_features), got shape {X.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one of its {kind}, got 0.")
    if n_features is not None and X.shape[2] != n_features:
        raise ValueError(
            f"{name} has {X.shape[2]} features per point, but the model expects {n_features}."
        )
    return X


def check_pairs(pairs, name="pairs", n_features=None):
    """Validate pairs of shape ``(n_pairs, 2, n_features)``; return a float64 array."""
    return check_tuples(pairs, 2, name, n_features)


def check_triplets(triplets, name="triplets", n_features=None):
    """Validate triplets (anchor, positive, negative); return a float64 array."""
    return check_tuples(triplets, 3, name, n_features)


def check_pair_labels(y, n_pairs, name="y"):
    """Validate pair labels: ``+1`` similar, ``-1`` dissimilar (metric-learn's convention)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_pairs:
        raise ValueError(
            f"{name} must be a 1-d array with one label per pair ({n_pairs}), got shape {y.shape}."
        )
    if y.dtype.kind not in "iufb":
        raise TypeError(f"{name} must hold the numbers +1 and -1, got dtype {y.dtype}.")
    bad = ~np.isin(y, (-1, 1))
    if np.any(bad):
        found = np.unique(y[bad])[:5]
        raise ValueError(
            f"{name} must hold +1 (similar) and -1 (dissimilar) pair labels only; "
            f"found {found.tolist()}."
        )
    return y.astype(np.int64)


def check_eps(eps, name="eps"):
    """Validate one budget or a list of budgets; return a 1-d float64 array and a flag
    telling whether a scalar was given."""
    scalar = np.ndim(eps) == 0
    if np.iscomplexobj(eps):
        raise TypeError(f"{name} must be a real number or a list of them, got {eps!r}.")
    try:
        values = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number or a 1-d list of numbers, got {eps!r}."
        ) from None
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-d list, got {eps!r}.")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {values.tolist()}.")
    return values, scalar


def check_scalar_choice(value, name, choices):
    """Check that ``value`` is one of ``choices`` (a tuple of strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value


def check_knn_classifier(knn, purpose):
    """Check that a fitted ``KNeighborsClassifier`` votes as the attack and the certificate
    model it: uniform weights, Euclidean distance (over the embedding), one output."""
    if knn.weights != "uniform" or knn.effective_metric_ != "euclidean":
        raise ValueError(
            f"{purpose} needs a KNeighborsClassifier with weights='uniform' and the Euclidean "
            f"metric, got weights={knn.weights!r}, metric={knn.metric!r}."
        )
    if knn.outputs_2d_:
        raise ValueError(f"{purpose} needs a single-output KNeighborsClassifier.")
    return knn


def is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_labelled_points(estimator, X, y):
    """A metric learner's ``fit`` input: ``(X as float64, y as class indices)``.

    Validates through scikit-learn's ``validate_data`` (which sets ``n_features_in_``);
    ``dtype="numeric"`` refuses strings (as scikit-learn's NCA does) instead of parsing them.
    Raises a ``ValueError`` for fewer than two classes (no dissimilar pair).
    """
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import validate_data

    X, y = validate_data(estimator, X, y, ensure_min_samples=2, dtype="numeric")
    check_classification_targets(y)
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"y must contain at least two classes to form dissimilar pairs; got only "
            f"{classes.tolist()}."
        )
    return X.astype(np.float64, copy=False), y_idx.astype(np.int64)


def check_labelled_pairs(estimator, pairs, y):
    """A metric learner's ``fit_pairs`` input: ``(pairs, labels)``, both similar (+1) and
    dissimilar (-1) pairs present; sets ``n_features_in_`` (and forgets feature names)."""
    pairs = check_pairs(pairs)
    labels = check_pair_labels(y, len(pairs))
    if not (np.any(labels == 1) and np.any(labels == -1)):
        raise ValueError("y must contain both similar (+1) and dissimilar (-1) pairs.")
    estimator.n_features_in_ = pairs.shape[2]
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    return pairs, labels
