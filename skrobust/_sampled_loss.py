"""The sampled objective of RobustMetricLearner: the loss on random subsets of the points.

The all-pairs loss of eq. (20) costs ``O(N^2 m)`` per step: hours for ``N = 100,000``. The
sampled objective draws a subset ``B`` of ``batch_size`` points uniformly without
replacement and evaluates the learner's own loss on ``B`` alone, with its own engine:

- ``certificate="triangle"`` (the paper's hinge, or certified training with
  ``robust_eps``): the all-pairs loss over the pairs ``i < j`` of ``B``. The pairs of a
  uniform subset are a uniform sample of all pairs, so the loss and its gradient are unbiased
  estimates of the all-pairs ones; a step costs ``O(|B|^2 m + N d m / resample_every)``
  whatever ``N`` is.
- ``certificate="pairwise"``: the mined certified-margin loss of
  :mod:`skrobust._margin_loss` with targets and rivals mined among the points of ``B``
  (one ``|B| x |B|`` distance matrix, never ``N x N``). Neighbours within a subset are
  farther apart than within the whole set, so this trains the margin at a coarser scale
  than mining over all ``N`` points would: an approximation.

A subset is kept for ``resample_every`` consecutive steps, then a new one is drawn; the
optimiser compares objectives only within one subset (``mined_anew``, as for re-mined
triples), so the returned ``W`` is the best iterate of the last subset. When
``N <= batch_size`` the subset is the whole set and the objective is the full one.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["SampledObjective", "sampled_objective"]

# Points per subset: the all-pairs loss of 2,048 points x 64 components costs about as much
# as one step of the full loss on 900 points, so a step's cost no longer grows with N.
SAMPLE_SIZE = 2048
# Steps per subset; the certified-margin loss re-mines at the same cadence.
RESAMPLE_EVERY = 10
# objective="auto" keeps the full loss up to this many training points (about 3 minutes for
# 500 steps at 64 features on 2 cores) and samples above it.
AUTO_FULL_MAX_SAMPLES = 10_000


class SampledObjective:
    """The loss on a random subset of the points, redrawn every ``resample_every`` calls.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y_idx : ndarray of int, shape (n_samples,)
    objective_on : callable
        ``objective_on(X_subset, y_subset)`` returns the loss of the subset, a callable
        ``loss_grad(W, **kwargs) -> (loss, grad)``.
    batch_size : int
        Points per subset (``< n_samples``).
    resample_every : int
        Calls (optimisation steps) per subset.
    random_state : int, RandomState instance or None
        Draws the subsets.
    """

    def __init__(self, X, y_idx, objective_on, batch_size, resample_every, random_state):
        self.X, self.y_idx, self.objective_on = X, y_idx, objective_on
        self.batch_size, self.resample_every = batch_size, resample_every
        self._rng = check_random_state(random_state)
        self.n_calls = 0

    def __call__(self, W, **kwargs):
        self.mined_anew = self.n_calls % self.resample_every == 0
        if self.mined_anew:
            # Sorted: the rows of a subset are read in memory order.
            rows = np.sort(self._rng.choice(len(self.X), self.batch_size, replace=False))
            self._subset_loss = self.objective_on(self.X[rows], self.y_idx[rows])
        self.n_calls += 1
        return self._subset_loss(W, **kwargs)


def sampled_objective(X, y_idx, objective_on, batch_size, resample_every, random_state):
    """The objective the learner descends with ``objective="sampled"``: the full loss when
    ``X`` has at most ``batch_size`` points, else a :class:`SampledObjective`."""
    if len(X) <= batch_size:
        return objective_on(X, y_idx)
    return SampledObjective(X, y_idx, objective_on, batch_size, resample_every, random_state)
