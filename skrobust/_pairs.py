"""metric-learn's pair vocabulary, shared by skrobust's learners.

Every learner that advertises its metric through ``__skrobust_target__`` gets, from
:class:`PairDistanceMixin`, the methods metric-learn users know, with metric-learn's
meanings: ``pair_distance`` and ``score_pairs`` are ``sqrt(D)``, ``pair_score`` is
``-sqrt(D)`` (skrobust's thresholds are on the squared distance ``D``).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._validation import check_pairs

__all__ = ["PairDistanceMixin"]


class PairDistanceMixin:
    """``get_metric``, ``pair_distance``, ``score_pairs`` and ``pair_score`` of a fitted
    learner, read from its ``__skrobust_target__()``."""

    def get_metric(self):
        """A function ``metric(u, v)`` returning ``sqrt(D(u, v))``, for use by scipy or kNN.

        Returns
        -------
        metric : callable
            ``metric(u, v)`` of two points of shape (n_features,), a float.

        Examples
        --------
        >>> import numpy as np
        >>> from skrobust import RobustMetricLearner
        >>> X, y = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [0.9, 1.0]]), [0, 0, 1, 1]
        >>> metric = RobustMetricLearner(max_iter=5).fit(X, y).get_metric()
        >>> bool(metric(X[0], X[1]) < metric(X[0], X[2]))
        True
        """
        check_is_fitted(self)
        target = self.__skrobust_target__()

        def metric(u, v):
            u = np.asarray(u, dtype=np.float64).reshape(1, -1)
            v = np.asarray(v, dtype=np.float64).reshape(1, -1)
            return float(np.sqrt(target.squared_distances(u, v)[0]))

        return metric

    def pair_distance(self, pairs):
        """Distances ``sqrt(D)`` of pairs (metric-learn's meaning).

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs of points.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            The learned (unsquared) distance of each pair. Thresholds in skrobust are on its
            square, ``D``.
        """
        check_is_fitted(self)
        pairs = check_pairs(pairs, n_features=self.n_features_in_)
        return np.sqrt(self.__skrobust_target__().squared_pair_distances(pairs))

    def score_pairs(self, pairs):
        """Same as :meth:`pair_distance` (metric-learn's older name, kept without warning).

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs of points.

        Returns
        -------
        distances : ndarray of shape (n_pairs,)
            ``sqrt(D)`` of each pair.
        """
        return self.pair_distance(pairs)

    def pair_score(self, pairs):
        """``-sqrt(D)`` of pairs: higher means more similar (metric-learn's meaning).

        Parameters
        ----------
        pairs : array-like of shape (n_pairs, 2, n_features)
            Pairs of points.

        Returns
        -------
        scores : ndarray of shape (n_pairs,)
            ``-sqrt(D)`` of each pair.
        """
        return -self.pair_distance(pairs)
