"""Speed of the AckMetric attack against its roofline, a NumPy loop and PyTorch autograd.

Run ``python benchmarks/bench_attack.py`` (``--quick`` for small sizes only). Float64
throughout. Pairs mode uses a square random ``W`` (the paper's ``W`` in R^{d x d}) and points
in the unit box, eps = 0.1, step 0.01, 20 iterations (table 5):

- ``roofline``: the time of one ``(n_pairs x d) @ (d x d)`` product per iteration (20 run
  back to back, best of a few runs), measured in the same run: the matrix products any
  sign-gradient attack on ``D = z^T M z`` needs;
- ``numpy``: a plain batched NumPy loop (gradient product, sign step, clip, success test
  and best iterate, the fixed split eps/2 + eps/2), with ``M = W^T W`` precomputed, and
  ``numpy through W``: the same loop with the gradient written from ``||W z||^2`` (two
  products per iteration);
- ``torch``: the usual PyTorch PGD, autograd through ``||W (x_i - x_j)||^2`` (float64).

Two thresholds: ``no-flip`` puts it out of reach, so every method runs all iterations on
every pair (the engineering comparison); ``median`` is the realistic one (half the pairs
similar). The kNN mode runs at 1,000 test x 1,000 references x 784 features, and the first
call of a fresh process is timed with an empty numba cache (cold) and a filled one (warm).
The strong kNN attack (:class:`skrobust.CascadeKNNAttack`) is timed beside eq. (23), both
through the robust scorer: on a 300-point test fold against 300 references x 30 features (a
certified-training metric on overlapping classes; target under 2 s) and at 1,000 x 1,000 x
784.
Figures are printed and written to ``benchmarks/results/bench_attack.csv``. ``--pairs-only``
times the pair attack at 20,100 x 784 against its roofline alone (``bench_attack_pairs.csv``),
for before/after comparisons run interleaved on a shared machine.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _log import logged, relative
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skrobust import AckMetricAttack, RobustMetricLearner
from skrobust.metrics import make_robust_scorer

RESULTS = Path(__file__).parent / "results"
EPS, STEP, N_ITER = 0.1, 0.01, 20


def best_time(fn, repeat):
    """Smallest wall time of ``repeat`` calls (the machine may be shared)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def fixed_model(W):
    model = NeighborhoodComponentsAnalysis()
    model.components_ = W
    model.n_features_in_ = W.shape[1]
    return FrozenEstimator(model)


def numpy_pgd(pairs, W, threshold, eps=EPS, step=STEP, n_iter=N_ITER, through_w=False):
    """The plain batched NumPy loop: eq. (8)-(9) with the split eps/2 + eps/2.

    The gradient is ``(X_i - X_j) @ M`` with ``M = W^T W`` precomputed (one product per
    iteration), or with ``through_w`` as written from ``D = ||W (x_i - x_j)||^2``:
    ``((X_i - X_j) @ W.T) @ W`` (two products).
    """
    M = W.T @ W
    X_i0, X_j0 = pairs[:, 0], pairs[:, 1]
    lo_i, hi_i = np.maximum(X_i0 - eps / 2, 0.0), np.minimum(X_i0 + eps / 2, 1.0)
    lo_j, hi_j = np.maximum(X_j0 - eps / 2, 0.0), np.minimum(X_j0 + eps / 2, 1.0)
    X_i, X_j = X_i0.copy(), X_j0.copy()
    best_i, best_j = X_i.copy(), X_j.copy()
    done = np.zeros(len(pairs), dtype=bool)
    for it in range(n_iter + 1):
        G = ((X_i - X_j) @ W.T) @ W if through_w else (X_i - X_j) @ M
        D = np.einsum("ij,ij->i", X_i - X_j, G)
        if it == 0:
            direction = np.where(D <= threshold, 1.0, -1.0)
            best = direction * D
        else:
            success = ~done & ((D > threshold) == (direction > 0))
            better = ~done & (success | (direction * D > best))
            best = np.where(better, direction * D, best)
            best_i[better], best_j[better] = X_i[better], X_j[better]
            done |= success
        if it == n_iter:
            break
        S = np.sign(G) * (step * direction)[:, None]
        X_i = np.clip(X_i + S, lo_i, hi_i)
        X_j = np.clip(X_j - S, lo_j, hi_j)
    return best_i, best_j


