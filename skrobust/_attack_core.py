"""What the sign-gradient attacks of every task share: the model, the inputs, the eps loop.

The tasks (:mod:`skrobust._pair_attack` for pairs and triplets, :mod:`skrobust._eq23_attack`
for a kNN) implement four steps; :class:`SignGradientAttack` runs them:

- ``_resolve(X, y)`` reads the fitted model through the model protocol (``fit``);
- ``_check_input(X)`` validates the attacked inputs;
- ``_begin(X, y, eps_values, box)`` allocates one call's state, ``_keep_clean(state, e)``
  and ``_attack_eps(state, e, eps, box, seed)`` fill it per budget (every budget starts from
  the clean input), ``_finish(state, eps_values)`` returns the task's result.

Random restarts are the composition :func:`first_success` ("best of several runs": each run
attacks the inputs no earlier run flipped, the first flip is kept), the one the strong kNN
attack (:class:`~skrobust.CascadeKNNAttack`) applies to its members. A restart draws its
random starts per input (:class:`~skrobust._row_random.RowRandomState` of ``seed``, the budget,
the run and the input's own values), so an input's result does not depend on the other inputs
of the call, nor on the chunking (:mod:`skrobust.dask`).
"""

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._row_random import RowRandomState
from ._target import KnnTarget, MetricTarget, unwrap_frozen
from ._threads import numba_threads
from ._validation import check_eps, check_feature_range, check_in_box

__all__ = [
    "AttackAPI",
    "SignGradientAttack",
    "TaskResult",
    "first_success",
    "is_fitted",
    "resolve_estimator",
    "restart_rng",
]

# Rows of a chunk times its widest array stay near this many doubles (16 MB), so the work
# memory is a few such arrays whatever the number of inputs (the results come on top).
CHUNK_ELEMENTS = 1 << 21


def is_fitted(estimator):
    """Whether ``estimator`` can be attacked as it is: a fitted estimator, or anything that
    cannot be fitted (a target, an object with only ``__skrobust_target__``), which the
    adapter then reads or refuses."""
    inner = unwrap_frozen(estimator)
    if isinstance(inner, MetricTarget | KnnTarget) or not hasattr(inner, "fit"):
        return True
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def resolve_estimator(estimator, X, y, what="model"):
    """``estimator`` itself when it is fitted, else a clone fitted on ``(X, y)``."""
    if is_fitted(estimator):
        return estimator
    if X is None:
        raise ValueError(
            f"The estimator {type(unwrap_frozen(estimator)).__name__} is not fitted: fit the "
            f"attack with data (fit(X, y)) to fit a clone of it, or pass a fitted {what} "
            "(wrapped in sklearn.frozen.FrozenEstimator to survive clone)."
        )
    return clone(estimator).fit(X, y)


def restart_rng(X, seed, e, r):
    """The generator of restart ``r`` at budget ``e`` for the inputs ``X``: its
    ``random_sample`` draws per input, from ``seed`` and the input's own values only."""
    return RowRandomState(X, [seed, e, r])


def first_success(n_inputs, n_runs, rows, run):
    """Run an attack ``n_runs`` times, each run on the inputs no earlier run flipped.

    Run 0 attacks every input, in chunks of ``rows`` given as slices; run ``r >= 1`` attacks
    the inputs still unflipped, in chunks given as index arrays. ``run(r, idx)`` records
    what it keeps for the inputs ``idx`` (run 0: its output for every input, the fallback;
    later runs: only the inputs they flip) and returns a boolean array, which of them it
    flipped. So each input keeps the first run that flips it, else run 0's output.

    Returns
    -------
    todo : ndarray of int
        The inputs no run flipped.
    """
    won = np.empty(n_inputs, dtype=bool)
    for start in range(0, n_inputs, rows):
        chunk = slice(start, min(n_inputs, start + rows))
        won[chunk] = run(0, chunk)
    todo = np.flatnonzero(~won)
    for r in range(1, n_runs):
        if not todo.size:
            break
        flipped = np.zeros(todo.size, dtype=bool)
        for start in range(0, todo.size, rows):
            flipped[start : start + rows] = run(r, todo[start : start + rows])
        todo = todo[~flipped]
    return todo


