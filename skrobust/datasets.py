"""Bundled data sets scaled to the attack box, and sampling of labelled pairs and triplets.

The loaders wrap scikit-learn's bundled data sets (no download), scaled feature by feature
to ``feature_range`` (the paper normalises every data set to ``[0, 1]^d``). Digits are
scaled by their fixed pixel range ``[0, 16]``; the other sets by each feature's minimum and
maximum over the whole data set, as the paper does before splitting.
"""

import numpy as np
from sklearn import datasets as _sk
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_X_y

from ._validation import check_feature_range

__all__ = [
    "load_breast_cancer",
    "load_csv",
    "load_digits",
    "load_wine",
    "make_pairs",
    "make_triplets",
]


def _to_box(X, lo_data, hi_data, feature_range):
    lo, hi = check_feature_range(feature_range)
    span = np.where(hi_data > lo_data, hi_data - lo_data, 1.0)
    # lo + t (hi - lo) with t in [0, 1] may round an ulp past an end (scikit-learn's
    # MinMaxScaler, x * scale + min, does in about 20% of random data); these loaders
    # promise data in the box, so their own rounding is taken back.
    return np.clip(lo + (X - lo_data) / span * (hi - lo), lo, hi)


def _minmax_box(X, feature_range):
    return _to_box(X, X.min(axis=0), X.max(axis=0), feature_range)


def load_breast_cancer(feature_range=(0.0, 1.0)):
    """Wisconsin breast cancer (569 points, 30 features, 2 classes) scaled to the box.

    Parameters
    ----------
    feature_range : tuple (lo, hi), default=(0.0, 1.0)
        The box every feature is scaled to (per-feature min-max over the data set).

    Returns
    -------
    X : ndarray of shape (569, 30)
    y : ndarray of shape (569,)
        0 malignant, 1 benign.

    Examples
    --------
    >>> from skrobust.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer()
    >>> X.shape, float(X.min()), float(X.max())
    ((569, 30), 0.0, 1.0)
    """
    X, y = _sk.load_breast_cancer(return_X_y=True)
    return _minmax_box(X, feature_range), y


def load_digits(classes=None, feature_range=(0.0, 1.0)):
    """Handwritten 8x8 digits (1,797 points, 64 features) scaled to the box.

    Parameters
    ----------
    classes : sequence of int or None, default=None
        Keep only these digits, for example ``(8, 9)`` for the paper's 8-versus-9 task.
        ``None`` keeps all ten.
    feature_range : tuple (lo, hi), default=(0.0, 1.0)
        The box; pixel values ``[0, 16]`` are mapped linearly onto it.

    Returns
    -------
    X : ndarray of shape (n_samples, 64)
    y : ndarray of shape (n_samples,)
        The digit of each image.

    Examples
    --------
    >>> from skrobust.datasets import load_digits
    >>> X, y = load_digits(classes=(8, 9))
    >>> X.shape, sorted(set(y.tolist()))
    ((354, 64), [8, 9])
    """
    X, y = _sk.load_digits(return_X_y=True)
    if classes is not None:
        classes = np.asarray(classes)
        unknown = np.setdiff1d(classes, np.arange(10))
        if classes.ndim != 1 or len(classes) < 2 or unknown.size:
            raise ValueError(
                f"classes must list at least two digits from 0 to 9, got {classes.tolist()}."
            )
        keep = np.isin(y, classes)
        X, y = X[keep], y[keep]
    return _to_box(X, np.zeros(X.shape[1]), np.full(X.shape[1], 16.0), feature_range), y


