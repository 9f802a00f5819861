"""The sampled objective of RobustMetricLearner: the loss on random subsets of the points.

The all-pairs loss of eq. (20) costs ``O(N^2 m)`` per step: hours for ``N = 100,000``. The
sampled objective draws a subset ``B`` of ``SAMPLE_SIZE`` points uniformly without
replacement and evaluates the learner's own loss on ``B`` alone, with its own engine:

- ``certificate="triangle"`` (the paper's hinge, or certified training with
  ``robust_eps``): the all-pairs loss over the pairs ``i < j`` of ``B``, a new subset at
  every step. The pairs of a uniform subset are a uniform sample of all pairs, so the loss
  and its gradient are unbiased estimates of the all-pairs ones; a step costs
  ``O(|B|^2 m)`` whatever ``N`` is.
- ``certificate="pairwise"``: the mined certified-margin loss of
  :mod:`skrobust._margin_loss` with targets and rivals mined among the points of ``B``
  (one ``|B| x |B|`` distance matrix, never ``N x N``), the subset kept for as many steps
  as the objective keeps its mined triples (``remine_every``), so mining stays a small part
  of a step's cost. Neighbours within a subset are farther apart than within the whole
  set, so this trains the margin at a coarser scale than mining over all ``N`` points
  would: an approximation.

The optimiser compares objectives only within one subset (``mined_anew``, as for re-mined
triples): the returned ``W`` is the best iterate of the last subset (with a new subset at
every step, the last iterate). When ``N <= SAMPLE_SIZE`` the subset is the whole set and the
objective is the full one.

The constants were chosen on ``make_classification(n_samples=110_000, n_features=64,
n_informative=32, n_classes=10, random_state=1)``, 5,000 training points, ``alpha=0``: 3-NN
accuracy of the full fit 0.375; subsets of 2,048 points redrawn at every step 0.378 and
0.372 (two seeds), kept for 10 steps 0.367 and 0.362, subsets of 4,096 kept for 10 steps
0.372 and 0.374 at four times the cost, of 1,024 kept for 10 steps 0.362 and 0.343.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["SampledObjective", "sampled_objective"]

# Points per subset: 2.1 million pairs per step, whatever the number of training points.
SAMPLE_SIZE = 2048
# objective="auto" keeps the full loss up to this many training points (a few minutes for
# 500 steps at 64 features on 2 cores) and samples above it.
AUTO_FULL_MAX_SAMPLES = 10_000


class SampledObjective:
    """The loss on a random subset of the points, redrawn after as many calls as the
    subset's objective keeps its mined terms (its ``remine_every``; 1 when it has none).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y_idx : ndarray of int, shape (n_samples,)
    objective_on : callable
        ``objective_on(X_subset, y_subset)`` returns the loss of the subset, a callable
        ``loss_grad(W, **kwargs) -> (loss, grad)``.
    batch_size : int
        Points per subset (``< n_samples``).
    random_state : int, RandomState instance or None
        Draws the subsets.
    """

    def __init__(self, X, y_idx, objective_on, batch_size, random_state):
        self.X, self.y_idx, self.objective_on = X, y_idx, objective_on
        self.batch_size = batch_size
        self._rng = check_random_state(random_state)
        self._calls_left = 0

    def __call__(self, W, **kwargs):
        self.mined_anew = self._calls_left == 0
        if self.mined_anew:
            # Sorted: the rows of a subset are read in memory order.
            rows = np.sort(self._rng.choice(len(self.X), self.batch_size, replace=False))
            self._subset_loss = self.objective_on(self.X[rows], self.y_idx[rows])
            self._calls_left = getattr(self._subset_loss, "remine_every", 1)
        self._calls_left -= 1
        return self._subset_loss(W, **kwargs)


def sampled_objective(X, y_idx, objective_on, batch_size, random_state):
    """The objective the learner descends with ``objective="sampled"``: the full loss when
    ``X`` has at most ``batch_size`` points, else a :class:`SampledObjective`."""
    if len(X) <= batch_size:
        return objective_on(X, y_idx)
    return SampledObjective(X, y_idx, objective_on, batch_size, random_state)