def torch_pgd(torch, pairs, W, threshold, eps=EPS, step=STEP, n_iter=N_ITER):
    """The usual PyTorch PGD: autograd of ``||W (x_i - x_j)||^2``, sign step, clamp."""
    Wt = torch.from_numpy(W)
    x_i0 = torch.from_numpy(np.ascontiguousarray(pairs[:, 0]))
    x_j0 = torch.from_numpy(np.ascontiguousarray(pairs[:, 1]))
    with torch.no_grad():
        D0 = ((x_i0 - x_j0) @ Wt.T).pow(2).sum(1)
        direction = torch.where(D0 <= threshold, 1.0, -1.0).double()
    x_i, x_j = x_i0.clone(), x_j0.clone()
    best_i, best_j, best = x_i.clone(), x_j.clone(), direction * D0
    done = torch.zeros(len(pairs), dtype=torch.bool)
    for it in range(n_iter + 1):
        x_i.requires_grad_(True)
        x_j.requires_grad_(True)
        D = ((x_i - x_j) @ Wt.T).pow(2).sum(1)
        g_i, g_j = torch.autograd.grad((direction * D).sum(), (x_i, x_j))
        with torch.no_grad():
            if it > 0:
                success = ~done & ((D > threshold) == (direction > 0))
                better = ~done & (success | (direction * D > best))
                best = torch.where(better, direction * D, best)
                best_i[better], best_j[better] = x_i[better], x_j[better]
                done |= success
            if it == n_iter:
                break
            x_i = torch.clamp(x_i + step * g_i.sign(), x_i0 - eps / 2, x_i0 + eps / 2)
            x_j = torch.clamp(x_j + step * g_j.sign(), x_j0 - eps / 2, x_j0 + eps / 2)
            x_i, x_j = x_i.clamp(0.0, 1.0), x_j.clamp(0.0, 1.0)
    return best_i, best_j


def pairs_problem(n_pairs, d, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, d)) / np.sqrt(d)
    pairs = rng.random((n_pairs, 2, d))
    U = (pairs[:, 0] - pairs[:, 1]) @ W.T
    return W, pairs, np.einsum("ij,ij->i", U, U)


def bench_pairs(n_pairs, d, repeat, torch, rows, peers=True):
    """The pair attack against its roofline, and (``peers``) the NumPy and PyTorch loops."""
    W, pairs, D = pairs_problem(n_pairs, d)
    M = W.T @ W
    U = pairs[:, 0] - pairs[:, 1]
    for label, threshold in [("no-flip", 10.0 * D.max()), ("median", float(np.median(D)))]:
        attack = AckMetricAttack(fixed_model(W), eps=EPS, step_size=STEP, max_iter=N_ITER)
        attack.set_params(threshold=threshold)
        attack.fit().attack(pairs[:4])  # compile outside the timing

        def run(attack=attack):
            return attack.fit().attack(pairs)

        t_sk = best_time(run, repeat)
        success = float(run().success_rate[0])
        # The roofline runs its N_ITER products back to back, like the attack, so both see
        # the same machine (it may be shared).
        t_roof = best_time(lambda: [U @ M for _ in range(N_ITER)], max(3, repeat))
        t_np = t_np_w = float("nan")
        if peers:
            t_np = best_time(lambda threshold=threshold: numpy_pgd(pairs, W, threshold), repeat)
            t_np_w = best_time(
                lambda threshold=threshold: numpy_pgd(pairs, W, threshold, through_w=True),
                repeat,
            )
        if torch is not None and peers:
            torch_pgd(torch, pairs[:4], W, threshold)
            t_torch = best_time(
                lambda threshold=threshold: torch_pgd(torch, pairs, W, threshold), repeat
            )
        else:
            t_torch = float("nan")
        roof = t_roof
        row = {
            "benchmark": f"pairs {label}",
            "n": n_pairs,
            "d": d,
            "skrobust_s": t_sk,
            "roofline_s": roof,
            "numpy_s": t_np,
            "numpy_through_w_s": t_np_w,
            "torch_s": t_torch,
            "skrobust_over_roofline": t_sk / roof,
            "numpy_over_skrobust": t_np / t_sk,
            "numpy_through_w_over_skrobust": t_np_w / t_sk,
            "torch_over_skrobust": t_torch / t_sk,
            "success_rate": success,
        }
        rows.append(row)
        print(
            f"pairs {label:8s} {n_pairs:6d} x {d:4d}: skrobust {t_sk:7.3f} s | roofline "
            f"{roof:7.3f} s ({t_sk / roof:.2f}x) | numpy {t_np:7.3f} s "
            f"({t_np / t_sk:.2f}x slower) | numpy through W {t_np_w:7.3f} s "
            f"({t_np_w / t_sk:.2f}x) | torch {t_torch:7.3f} s "
            f"({t_torch / t_sk:.2f}x slower) | success {success:.3f}",
            flush=True,
        )


