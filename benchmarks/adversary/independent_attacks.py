"""Independent attacks on a kNN over a learned linear (Mahalanobis) metric.

Written without reading skrobust's own kNN attack, to check it from outside. Every attack
has the signature ``attack(pipeline, X, y, eps, feature_range=(0.0, 1.0)) -> X_adv`` and
works on any fitted ``Pipeline([... affine steps ..., KNeighborsClassifier])``: the steps
before the kNN (scalers, a metric learner with ``components_``) are folded into one affine
map ``x -> G x + g`` by probing them, and the kNN's own references ``knn._fit_X`` and
labels ``knn._y`` are read back.

Threat model: ``x' = x + delta`` with ``||delta||_inf <= eps`` and ``x'`` inside the box
``[lo, hi]^d``. Row ``i`` of ``X_adv`` differs from ``X[i]`` only where the attack found a
point that ``pipeline.predict`` classifies as something other than ``y[i]``, inside the
budget and the box up to ``TOL`` (the points are clipped onto the feasible box, so in
practice the excess is 0 or one rounding). Rows where nothing was found are ``X[i]``
itself. A broken point therefore always is a real counterexample, and robust accuracy
measured from these points is an UPPER bound.

The attacks search with a folded copy of the model (numpy distances, the same vote as
scikit-learn: majority, ties to the first class), and only ``pipeline.predict`` decides.
The vote margin they optimise is exact for two classes; with more classes it is a
heuristic (a rival class taking a strict majority is sufficient, not necessary).

Use from another script::

    import sys; sys.path.insert(0, "benchmarks/adversary")
    from independent_attacks import ATTACKS, union_attack, is_broken
    X_adv = ATTACKS["lp"](pipe, X_test, y_test, 0.05, (0.0, 1.0))
    broken = is_broken(pipe, X_test, y_test, X_adv, 0.05, (0.0, 1.0))
"""

from itertools import combinations

import numpy as np
from scipy.optimize import linprog, lsq_linear
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils import check_random_state

# Slack allowed on the budget and the box when a returned point is checked.
TOL = 1e-9
# An LP solution counts as a flip only when the rival is ahead by this much (in squared
# distance, relative to the scale of the distances), so solver round-off cannot fake one.
_LP_MARGIN = 1e-9