class AttackAPI(TransformerMixin, BaseEstimator):
    """What every attack estimator shares: ``transform`` at one budget, the numba threads
    of ``n_jobs``, and the tags (fitted on a model, not on data)."""

    def transform(self, X):
        """Adversarial versions of ``X`` at the single budget ``eps``.

        Parameters
        ----------
        X : array-like
            The inputs of the task, clean, inside ``feature_range``.

        Returns
        -------
        X_adv : ndarray of the shape of ``X``
        """
        check_is_fitted(self)
        eps, scalar = check_eps(self.eps)
        if not scalar:
            raise ValueError("transform needs a single eps; use attack(X, eps=[...]) for several.")
        return self.attack(X, eps=float(eps[0])).adversarial[0]

    def _n_threads(self):
        """Threads of the numba kernels (see :func:`skrobust._threads.numba_threads`)."""
        return numba_threads(self.n_jobs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = False
        return tags


class SignGradientAttack(AttackAPI):
    """Base of the task attacks: fit, transform, and the loop over budgets.

    Not for direct use: :class:`~skrobust.PairAttack`, :class:`~skrobust.TripletAttack`
    and :class:`~skrobust.KNNAttack` are the attacks.
    """

    _parameter_constraints: dict = {
        "estimator": "no_validation",
        "eps": [Interval(numbers.Real, 0, None, closed="left"), "array-like"],
        "step_size": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "feature_range": [tuple, list, None],
        "n_restarts": [Interval(numbers.Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        # scikit-learn's meaning: 0 is invalid, -1 all threads, -2 all but one, ...
        "n_jobs": [
            Interval(numbers.Integral, None, -1, closed="right"),
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        "verbose": ["verbose"],
    }

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X=None, y=None):
        """Resolve the attacked model (fitting a clone of it if it is not fitted).

        Parameters
        ----------
        X : array-like, default=None
            Only used to fit an unfitted ``estimator`` (and, for :class:`KNNAttack` over a
            bare metric, as the references).
        y : array-like, default=None
            Labels of ``X``.

        Returns
        -------
        self : object
            The fitted attack.
        """
        self._box = check_feature_range(self.feature_range)
        check_eps(self.eps)
        X, y = self._fit_data(X, y)
        self.estimator_ = resolve_estimator(self.estimator, X, y)
        self._resolve(X, y)
        return self

    def _fit_data(self, X, y):
        """Validate the data given to :meth:`fit` (only to fit an unfitted model here)."""
        return X, y

    def attack(self, X, y=None, eps=None):
        """Attack ``X`` at each budget of ``eps``, each from the clean input.

        Parameters
        ----------
        X : array-like
            The inputs of the task, clean, inside ``feature_range``.
        y : array-like of shape (n_samples,), default=None
            kNN only: the labels of the points (see :class:`KNNAttack`); ignored otherwise.
        eps : float or array-like of float, default=None
            Budgets; ``None`` uses ``self.eps``.

        Returns
        -------
        result : PairAttackResult, TripletAttackResult or KNNAttackResult
            The task's result, one entry per budget.
        """
        check_is_fitted(self)
        eps_values, _ = check_eps(self.eps if eps is None else eps)
        X = self._check_input(X)
        result = self._run(X, y, eps_values)
        if self.verbose:
            name = type(self).__name__
            for e, rate in zip(eps_values, result.success_rate, strict=True):
                print(f"[{name}] eps={e:g}: success rate {rate:.3f}")
        return result

    def _run(self, X, y, eps_values):
        """The loop over budgets on validated inputs ``X``."""
        # Widened by the few ulps X may overshoot the box (see check_in_box), never clipped.
        box = check_in_box(X, self._box)
        state = self._begin(X, y, eps_values, box)
        seed = self._restart_seed()
        for e, eps in enumerate(eps_values):
            if eps == 0.0 or self.max_iter == 0:
                self._keep_clean(state, e)
            else:
                self._attack_eps(state, e, float(eps), box, seed)
        return self._finish(state, eps_values)

    def _restart_seed(self):
        """One seed per call for the random starts of the restarts; each input's starts are
        drawn from it and the input's own values (:func:`restart_rng`), so they do not
        depend on which inputs share a chunk."""
        if not self.n_restarts:
            return None
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))


@dataclass(eq=False)
class TaskResult:
    """What every task's result holds; the leading axis runs over ``eps``, the next one over
    the attacked inputs."""

    eps: np.ndarray
    adversarial: np.ndarray
    success: np.ndarray

    @property
    def success_rate(self):
        """Fraction of inputs whose prediction changed, per eps: shape (n_eps,)."""
        return self.success.mean(axis=1)
