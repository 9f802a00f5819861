"""Retrieval metrics of an embedding, natural and under attack.

How the deep-metric-learning papers (RML, TLA, adversarial deep metric learning) measure a
metric: every query ranks a gallery by the learned distance.

- :func:`recall_at_k`: the fraction of queries with a point of their own class among their
  ``k`` nearest gallery points. A query never retrieves itself: when the query set and the
  gallery share a point (by its row in ``X``, not by its value), that point is left out of
  its own ranking. A tie between a point of the query's class and a point of another class
  counts against the query, so the score does not depend on the order of the gallery.
- :func:`nmi_score`: normalised mutual information between the classes and a k-means
  clustering of the embedded points into as many clusters as classes.
- :func:`retrieval_attack`: PGD on the retrieval loss; only queries move, the gallery stays
  natural. The loss of a query ``q`` is the triplet margin ``D(q, p) - D(q, n)`` with ``p``
  its nearest gallery point of its class and ``n`` its nearest gallery point of another
  class, both re-found at every step; ascent by signed gradient steps of ``step_size``
  (default ``2.5 eps / max_iter``, Madry et al.'s rule), projected onto the L-infinity ball
  of radius ``eps`` (and the box), 5 steps by default as in RML's PGD-5 tables, no random
  start. Each query keeps its iterate of largest loss, the clean point included, so its
  Recall@1 never rises under attack. Attacked scores are **upper bounds** on the scores
  under the worst attack within the budget.
- :func:`retrieval_scores` and :func:`make_retrieval_scorer`: all of it at once, for a
  fitted model or in ``GridSearchCV``.

Any model :func:`skrobust.targets.as_target` reads is measured (linear or a network), and a
``Pipeline`` ending with a ``KNeighborsClassifier`` through its metric.
"""

import numbers
import re

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_consistent_length, column_or_1d

from ._retrieval_attack import query_blocks, query_distances, retrieval_pgd
from ._target import as_target, unwrap_frozen
from ._validation import _as_finite_float_array, check_feature_range, check_in_box

__all__ = [
    "make_retrieval_scorer",
    "nmi_score",
    "recall_at_k",
    "retrieval_attack",
    "retrieval_scores",
]


def _retrieval_model(estimator):
    """The target of a fitted model (a ``Pipeline`` may end with a kNN classifier)."""
    model = unwrap_frozen(estimator)
    if isinstance(model, Pipeline) and isinstance(
        unwrap_frozen(model.steps[-1][1]), KNeighborsClassifier
    ):
        model = model[:-1]
    return as_target(model)


def _check_labels(y, n, name="y"):
    y = column_or_1d(y)
    if len(y) != n:
        raise ValueError(f"{name} must have one label per row ({n}), got {len(y)}.")
    return y


def _check_embedding(E, name):
    E = _as_finite_float_array(E, name)
    if E.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (n_samples, n_components), got {E.shape}.")
    return E


def _check_ks(k):
    """One k or several: a 1-d tuple of positive ints, and whether a scalar was given."""
    scalar = np.ndim(k) == 0
    ks = (k,) if scalar else tuple(k)
    if not ks or not all(isinstance(v, numbers.Integral) and v >= 1 for v in ks):
        raise ValueError(f"k must be a positive integer or a list of them, got {k!r}.")
    return tuple(int(v) for v in ks), scalar


def _check_rows(rows, n, name):
    """Row indices into ``X``: ``None`` (all), integer indices or a boolean mask."""
    if rows is None:
        return np.arange(n)
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise ValueError(f"{name} as a boolean mask must have shape ({n},), got {rows.shape}.")
        rows = np.flatnonzero(rows)
    elif rows.dtype.kind not in "iu" or rows.ndim != 1:
        raise TypeError(f"{name} must be None, a boolean mask or 1-d integer row indices.")
    if rows.size == 0:
        raise ValueError(f"{name} selects no rows.")
    if rows.min() < -n or rows.max() >= n:
        raise ValueError(f"{name} has row indices outside [0, {n}).")
    rows = rows % n
    if len(np.unique(rows)) != len(rows):
        raise ValueError(f"{name} repeats a row index.")
    return rows


def _self_index(query, gallery):
    """For each query row, its position in the gallery, or -1 when it is not there."""
    position = np.full(max(query.max(), gallery.max()) + 1, -1, dtype=np.int64)
    position[gallery] = np.arange(len(gallery))
    return position[query]


def _missing_positives(yq, yg, self_index):
    """Queries whose class has no other point in the gallery: Recall@K is undefined."""
    classes, counts = np.unique(yg, return_counts=True)
    count = dict(zip(classes.tolist(), counts.tolist(), strict=True))
    available = np.array([count.get(label, 0) for label in yq.tolist()]) - (self_index >= 0)
    return np.flatnonzero(available <= 0)