def load_wine(positive_class=0, feature_range=(0.0, 1.0)):
    """Wine recognition (178 points, 13 features), one class versus the rest, in the box.

    Parameters
    ----------
    positive_class : {0, 1, 2} or None, default=0
        The class labelled 1; the two others are labelled 0. ``None`` keeps the three classes.
    feature_range : tuple (lo, hi), default=(0.0, 1.0)
        The box every feature is scaled to (per-feature min-max over the data set).

    Returns
    -------
    X : ndarray of shape (178, 13)
    y : ndarray of shape (178,)

    Examples
    --------
    >>> from skrobust.datasets import load_wine
    >>> X, y = load_wine()
    >>> X.shape, int(y.sum())
    ((178, 13), 59)
    """
    X, y = _sk.load_wine(return_X_y=True)
    if positive_class is not None:
        if positive_class not in (0, 1, 2):
            raise ValueError(f"positive_class must be 0, 1, 2 or None, got {positive_class!r}.")
        y = (y == positive_class).astype(np.int64)
    return _minmax_box(X, feature_range), y


def load_csv(path, feature_range=(0.0, 1.0), header=False):
    """Load a labelled data set from a CSV file and scale it to the box.

    Every row is one point: its features, then its label in the last column. Labels may be
    numbers or strings.

    Parameters
    ----------
    path : str or path-like
    feature_range : tuple (lo, hi), default=(0.0, 1.0)
        The box every feature is scaled to (per-feature min-max over the file).
    header : bool, default=False
        Whether the first row is a header (column names) and is skipped. Never guessed: a
        header of numbers (``pandas.DataFrame(...).to_csv(index=False)`` writes ``0,1,2``)
        looks like data.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)

    Raises
    ------
    ValueError
        With the line number, when a row has another number of columns than the first,
        a feature is not a finite number, or the file has fewer than two columns, two
        classes or four rows.

    Examples
    --------
    >>> import os, tempfile
    >>> from skrobust.datasets import load_csv
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "data.csv")
    ...     with open(path, "w") as f:
    ...         _ = f.write("0,1,2\\n1,10,a\\n2,30,b\\n3,20,a\\n4,40,b\\n")
    ...     X, y = load_csv(path, header=True)
    >>> X.shape, y.tolist()
    ((4, 2), ['a', 'b', 'a', 'b'])
    """
    import csv

    with open(path, newline="") as f:
        rows = [(n, row) for n, row in enumerate(csv.reader(f), start=1) if any(row)]
    if not rows:
        raise ValueError(f"{path}: the file is empty.")

    if not isinstance(header, (bool, np.bool_)):
        raise TypeError(f"header must be True or False, got {header!r}.")
    # A malformed first row may be a header the caller did not declare.
    hint = (
        ""
        if header
        else " If the first row is a header, pass header=True (python -m skrobust: --csv-header)."
    )
    if header:
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path}: no data rows after the header.")
    width = len(rows[0][1])
    if width < 2:
        raise ValueError(f"{path}: each row needs features and a label (2+ columns).{hint}")
    X = np.empty((len(rows), width - 1))
    labels = []
    for k, (line, row) in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"{path}, line {line}: {len(row)} columns, but the first data row has {width}."
                + hint
            )
        try:
            X[k] = [float(v) for v in row[:-1]]
        except ValueError:
            raise ValueError(
                f"{path}, line {line}: a feature is not a number: {row[:-1]!r}."
                + (hint if k == 0 else "")
            ) from None
        labels.append(row[-1].strip())
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{path}: features must be finite numbers (found NaN or inf).")
    y = np.asarray(labels)
    try:
        as_numbers = y.astype(np.float64)
        if np.all(as_numbers == np.round(as_numbers)):
            y = as_numbers.astype(np.int64)
    except ValueError:
        pass
    if len(np.unique(y)) < 2 or len(y) < 4:
        raise ValueError(f"{path}: need at least two classes and four rows.")
    return _minmax_box(X, feature_range), y


def _check_count(n, name):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}.")
    return int(n)