class FoldedKNN:
    """A fitted pipeline read back as ``z = G x + g`` and a uniform-vote kNN on ``refs``."""

    def __init__(self, pipeline, random_state=0):
        knn = pipeline[-1]
        if not isinstance(knn, KNeighborsClassifier):
            raise TypeError(f"the last step must be a KNeighborsClassifier, got {type(knn)}.")
        if knn.weights != "uniform":
            raise ValueError(f"only weights='uniform' is handled, got {knn.weights!r}.")
        if not (
            knn.effective_metric_ == "euclidean"
            or (knn.effective_metric_ == "minkowski" and knn.effective_metric_params_["p"] == 2)
        ):
            raise ValueError(f"only the Euclidean kNN is handled, got {knn.effective_metric_}.")
        self.k = int(knn.n_neighbors)
        self.refs = np.asarray(knn._fit_X, dtype=np.float64)
        self.labels = np.asarray(knn._y).ravel()
        self.classes = knn.classes_
        self.n_classes = len(self.classes)
        d = pipeline.n_features_in_
        head = pipeline[:-1]
        probe = np.vstack([np.zeros(d), np.eye(d)])
        T = np.asarray(head.transform(probe), dtype=np.float64) if len(head) else probe
        self.g = T[0]
        self.G = (T[1:] - T[0]).T
        rng = check_random_state(random_state)
        check = rng.uniform(-1.0, 2.0, size=(8, d))
        got = np.asarray(head.transform(check)) if len(head) else check
        scale = max(1.0, float(np.abs(got).max()))
        if not np.allclose(got, self.embed(check), atol=1e-8 * scale, rtol=1e-8):
            raise ValueError("the steps before the kNN are not an affine map.")
        self.ref_sq = np.einsum("ij,ij->i", self.refs, self.refs)
        # ||G||_{inf->2} <= sum of the column norms: bounds how far the embedding moves.
        self.K = float(np.linalg.norm(self.G, axis=0).sum())

    def embed(self, X):
        return X @ self.G.T + self.g

    def sqdist(self, X):
        """Squared distances in the embedding, shape (n_points, n_refs)."""
        Z = self.embed(np.atleast_2d(X))
        D = np.einsum("ij,ij->i", Z, Z)[:, None] - 2.0 * Z @ self.refs.T + self.ref_sq
        return np.maximum(D, 0.0)

    def margin(self, X, c):
        """Vote margin of class index ``c`` at each row of ``X`` (< 0: some rival class has
        a strict majority), in squared distance:
        ``D(x, m-th rival) - D(x, (k-m+1)-th own)`` with ``m = k // 2 + 1``,
        minimised over the rival classes."""
        D = self.sqdist(X)
        m = self.k // 2 + 1
        own = np.sort(D[:, self.labels == c], axis=1)
        own_kth = own[:, self.k - m] if own.shape[1] > self.k - m else np.full(len(D), np.inf)
        best = np.full(len(D), np.inf)
        for r in range(self.n_classes):
            if r == c:
                continue
            riv = D[:, self.labels == r]
            if riv.shape[1] < m:
                continue
            riv_m = np.partition(riv, m - 1, axis=1)[:, m - 1]
            best = np.minimum(best, riv_m - own_kth)
        return best

    def margin_grad(self, X, c):
        """Margin and its gradient in ``x`` (the two references that set it)."""
        D = self.sqdist(X)
        m = self.k // 2 + 1
        own_idx = np.flatnonzero(self.labels == c)
        a = own_idx[np.argsort(D[:, own_idx], axis=1)[:, self.k - m]]
        best = np.full(len(D), np.inf)
        b = np.zeros(len(D), dtype=np.intp)
        for r in range(self.n_classes):
            if r == c:
                continue
            riv_idx = np.flatnonzero(self.labels == r)
            if len(riv_idx) < m:
                continue
            bb = riv_idx[np.argpartition(D[:, riv_idx], m - 1, axis=1)[:, m - 1]]
            val = D[np.arange(len(D)), bb] - D[np.arange(len(D)), a]
            better = val < best
            best[better], b[better] = val[better], bb[better]
        # d/dx ||G x + g - r||^2 = 2 G^T (z - r), so the margin's gradient is 2 G^T (a - b).
        grad = 2.0 * (self.refs[a] - self.refs[b]) @ self.G
        return best, grad

    def predict_idx(self, X):
        D = self.sqdist(X)
        nn = np.argsort(D, axis=1, kind="stable")[:, : self.k]
        votes = np.zeros((len(D), self.n_classes), dtype=np.int64)
        for j in range(self.k):
            votes[np.arange(len(D)), self.labels[nn[:, j]]] += 1
        return np.argmax(votes, axis=1)


