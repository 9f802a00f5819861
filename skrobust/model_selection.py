"""Choosing a defence's strength on the training data, as a user does.

A defence trades clean accuracy for robustness, and how much of each a strength buys depends
on the data: a constant chosen on one data set decides nothing about another. Tune it by
cross-validation on the training data with a clean and a robust scorer, and pick with a rule
written down in advance: :func:`most_robust_within` is such a rule, as a ``refit`` callable
for :class:`~sklearn.model_selection.GridSearchCV`. :data:`DEFENCE_GRIDS` are documented
starting grids for each defence of :class:`~skrobust.RobustMetricLearner`.
"""

import numbers

import numpy as np

__all__ = ["DEFENCE_GRIDS", "most_robust_within"]

#: Starting grids of each defence's strength, as ``GridSearchCV`` parameter grids of
#: :class:`~skrobust.RobustMetricLearner` (prefix the keys with the pipeline step's name).
#: They span the strengths that moved robust kNN accuracy on the bundled data sets, from
#: barely defended to a clean-accuracy loss of several points; the strength itself is chosen
#: on the user's training data, never here.
DEFENCE_GRIDS = {
    "eig": {"regularization": ["eig"], "eig_k": [3], "alpha": [0.1, 1.0, 10.0]},
    "spectral": {"regularization": ["spectral"], "alpha": [0.05, 0.2, 1.0]},
    "frobenius": {"regularization": ["frobenius"], "alpha": [0.05, 0.2, 1.0]},
    "triangle": {"alpha": [0.0], "robust_eps": [0.02, 0.05, 0.1]},
    "pairwise": {"alpha": [0.0], "certificate": ["pairwise"], "robust_eps": [0.025, 0.05, 0.1]},
}


def most_robust_within(clean="clean", robust="robust", tolerance=0.02):
    """A ``refit`` rule: the most robust candidate whose clean score is near the best.

    Among the candidates whose mean cross-validated ``clean`` score is at least the best
    clean score minus ``tolerance``, the one with the highest mean ``robust`` score; ties go
    to the higher clean score, then to the first candidate in the grid's order.

    Parameters
    ----------
    clean : str, default="clean"
        Name of the clean scorer in ``GridSearchCV(scoring={...})``.
    robust : str, default="robust"
        Name of the robust (attacked or certified) scorer.
    tolerance : float, default=0.02
        How much clean score (2 points of accuracy by default) may be given up for
        robustness, ``>= 0``.

    Returns
    -------
    refit : callable
        ``refit(cv_results) -> int``, the index of the chosen candidate, for
        ``GridSearchCV(refit=...)``. ``search.best_index_`` is then that index;
        ``search.best_score_`` is not defined by scikit-learn for a callable refit.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from skrobust import RobustMetricLearner
    >>> from skrobust.datasets import load_wine
    >>> from skrobust.metrics import make_certified_scorer
    >>> from skrobust.model_selection import most_robust_within
    >>> X, y = load_wine()
    >>> pipe = make_pipeline(RobustMetricLearner(alpha=0.0, max_iter=50),
    ...                      KNeighborsClassifier(3))
    >>> search = GridSearchCV(
    ...     pipe, {"robustmetriclearner__robust_eps": [0.0, 0.05]}, cv=3,
    ...     scoring={"clean": "accuracy", "robust": make_certified_scorer(eps=0.05)},
    ...     refit=most_robust_within()).fit(X, y)
    >>> sorted(search.best_params_)
    ['robustmetriclearner__robust_eps']
    """
    if not isinstance(clean, str) or not isinstance(robust, str):
        raise TypeError(
            f"clean and robust must be scorer names (str), got {clean!r} and {robust!r}."
        )
    if (
        not isinstance(tolerance, numbers.Real)
        or isinstance(tolerance, bool)
        or not np.isfinite(tolerance)
        or tolerance < 0
    ):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}.")

    def refit(cv_results):
        try:
            clean_scores = np.asarray(cv_results[f"mean_test_{clean}"], dtype=np.float64)
            robust_scores = np.asarray(cv_results[f"mean_test_{robust}"], dtype=np.float64)
        except KeyError as missing:
            raise ValueError(
                f"GridSearchCV has no scorer {missing.args[0][len('mean_test_') :]!r}: pass "
                f"scoring={{{clean!r}: ..., {robust!r}: ...}}."
            ) from None
        if np.isnan(clean_scores).all():
            raise ValueError(f"Every candidate's {clean!r} score is NaN: no fit succeeded.")
        eligible = clean_scores >= np.nanmax(clean_scores) - tolerance
        # Lexicographic: robust score (NaN counts as the worst), then clean score; argmax
        # keeps the first of ties.
        key = np.where(np.isnan(robust_scores), -np.inf, robust_scores)
        best = np.flatnonzero(eligible & (key == key[eligible].max()))
        return int(best[np.argmax(clean_scores[best])])

    refit.clean, refit.robust, refit.tolerance = clean, robust, tolerance
    return refit