def make_pairs(X, y, n_pairs, balanced=True, random_state=None):
    """Sample labelled pairs from a labelled data set.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_pairs : int
        How many pairs to draw (with replacement over pairs, never a point with itself).
    balanced : bool, default=True
        Draw half similar (same class) and half dissimilar pairs; else draw uniformly among
        all pairs of distinct points.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2, n_features)
    pair_labels : ndarray of shape (n_pairs,)
        ``+1`` for a similar pair, ``-1`` for a dissimilar one (metric-learn's convention).
    indices : ndarray of shape (n_pairs, 2)
        Row indices into ``X`` of each pair's points.

    Examples
    --------
    >>> from skrobust.datasets import load_wine, make_pairs
    >>> X, y = load_wine()
    >>> pairs, labels, _ = make_pairs(X, y, 10, random_state=0)
    >>> pairs.shape, int((labels == 1).sum())
    ((10, 2, 13), 5)
    """
    X, y = check_X_y(X, y, dtype=np.float64)
    n_pairs = _check_count(n_pairs, "n_pairs")
    rng = check_random_state(random_state)
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2 and balanced:
        raise ValueError("balanced pairs need at least two classes in y.")
    if len(y) < 2:
        raise ValueError("X must have at least two samples to form pairs.")
    if not balanced:
        i = rng.randint(len(y), size=n_pairs)
        j = (i + rng.randint(1, len(y), size=n_pairs)) % len(y)
    else:
        members = [np.flatnonzero(y_idx == c) for c in range(len(classes))]
        if all(len(m) < 2 for m in members):
            raise ValueError("balanced pairs need a class with at least two samples.")
        n_sim = n_pairs // 2 + n_pairs % 2 * rng.randint(2)
        i = np.empty(n_pairs, dtype=np.int64)
        j = np.empty(n_pairs, dtype=np.int64)
        # Similar pairs: a class drawn in proportion to its number of pairs, then two members.
        sizes = np.array([len(m) * (len(m) - 1) for m in members], dtype=np.float64)
        for t, c in enumerate(rng.choice(len(members), size=n_sim, p=sizes / sizes.sum())):
            i[t], j[t] = rng.choice(members[c], size=2, replace=False)
        # Dissimilar pairs: a first point, then a point of another class.
        for t in range(n_sim, n_pairs):
            i[t] = rng.randint(len(y))
            others = np.flatnonzero(y_idx != y_idx[i[t]])
            j[t] = others[rng.randint(len(others))]
        order = rng.permutation(n_pairs)
        i, j = i[order], j[order]
    labels = np.where(y[i] == y[j], 1, -1)
    return np.stack([X[i], X[j]], axis=1), labels, np.stack([i, j], axis=1)


def make_triplets(X, y, n_triplets, random_state=None):
    """Sample triplets (anchor, positive of the anchor's class, negative of another class).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_triplets : int
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    triplets : ndarray of shape (n_triplets, 3, n_features)
    indices : ndarray of shape (n_triplets, 3)

    Examples
    --------
    >>> from skrobust.datasets import load_wine, make_triplets
    >>> X, y = load_wine()
    >>> triplets, idx = make_triplets(X, y, 4, random_state=0)
    >>> triplets.shape, bool((y[idx[:, 0]] == y[idx[:, 1]]).all())
    ((4, 3, 13), True)
    """
    X, y = check_X_y(X, y, dtype=np.float64)
    n_triplets = _check_count(n_triplets, "n_triplets")
    rng = check_random_state(random_state)
    _, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    anchors = np.flatnonzero(counts[y_idx] >= 2)
    if len(counts) < 2 or anchors.size == 0:
        raise ValueError("triplets need two classes and a class with at least two samples.")
    idx = np.empty((n_triplets, 3), dtype=np.int64)
    for t in range(n_triplets):
        a = anchors[rng.randint(len(anchors))]
        same = np.flatnonzero(y_idx == y_idx[a])
        same = same[same != a]
        other = np.flatnonzero(y_idx != y_idx[a])
        idx[t] = a, same[rng.randint(len(same))], other[rng.randint(len(other))]
    return X[idx], idx