def _check_inputs(X, y, eps, feature_range):
    X = np.array(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be 2-D with one label per row, got {X.shape} and {y.shape}.")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
    lo, hi = (np.broadcast_to(np.asarray(v, dtype=np.float64), X.shape[1:]) for v in feature_range)
    if np.any(lo > hi):
        raise ValueError(f"feature_range must have lo <= hi, got {feature_range!r}.")
    if np.any(X < lo - TOL) or np.any(X > hi + TOL):
        raise ValueError("X must lie inside feature_range (up to TOL).")
    return X, y, float(eps), lo, hi


def feasible_box(x, eps, lo, hi):
    """Per-coordinate bounds of the set every attack searches: ball cut by the box."""
    return np.maximum(lo, x - eps), np.minimum(hi, x + eps)


def is_broken(pipeline, X, y, X_adv, eps, feature_range=(0.0, 1.0)):
    """Rows where ``X_adv`` is a valid counterexample: inside the budget and the box (up to
    ``TOL``) and predicted other than ``y``. A clean error (``X_adv == X``) counts too."""
    X, y, eps, lo, hi = _check_inputs(X, y, eps, feature_range)
    X_adv = np.asarray(X_adv, dtype=np.float64)
    if X_adv.shape != X.shape:
        raise ValueError(f"X_adv must have shape {X.shape}, got {X_adv.shape}.")
    ok = np.all(np.abs(X_adv - X) <= eps + TOL, axis=1)
    ok &= np.all((X_adv >= lo - TOL) & (X_adv <= hi + TOL), axis=1)
    return ok & (pipeline.predict(X_adv) != y)


def _run(pipeline, X, y, eps, feature_range, search, **kw):
    """Shared driver: per correctly classified point, ``search`` proposes candidate points
    (best first); the first one ``pipeline.predict`` confirms is kept."""
    X, y, eps, lo, hi = _check_inputs(X, y, eps, feature_range)
    model = FoldedKNN(pipeline)
    X_adv = X.copy()
    y_idx = np.searchsorted(model.classes, y)
    known = (y_idx < model.n_classes) & (
        model.classes[np.minimum(y_idx, model.n_classes - 1)] == y
    )
    correct = pipeline.predict(X) == y
    for i in np.flatnonzero(correct & known):
        lb, ub = feasible_box(X[i], eps, lo, hi)
        for cand in search(model, X[i], int(y_idx[i]), lb, ub, **kw):
            cand = np.clip(cand, lb, ub)
            if pipeline.predict(cand[None])[0] != y[i]:
                X_adv[i] = cand
                break
    return X_adv


# -- (a) targeted line search ---------------------------------------------------------------


def _nearest_feasible(model, target, lb, ub):
    """The point of the box ``[lb, ub]`` nearest ``target`` (an embedded point) in the
    metric: ``min ||G x + g - target||`` over the box, a bounded least-squares problem."""
    if np.all(lb == ub):
        return lb.copy()
    res = lsq_linear(model.G, target - model.g, bounds=(lb, ub), method="bvls")
    return res.x


def _line_search(model, x, c, lb, ub, n_targets=6, n_steps=12):
    D = model.sqdist(x)[0]
    riv = np.flatnonzero(model.labels != c)
    riv = riv[np.argsort(D[riv])[:n_targets]]
    targets = [model.refs[j] for j in riv]
    targets += [(model.refs[i] + model.refs[j]) / 2.0 for i, j in combinations(riv, 2)]
    m = model.k // 2 + 1
    if m > 1:
        targets.append(model.refs[riv[:m]].mean(axis=0))
    ts = np.linspace(0.0, 1.0, n_steps + 1)[1:, None]
    for target in targets:
        end = _nearest_feasible(model, target, lb, ub)
        seg = x + ts * (end - x)
        marg = model.margin(seg, c)
        flipped = marg < 0
        if flipped.any():
            # The most wrong point of the segment first, then the others along it.
            yield seg[np.argmin(marg)]
            yield from seg[flipped]


def line_search_attack(pipeline, X, y, eps, feature_range=(0.0, 1.0), n_targets=6, n_steps=12):
    """(a) Toward each of the ``n_targets`` nearest references of another class (in the
    metric), the midpoints of their pairs and the centroid of the nearest ``k // 2 + 1``:
    move to the feasible point nearest the target in the metric (bounded least squares) and
    check the vote at ``n_steps`` points of the segment from ``x``."""
    return _run(
        pipeline, X, y, eps, feature_range, _line_search, n_targets=n_targets, n_steps=n_steps
    )


# -- (b) sign-gradient PGD on the vote margin ------------------------------------------------


def _pgd(model, x, c, lb, ub, n_restarts=5, n_iter=40, rng=None):
    starts = [x[None]]
    if n_restarts > 1:
        starts.append(rng.uniform(lb, ub, size=(n_restarts - 1, len(x))))
    Xs = np.vstack(starts)
    width = float(np.max(ub - lb)) if len(x) else 0.0
    best_val, best_x = np.inf, x
    for t in range(n_iter):
        # Step from half the box's width down to 1/50 of it.
        step = width * (0.5 * (1 - t / n_iter) + 0.02 * t / n_iter)
        val, grad = model.margin_grad(Xs, c)
        j = int(np.argmin(val))
        if val[j] < best_val:
            best_val, best_x = val[j], Xs[j].copy()
        Xs = np.clip(Xs - step * np.sign(grad), lb, ub)
    val = model.margin(Xs, c)
    j = int(np.argmin(val))
    if val[j] < best_val:
        best_val, best_x = val[j], Xs[j]
    if best_val < 0:
        yield best_x


def pgd_attack(
    pipeline, X, y, eps, feature_range=(0.0, 1.0), n_restarts=5, n_iter=40, random_state=0
):
    """(b) Sign-gradient descent on the exact vote margin (``(k-m+1)``-th own distance minus
    ``m``-th rival distance, ``m = k // 2 + 1``), projected on the feasible box, from ``x``
    and ``n_restarts - 1`` uniform random starts in it."""
    rng = check_random_state(random_state)
    return _run(
        pipeline, X, y, eps, feature_range, _pgd, n_restarts=n_restarts, n_iter=n_iter, rng=rng
    )


# -- (c) linear programs ----------------------------------------------------------------------


def _lp_overtake(model, x, B, own, lb, ub, n_start=10, max_rounds=50):
    """Best point of the box for "every rival in ``B`` is closer than every reference in
    ``own``": ``min s`` s.t. ``D(x', b) - D(x', a) <= s``, linear in ``x'`` since
    ``D(x', b) - D(x', a) = 2 (G^T (a - b)) . x' + 2 g . (a - b) + |b|^2 - |a|^2``.

    Constraints are added lazily (the ``n_start`` nearest own references first, then the
    most violated at each solution), so the answer is the LP over all of ``own``.
    Returns ``(s, x')``; ``s < 0`` means ``x'`` puts all of ``B`` strictly ahead."""
    d = len(x)
    D0 = model.sqdist(x)[0]
    active = set(own[np.argsort(D0[own])[:n_start]].tolist())
    G, g, R, Rsq = model.G, model.g, model.refs, model.ref_sq
    bounds = [(lo_, hi_) for lo_, hi_ in zip(lb, ub, strict=True)] + [(None, None)]
    cost = np.zeros(d + 1)
    cost[-1] = 1.0
    for _ in range(max_rounds):
        act = np.fromiter(active, dtype=np.intp)
        a = np.repeat(act, len(B))
        b = np.tile(B, len(act))
        diff = R[a] - R[b]
        A_ub = np.hstack([2.0 * diff @ G, -np.ones((len(a), 1))])
        b_ub = -(2.0 * diff @ g + Rsq[b] - Rsq[a])
        res = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if res.status != 0:
            return np.inf, x
        xs, s = res.x[:d], res.x[-1]
        Dx = model.sqdist(xs)[0]
        gap = Dx[B].max() - Dx[own]  # max over B of D(b) - D(a), for every own a
        scale = max(1.0, float(np.abs(Dx[B]).max()))
        viol = own[gap > s + 1e-9 * scale]
        viol = [j for j in viol[np.argsort(-gap[gap > s + 1e-9 * scale])] if j not in active]
        if not viol:
            return s / scale, xs
        active.update(viol[:10])
    return np.inf, x


def _lp_search(model, x, c, lb, ub, n_rivals=4, n_own=2, max_lps=None):
    D = model.sqdist(x)[0]
    m = model.k // 2 + 1
    n_keep = model.k - m
    riv = np.flatnonzero(model.labels != c)
    own = np.flatnonzero(model.labels == c)
    riv = riv[np.argsort(D[riv], kind="stable")]
    own = own[np.argsort(D[own], kind="stable")]
    eK = model.K * float(np.max(np.maximum(x - lb, ub - x), initial=0.0))
    if model.k == 1:
        # Exact for 1-NN: x' is misclassified iff some rival b beats every own reference;
        # one LP per rival. A rival is skipped only when the triangle bound proves it
        # cannot (|sqrt D(x', r) - sqrt D(x, r)| <= eps K with K >= ||G||_{inf->2}).
        reach = np.sqrt(D[own[0]]) + eK
        cands = [b for b in riv if np.sqrt(D[b]) - eK < reach]
        tried = cands if max_lps is None else cands[:max_lps]
        for b in tried:
            s, xs = _lp_overtake(model, x, np.array([b]), own, lb, ub)
            if s < -_LP_MARGIN:
                yield xs
        return
    # k-NN: m rivals overtake all own references but n_keep of them (a sufficient
    # condition), for m-subsets of the nearest rivals and n_keep-subsets of the nearest own.
    n_lps = 0
    for B in combinations(riv[: max(n_rivals, m)], m):
        for E in combinations(own[: max(n_own, n_keep)], n_keep):
            rest = np.setdiff1d(own, E)
            s, xs = _lp_overtake(model, x, np.array(B), rest, lb, ub)
            n_lps += 1
            if s < -_LP_MARGIN:
                yield xs
            if max_lps is not None and n_lps >= max_lps:
                return


def lp_attack(pipeline, X, y, eps, feature_range=(0.0, 1.0), n_rivals=4, n_own=2, max_lps=None):
    """(c) Linear programs over the box-and-ball. For 1-NN, one LP per rival reference
    (those the triangle bound cannot rule out): exact, so a point it leaves unbroken is
    robust (up to the LP solver's tolerance). For k-NN, ``m = k // 2 + 1`` rivals among the
    ``n_rivals`` nearest must all get ahead of every own reference except ``k - m`` chosen
    among the ``n_own`` nearest: one LP per choice."""
    return _run(
        pipeline,
        X,
        y,
        eps,
        feature_range,
        _lp_search,
        n_rivals=n_rivals,
        n_own=n_own,
        max_lps=max_lps,
    )


def lp_certify_1nn(pipeline, x, y, eps, feature_range=(0.0, 1.0)):
    """For a 1-NN: ``True`` when the exact LP search finds no misclassified point of the
    feasible box around ``x`` (robust up to solver tolerance and ties)."""
    X, yy, eps, lo, hi = _check_inputs(np.atleast_2d(x), np.atleast_1d(y), eps, feature_range)
    model = FoldedKNN(pipeline)
    if model.k != 1:
        raise ValueError(f"lp_certify_1nn needs n_neighbors=1, got {model.k}.")
    if pipeline.predict(X)[0] != yy[0]:
        return False
    c = int(np.searchsorted(model.classes, yy[0]))
    lb, ub = feasible_box(X[0], eps, lo, hi)
    return next(_lp_search(model, X[0], c, lb, ub), None) is None


# -- (d) random vertices and coordinate-wise greedy ------------------------------------------


def _random_greedy(model, x, c, lb, ub, n_random=256, n_sweeps=2, rng=None):
    d = len(x)
    # Vertices of the feasible box: a kNN's margin is a difference of convex quadratics,
    # so its extremes over the box tend to sit on vertices.
    V = np.where(rng.random_sample((n_random, d)) < 0.5, lb, ub)
    val = model.margin(V, c)
    order = np.argsort(val)
    for j in order[:3]:
        if val[j] < 0:
            yield V[j]
    # Greedy: from the best vertex and from x, set one coordinate at a time to lb, ub or x.
    for start in (V[order[0]], x):
        cur = start.copy()
        cur_val = model.margin(cur[None], c)[0]
        for _ in range(n_sweeps):
            improved = False
            for i in rng.permutation(d):
                trial = np.repeat(cur[None], 3, axis=0)
                trial[:, i] = (lb[i], ub[i], x[i])
                tv = model.margin(trial, c)
                j = int(np.argmin(tv))
                if tv[j] < cur_val:
                    cur, cur_val, improved = trial[j], tv[j], True
            if not improved:
                break
        if cur_val < 0:
            yield cur


def random_greedy_attack(
    pipeline, X, y, eps, feature_range=(0.0, 1.0), n_random=256, n_sweeps=2, random_state=0
):
    """(d) ``n_random`` random vertices of the feasible box, then coordinate-wise greedy
    descent of the margin (each coordinate to its lower bound, upper bound or back to
    ``x``), from the best vertex and from ``x``."""
    rng = check_random_state(random_state)
    return _run(
        pipeline,
        X,
        y,
        eps,
        feature_range,
        _random_greedy,
        n_random=n_random,
        n_sweeps=n_sweeps,
        rng=rng,
    )


ATTACKS = {
    "line": line_search_attack,
    "pgd": pgd_attack,
    "lp": lp_attack,
    "random_greedy": random_greedy_attack,
}


def union_attack(pipeline, X, y, eps, feature_range=(0.0, 1.0)):
    """All four attacks; each row takes the first that breaks it."""
    X = np.array(X, dtype=np.float64)
    X_adv = X.copy()
    todo = ~is_broken(pipeline, X, y, X_adv, eps, feature_range)
    for attack in ATTACKS.values():
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        X_adv[idx] = attack(pipeline, X[idx], np.asarray(y)[idx], eps, feature_range)
        todo[idx] = ~is_broken(
            pipeline, X[idx], np.asarray(y)[idx], X_adv[idx], eps, feature_range
        )
    return X_adv