def recall_at_k(query_embedding, query_labels, gallery_embedding, gallery_labels, k=1, *,
                self_index=None):  # fmt: skip
    """Recall@K of embedded queries against an embedded gallery.

    A query scores a hit at ``k`` when a gallery point of its class is among its ``k``
    nearest gallery points (squared Euclidean distance of the embeddings): when fewer than
    ``k`` points of other classes are at most as far as its nearest point of its own class
    (ties count against the query).

    Parameters
    ----------
    query_embedding : array-like of shape (n_queries, n_components)
        Embedded queries.
    query_labels : array-like of shape (n_queries,)
        Their classes.
    gallery_embedding : array-like of shape (n_gallery, n_components)
        Embedded gallery.
    gallery_labels : array-like of shape (n_gallery,)
        Its classes.
    k : int or sequence of int, default=1
        The cut-off(s).
    self_index : array-like of int of shape (n_queries,) or None, default=None
        For each query, the gallery row holding the query's own point (left out of its
        ranking), or -1 when it is not in the gallery. ``None``: no query is in the gallery.

    Returns
    -------
    recall : float, or ndarray of shape (n_k,) when ``k`` is a sequence
        Fraction of queries with a hit at each ``k``.

    Raises
    ------
    ValueError
        If a query has no gallery point of its class other than itself (its Recall@K is
        undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.retrieval import recall_at_k
    >>> E = np.array([[0.0], [0.1], [1.0], [1.05], [0.6]])
    >>> y = np.array([0, 0, 1, 1, 0])
    >>> recall_at_k(E, y, E, y, k=[1, 2, 3], self_index=np.arange(5)).tolist()
    [0.8, 0.8, 1.0]

    The last query's nearest point of its class, 0.1, comes third, behind 1.0 and 1.05.
    """
    Eq = _check_embedding(query_embedding, "query_embedding")
    Eg = _check_embedding(gallery_embedding, "gallery_embedding")
    if Eq.shape[1] != Eg.shape[1]:
        raise ValueError(
            f"query_embedding has {Eq.shape[1]} columns, gallery_embedding {Eg.shape[1]}."
        )
    yq = _check_labels(query_labels, len(Eq), "query_labels")
    yg = _check_labels(gallery_labels, len(Eg), "gallery_labels")
    if self_index is None:
        self_index = np.full(len(Eq), -1)
    self_index = np.asarray(self_index)
    if self_index.shape != (len(Eq),) or self_index.dtype.kind not in "iu":
        raise ValueError(f"self_index must hold {len(Eq)} integers, got {self_index!r}.")
    if np.any(self_index >= len(Eg)) or np.any(self_index < -1):
        raise ValueError(f"self_index must lie in [-1, {len(Eg)}).")
    ks, scalar = _check_ks(k)
    return _recall(Eq, yq, Eg, yg, self_index, ks, scalar)


def _recall(Eq, yq, Eg, yg, self_index, ks, scalar):
    missing = _missing_positives(yq, yg, self_index)
    if len(missing):
        raise ValueError(
            f"{len(missing)} queries (first: row {missing[0]}, class {yq[missing[0]]!r}) have "
            "no gallery point of their class besides themselves: their Recall@K is "
            "undefined. Drop them or add points of their class to the gallery."
        )
    ahead = np.empty(len(Eq), dtype=np.int64)
    for block in query_blocks(len(Eq)):
        D, same = query_distances(Eq[block], Eg, yq[block], yg, self_index[block])
        valid = ~np.isnan(D)
        d_pos = np.min(np.where(same & valid, D, np.inf), axis=1)
        ahead[block] = np.sum(~same & valid & (D <= d_pos[:, np.newaxis]), axis=1)
    recall = np.array([np.mean(ahead < k) for k in ks])
    return float(recall[0]) if scalar else recall


def nmi_score(embedding, y, *, random_state=None):
    """NMI between the classes and a k-means clustering of the embedding.

    Parameters
    ----------
    embedding : array-like of shape (n_samples, n_components)
        Embedded points.
    y : array-like of shape (n_samples,)
        Their classes; k-means looks for as many clusters as there are classes.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means (10 initialisations, the best kept).

    Returns
    -------
    nmi : float
        ``sklearn.metrics.normalized_mutual_info_score(y, clusters)``, in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.retrieval import nmi_score
    >>> E = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> nmi_score(E, [0, 0, 1, 1], random_state=0)
    1.0
    """
    E = _check_embedding(embedding, "embedding")
    y = _check_labels(y, len(E))
    n_clusters = len(np.unique(y))
    clusters = KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state).fit_predict(E)
    return float(normalized_mutual_info_score(y, clusters))


def _check_data(X, y):
    X = _as_finite_float_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n_samples, n_features), got shape {X.shape}.")
    y = column_or_1d(y)
    check_consistent_length(X, y)
    return X, y


