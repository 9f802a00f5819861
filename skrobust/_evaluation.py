"""Robustness of a kNN over a learned metric: clean, attacked and certified accuracy.

Shared by ``python -m skrobust`` and the benchmark scripts, so every table in the project
measures the same thing the same way.
"""

from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from ._attack import AckMetricAttack
from ._knn_certificate import certified_knn_accuracy
from ._threads import single_threaded
from .metrics import make_robust_scorer, robust_accuracy_score
from .model_selection import DEFENCE_GRIDS, most_robust_within

# The paper's kNN attack, table 5: step 0.01, 20 iterations, M = 10 references.
PAPER_ATTACK = {"step_size": 0.01, "max_iter": 20, "n_neighbors": 10}


# The paper's defence with its default weights alpha_j = 1/k (eq. 21), k = 3.
PAPER_DEFENCE = {"regularization": "eig", "eig_k": 3, "alpha": 1.0}


def eq23_ensemble(eps):
    """The project's former "strong" attack: an ensemble of eq. (23) runs (longer runs with
    steps scaled to ``eps``, more references, five seeded random restarts). Kept to compare
    with :class:`~skrobust.CascadeKNNAttack`, which replaced it; a point counts as robust only
    if it survives every member."""
    if eps == 0:
        return [PAPER_ATTACK]
    return [
        PAPER_ATTACK,
        {"step_size": eps / 10, "max_iter": 100, "n_neighbors": 10},
        {"step_size": eps / 4, "max_iter": 100, "n_neighbors": 20},
        {"step_size": eps / 20, "max_iter": 200, "n_neighbors": 30},
        {
            "step_size": eps / 10,
            "max_iter": 100,
            "n_neighbors": 10,
            "n_restarts": 5,
            "random_state": 0,
        },
    ]


def attacked_accuracy(pipeline, X, y, eps, attack="strong", feature_range=(0.0, 1.0)):
    """Accuracy of a fitted ``Pipeline(metric, KNeighborsClassifier)`` on adversarial points:
    an upper bound on its true robust accuracy.

    ``attack`` is ``"strong"`` (:class:`~skrobust.CascadeKNNAttack`, its restarts seeded
    with 0 so tables are reproducible), ``"paper"`` (eq. 23), a ``CascadeKNNAttack`` used as
    a template, or a list of :class:`~skrobust.AckMetricAttack` parameter dicts (an ensemble:
    a point counts as correct only if it is classified correctly clean and after every
    member, each starting from the clean point).
    """
    # Small products run faster on one BLAS thread, above all on a busy machine.
    with single_threaded(X.size < 1e6):
        if not isinstance(attack, list):
            params = {"random_state": 0} if attack == "strong" else None
            return float(
                robust_accuracy_score(
                    pipeline, X, y, eps=eps, attack=attack, feature_range=feature_range,
                    attack_params=params,
                )
            )  # fmt: skip
        frozen = FrozenEstimator(pipeline)
        correct = pipeline.predict(X) == y
        for params in attack:
            member = AckMetricAttack(
                frozen, eps=eps, mode="knn", feature_range=feature_range, **params
            ).fit()
            result = member.attack(X[correct], y[correct])
            correct[correct] = result.predictions_after[0] == y[correct]
            if not correct.any():
                break
    return float(correct.mean())


def certified_accuracy(pipeline, X, y, eps, method="pairwise"):
    """Fraction of ``X`` classified correctly with a vote that provably cannot flip."""
    return float(certified_knn_accuracy(pipeline, X, y, eps, method=method))


# The defences whose strength is tuned, each with its starting grid (DEFENCE_GRIDS) and the
# name the tables print.
TUNED_DEFENCES = {
    "Spe-ML": "spectral",
    "Fro-ML": "frobenius",
    "Eig-ML (paper)": "eig",
    "certified (triangle)": "triangle",
    "certified (pairwise)": "pairwise",
}


def strength_label(params):
    """The tuned part of a learner's parameters, short: ``alpha=0.2`` or ``robust_eps=0.05``."""
    key = "robust_eps" if "robust_eps" in params else "alpha"
    return f"{key}={params[key]:g}"


def choose_strengths(pipeline, grid, X, y, eps_values, *, folds=3, tolerance=0.02, seed=0):
    """A defence's strength chosen on training data, once per budget, as a user would.

    One ``GridSearchCV`` over ``grid`` (keys of ``pipeline``'s first step, unprefixed) with
    ``folds`` stratified folds, scored clean and under the strong attack at each budget of
    ``eps_values``; per budget, :func:`~skrobust.model_selection.most_robust_within`
    (``tolerance``) picks the candidate. Every fit is shared by all budgets.

    Returns
    -------
    chosen : dict
        ``{eps: params}``, the chosen grid point per budget (unprefixed keys).
    search : GridSearchCV
        The fitted search (``refit=False``), for its ``cv_results_``.
    """
    step = pipeline.steps[0][0]
    scoring = {"clean": "accuracy"}
    for eps in eps_values:
        scoring[f"strong@{eps:g}"] = make_robust_scorer(
            eps=eps, feature_range=(0.0, 1.0), attack_params={"random_state": 0}
        )
    search = GridSearchCV(
        clone(pipeline),
        {f"{step}__{key}": values for key, values in grid.items()},
        scoring=scoring,
        refit=False,
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
    )
    # Small products run faster on one BLAS thread, above all on a busy machine.
    with single_threaded():
        search.fit(X, y)
    chosen = {}
    for eps in eps_values:
        index = most_robust_within("clean", f"strong@{eps:g}", tolerance)(search.cv_results_)
        params = search.cv_results_["params"][index]
        chosen[eps] = {key.split("__", 1)[1]: value for key, value in params.items()}
    return chosen, search


def defence_grid(name, overrides=None):
    """The starting grid of a defence of :data:`TUNED_DEFENCES`, its strength values
    replaced by ``overrides[name]`` when given."""
    grid = dict(DEFENCE_GRIDS[TUNED_DEFENCES.get(name, name)])
    if overrides and name in overrides:
        key = "robust_eps" if "robust_eps" in grid else "alpha"
        grid[key] = list(overrides[name])
    return grid