def bench_strong_knn(n_test, n_ref, d, repeat, rows, pipe, X_test, y_test, eps_values=(0.05, 0.1)):
    """The strong attack beside eq. (23), both through the robust scorer (what a
    ``GridSearchCV`` fold costs), on one test fold against a fitted pipeline."""
    for eps in eps_values:
        times, scores = {}, {}
        for attack in ("paper", "strong"):
            params = {"random_state": 0} if attack == "strong" else None
            scorer = make_robust_scorer(
                eps=eps, attack=attack, feature_range=(0.0, 1.0), attack_params=params
            )
            scorer(pipe, X_test[:4], y_test[:4])  # compile outside the timing
            runs = []
            for _ in range(repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                scores[attack] = scorer(pipe, X_test, y_test)
                runs.append((time.perf_counter() - wall, time.process_time() - cpu))
            # CPU time of every thread of the process: on a busy machine, near what the wall
            # time would be on a quiet one (the scorer runs one BLAS / OpenMP thread here).
            times[attack], times[attack + " cpu"] = min(runs)
        rows.append(
            {
                "benchmark": f"robust scorer strong eps={eps:g} ({n_test} x {n_ref} refs)",
                "n": n_test,
                "d": d,
                "skrobust_s": times["strong"],
                "paper_s": times["paper"],
                "strong_over_paper": times["strong"] / times["paper"],
                "strong_cpu_s": times["strong cpu"],
                "paper_cpu_s": times["paper cpu"],
            }
        )
        print(
            f"robust scorer, {n_test} test x {n_ref} references x {d}, eps={eps:g}: strong "
            f"{times['strong']:.3f} s, CPU {times['strong cpu']:.3f} s (accuracy "
            f"{scores['strong']:.3f}) | eq. 23 {times['paper']:.3f} s, CPU "
            f"{times['paper cpu']:.3f} s (accuracy {scores['paper']:.3f}) | ratio "
            f"{times['strong'] / times['paper']:.1f}x",
            flush=True,
        )


def scorer_fold(n=300, d=30, seed=0):
    """A 300-point test fold and a 3-NN over 300 references x 30 features: a learned metric
    (skrobust's certified training, so the attack meets robust points) on overlapping
    classes scaled to [0, 1]."""
    X, y = make_classification(2 * n, d, n_informative=10, class_sep=3.0, random_state=seed)
    X = MinMaxScaler().fit_transform(X)
    pipe = make_pipeline(
        RobustMetricLearner(alpha=0.0, robust_eps=0.05, random_state=seed),
        KNeighborsClassifier(3),
    ).fit(X[:n], y[:n])
    return pipe, X[n:], y[n:]


def bench_knn(n_test, n_ref, d, repeat, rows):
    rng = np.random.default_rng(1)
    W = rng.normal(size=(d, d)) / np.sqrt(d)
    X = rng.random((n_ref + n_test, d))
    y = (X @ rng.normal(size=d) > 0).astype(int)
    model = fixed_model(W)
    pipe = make_pipeline(model, KNeighborsClassifier(3)).fit(X[:n_ref], y[:n_ref])
    attack = AckMetricAttack(FrozenEstimator(pipe), mode="knn", eps=EPS, step_size=STEP)
    attack.fit().attack(X[n_ref : n_ref + 4], y[n_ref : n_ref + 4])
    X_test, y_test = X[n_ref:], y[n_ref:]
    result = attack.attack(X_test, y_test)
    t_sk = best_time(lambda: attack.attack(X_test, y_test), repeat)
    E_ref = pipe[-1]._fit_X
    # Products per iteration: embed (n x d x d), distances (n x d x n_ref), gradient (n x d x d).
    roof = best_time(
        lambda: [(X_test @ W.T, (X_test @ W.T) @ E_ref.T, X_test @ W) for _ in range(N_ITER)], 2
    )
    clean = float(np.mean(result.predictions_before == y_test))
    adv = float(np.mean(result.predictions_after[0] == y_test))
    bench_strong_knn(n_test, n_ref, d, 1, rows, pipe, X_test, y_test, eps_values=(EPS,))
    rows.append(
        {
            "benchmark": "knn",
            "n": n_test,
            "d": d,
            "skrobust_s": t_sk,
            "roofline_s": roof,
            "skrobust_over_roofline": t_sk / roof,
            "success_rate": float(result.success_rate[0]),
        }
    )
    print(
        f"knn {n_test} test x {n_ref} references x {d}: skrobust {t_sk:.3f} s | three "
        f"products per iteration {roof:.3f} s ({t_sk / roof:.2f}x) | accuracy {clean:.3f} -> "
        f"{adv:.3f}",
        flush=True,
    )


FIRST_CALL = """
import time
import numpy as np
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from skrobust import AckMetricAttack, RobustMetricLearner
from skrobust.metrics import make_robust_scorer
rng = np.random.default_rng(0)
model = NeighborhoodComponentsAnalysis()
model.components_ = rng.normal(size=(64, 64)) / 8.0
model.n_features_in_ = 64
pairs = rng.random((100, 2, 64))
t = time.perf_counter()
AckMetricAttack(FrozenEstimator(model), threshold=1.0).fit().attack(pairs)
print(time.perf_counter() - t)
"""


def bench_first_call(rows):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        times = []
        for label in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True,
                check=True,
            )  # fmt: skip
            t = float(out.stdout.strip().splitlines()[-1])
            times.append(t)
            rows.append({"benchmark": f"first call {label}", "n": 100, "d": 64, "skrobust_s": t})
    print(
        f"first call, 100 pairs x 64, fresh process (imports excluded): cold numba cache "
        f"{times[0]:.3f} s (target < 3 s), warm cache {times[1]:.3f} s (target < 0.5 s)",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument(
        "--knn-only",
        action="store_true",
        help="only the kNN benchmarks (eq. 23 and the strong attack); writes bench_attack_knn.csv",
    )
    parser.add_argument(
        "--pairs-only",
        action="store_true",
        help="only the pair attack at 20,100 x 784 against its roofline (no NumPy or PyTorch "
        "peers); writes bench_attack_pairs.csv",
    )
    args = parser.parse_args()
    if args.pairs_only:
        print(f"load average before the run: {os.getloadavg()}", flush=True)
        rows = []
        bench_pairs(20_100, 784, args.repeat, None, rows, peers=False)
        print(f"load average after the run: {os.getloadavg()}")
        _write(rows, RESULTS / "bench_attack_pairs.csv")
        return
    if args.knn_only:
        print(f"load average before the run: {os.getloadavg()}", flush=True)
        rows = []
        pipe, X_test, y_test = scorer_fold()
        bench_strong_knn(300, 300, 30, args.repeat, rows, pipe, X_test, y_test)
        bench_knn(1_000, 1_000, 784, 1, rows)
        print(f"load average after the run: {os.getloadavg()}")
        _write(rows, RESULTS / "bench_attack_knn.csv")
        return
    try:
        import torch

        torch.set_default_dtype(torch.float64)
    except ImportError:
        torch = None
        print("torch not installed: the PyTorch column is NaN (pip install torch).")
    print(f"load average before the run: {os.getloadavg()}", flush=True)
    rows = []
    bench_first_call(rows)
    bench_pairs(2_000, 64, args.repeat, torch, rows)
    pipe, X_test, y_test = scorer_fold()
    bench_strong_knn(300, 300, 30, args.repeat, rows, pipe, X_test, y_test)
    if not args.quick:
        bench_pairs(20_100, 784, args.repeat, torch, rows)
        bench_knn(1_000, 1_000, 784, args.repeat, rows)
    print(f"load average after the run: {os.getloadavg()}")
    _write(rows, RESULTS / "bench_attack.csv")


def _write(rows, path):
    RESULTS.mkdir(exist_ok=True)
    fields = [
        "benchmark", "n", "d", "skrobust_s", "roofline_s", "numpy_s", "numpy_through_w_s",
        "torch_s", "skrobust_over_roofline", "numpy_over_skrobust",
        "numpy_through_w_over_skrobust", "torch_over_skrobust", "success_rate", "paper_s",
        "strong_over_paper", "strong_cpu_s", "paper_cpu_s",
    ]  # fmt: skip
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"written {relative(path)}")


if __name__ == "__main__":
    with logged("bench_attack"):
        main()