def _check_attack_budget(eps, step_size, max_iter):
    if not (isinstance(eps, numbers.Real) and np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
    if not (isinstance(max_iter, numbers.Integral) and max_iter >= 1):
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}.")
    if step_size is None:
        return 2.5 * float(eps) / max_iter
    if not (isinstance(step_size, numbers.Real) and np.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0 or None, got {step_size!r}.")
    return float(step_size)


def retrieval_attack(estimator, X, y, *, eps, step_size=None, max_iter=5, query=None,
                     gallery=None, feature_range=None):  # fmt: skip
    """Adversarial queries: PGD on the retrieval loss against a fitted embedding.

    Each query ``q`` ascends ``D(f(q), f(p)) - D(f(q), f(n))``, ``p`` and ``n`` its nearest
    gallery points of its own and of another class, re-found every step (see the module
    docstring). The gallery does not move.

    Parameters
    ----------
    estimator : fitted model
        Anything :func:`skrobust.targets.as_target` reads (a linear metric, a network, a
        ``MetricTarget``, a ``FrozenEstimator`` of one, a ``Pipeline`` of affine scalers and
        one), or such a ``Pipeline`` ending with a ``KNeighborsClassifier``.
    X : array-like of shape (n_samples, n_features)
        The evaluation points, queries and gallery.
    y : array-like of shape (n_samples,)
        Their classes.
    eps : float
        L-infinity budget of each query, in the units of ``X``.
    step_size : float or None, default=None
        Signed-gradient step; ``None``: ``2.5 eps / max_iter``.
    max_iter : int, default=5
        PGD steps (RML's tables: 5).
    query, gallery : array-like of int or bool, or None, default=None
        Rows of ``X`` that are queries and gallery points (``None``: all rows). A row in both
        is left out of its own ranking.
    feature_range : tuple (lo, hi) or None, default=None
        The box adversarial queries stay in; ``None`` for none. Queries must lie in it.

    Returns
    -------
    X_adv : ndarray of shape (n_queries, n_features)
        The adversarial queries, in the order of ``query``; each within ``eps`` of its
        clean query and inside the box.

    Examples
    --------
    >>> import numpy as np
    >>> from skrobust.retrieval import retrieval_attack
    >>> from skrobust.testing import FixedMetric
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [0.3, 0.0], [0.45, 0.0]])
    >>> y = [0, 0, 1, 1]
    >>> X_adv = retrieval_attack(FixedMetric(np.eye(2)).fit(), X, y, eps=0.05)
    >>> bool(np.abs(X_adv - X).max() <= 0.05 + 1e-12)
    True
    """
    X, y = _check_data(X, y)
    step_size = _check_attack_budget(eps, step_size, max_iter)
    box = check_feature_range(feature_range)
    query = _check_rows(query, len(X), "query")
    gallery = _check_rows(gallery, len(X), "gallery")
    model = _retrieval_model(estimator)
    if X.shape[1] != model.n_features:
        raise ValueError(f"X has {X.shape[1]} features, the model expects {model.n_features}.")
    box = check_in_box(X[query], box, "X[query]")
    self_index = _self_index(query, gallery)
    if eps == 0:
        return X[query].copy()
    return retrieval_pgd(
        model, X[query], y[query], model.embed(X[gallery]), y[gallery], self_index,
        float(eps), step_size, max_iter, box,
    )  # fmt: skip


def retrieval_scores(estimator, X, y, *, k=(1, 2, 4), nmi=True, eps=0.0, step_size=None,
                     max_iter=5, query=None, gallery=None, feature_range=None,
                     random_state=None):  # fmt: skip
    """Recall@K and NMI of a fitted embedding, natural (``eps=0``) or under attack.

    Parameters
    ----------
    estimator : fitted model
        As for :func:`retrieval_attack`.
    X : array-like of shape (n_samples, n_features)
        The evaluation points, queries and gallery.
    y : array-like of shape (n_samples,)
        Their classes.
    k : int or sequence of int, default=(1, 2, 4)
        Recall cut-offs.
    nmi : bool, default=True
        Also compute the NMI of the queries' embeddings (attacked ones when ``eps > 0``).
    eps : float, default=0.0
        Budget of :func:`retrieval_attack` on the queries; 0 for natural scores.
    step_size : float or None, default=None
        Of :func:`retrieval_attack`: ``None`` is ``2.5 eps / max_iter``.
    max_iter : int, default=5
        PGD steps of :func:`retrieval_attack`.
    feature_range : tuple (lo, hi) or None, default=None
        The box of :func:`retrieval_attack`; ``None`` for none.
    query, gallery : array-like of int or bool, or None, default=None
        Rows of ``X`` that are queries and gallery points (``None``: all rows, each query
        ranking all other points). A row in both is left out of its own ranking.
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means of the NMI.

    Returns
    -------
    scores : dict
        ``"recall@K"`` for each ``K`` of ``k`` and ``"nmi"``: floats. Under attack they are
        upper bounds on the scores under the worst attack within ``eps``.

    Examples
    --------
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from sklearn.preprocessing import minmax_scale
    >>> from sklearn.datasets import load_iris
    >>> from skrobust.retrieval import retrieval_scores
    >>> X, y = load_iris(return_X_y=True)
    >>> X = minmax_scale(X)
    >>> nca = NeighborhoodComponentsAnalysis(random_state=0).fit(X[::2], y[::2])
    >>> clean = retrieval_scores(nca, X[1::2], y[1::2], random_state=0)
    >>> attacked = retrieval_scores(nca, X[1::2], y[1::2], eps=0.05, random_state=0)
    >>> sorted(clean)
    ['nmi', 'recall@1', 'recall@2', 'recall@4']
    >>> bool(attacked["recall@1"] <= clean["recall@1"])
    True
    """
    X, y = _check_data(X, y)
    ks, _ = _check_ks(k)
    _check_attack_budget(eps, step_size, max_iter)
    query_rows = _check_rows(query, len(X), "query")
    gallery_rows = _check_rows(gallery, len(X), "gallery")
    model = _retrieval_model(estimator)
    if eps == 0:
        if X.shape[1] != model.n_features:
            raise ValueError(f"X has {X.shape[1]} features, the model expects {model.n_features}.")
        Xq = X[query_rows]
    else:
        Xq = retrieval_attack(
            estimator, X, y, eps=eps, step_size=step_size, max_iter=max_iter,
            query=query_rows, gallery=gallery_rows, feature_range=feature_range,
        )  # fmt: skip
    Eq, Eg = model.embed(Xq), model.embed(X[gallery_rows])
    yq = y[query_rows]
    recall = _recall(Eq, yq, Eg, y[gallery_rows], _self_index(query_rows, gallery_rows), ks, False)
    scores = {f"recall@{k}": float(r) for k, r in zip(ks, recall, strict=True)}
    if nmi:
        scores["nmi"] = nmi_score(Eq, yq, random_state=random_state)
    return scores


_METRIC = re.compile(r"recall@([1-9][0-9]*)|nmi")


def make_retrieval_scorer(metric="recall@1", *, eps=0.0, step_size=None, max_iter=5,
                          feature_range=None, random_state=None):  # fmt: skip
    """A scorer ``scorer(estimator, X, y)`` of retrieval on the test fold, for
    ``GridSearchCV`` and ``cross_validate``.

    Every point of the fold is a query ranking all the others (:func:`retrieval_scores`).

    Parameters
    ----------
    metric : str or list of str, default="recall@1"
        ``"recall@K"`` (any positive ``K``) or ``"nmi"``; a list makes the scorer return a
        dict of them (scikit-learn's multimetric form), computed with one attack.
    eps : float, default=0.0
        Budget of :func:`retrieval_attack` (0: natural scores).
    step_size : float or None, default=None
        Of :func:`retrieval_attack`: ``None`` is ``2.5 eps / max_iter``.
    max_iter : int, default=5
        PGD steps of :func:`retrieval_attack`.
    feature_range : tuple (lo, hi) or None, default=None
        The box of :func:`retrieval_attack`. The default, no box, keeps a test fold that
        strays outside the training fold's box from failing.
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means of the NMI.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``: a float, or a dict for a list of metrics.

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.neighbors import NeighborhoodComponentsAnalysis
    >>> from sklearn.datasets import load_iris
    >>> from skrobust.retrieval import make_retrieval_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> scorer = make_retrieval_scorer("recall@1", eps=0.1)
    >>> scores = cross_val_score(NeighborhoodComponentsAnalysis(random_state=0), X, y,
    ...                          scoring=scorer, cv=3)
    >>> bool(0 <= scores.min() <= scores.max() <= 1)
    True
    """
    single = isinstance(metric, str)
    metrics = [metric] if single else list(metric)
    if not metrics or not all(isinstance(m, str) and _METRIC.fullmatch(m) for m in metrics):
        raise ValueError(
            f"metric must be 'recall@K' (K a positive integer), 'nmi', or a list of them; "
            f"got {metric!r}."
        )
    ks = sorted({int(m.split("@")[1]) for m in metrics if m != "nmi"}) or [1]
    _check_attack_budget(eps, step_size, max_iter)
    check_feature_range(feature_range)

    def scorer(estimator, X, y):
        scores = retrieval_scores(
            estimator, X, y, k=ks, nmi="nmi" in metrics, eps=eps, step_size=step_size,
            max_iter=max_iter, feature_range=feature_range, random_state=random_state,
        )  # fmt: skip
        return scores[metric] if single else {m: scores[m] for m in metrics}

    return scorer
