"""skrobust on a dask cluster: bounds on 10 million pairs, the pair attack, weak scaling.

Everything runs on a ``distributed.LocalCluster`` of worker processes (one thread each, BLAS
on one thread, 4 GiB memory limit each), started afresh for each measurement; each worker's
peak resident memory is sampled every 0.1 s during the measurement (psutil). The model:
``RobustMetricLearner(max_iter=100, random_state=0)`` fitted on 2,000 points of
``make_classification(n_features=64, n_informative=32, n_classes=10, random_state=0)``
scaled to ``[0, 1]``; the pairs are uniform in ``[0, 1]^64`` (inside the box), generated
chunk by chunk on the workers (``dask.array.random``, 100,000 pairs per chunk), never whole
in one process.

1. Bounds: :func:`skrobust.dask.perturbed_distance_bounds` (``bound="best"``, shared budget,
   ``eps=0.05``) on 10 million pairs x 64 features on 2 workers, reduced on the workers to
   the mean bounds and the fraction of pairs whose upper bound stays below the threshold;
   beside it, the in-memory :func:`skrobust.perturbed_distance_bounds` on 1 million pairs in
   this process (2 BLAS threads). Throughput (pairs/s) and their ratio; both times include
   generating the pairs.
2. The pair attack (``AckMetricAttack``, default parameters, ``eps=0.05``) on 1 million
   pairs: one in-memory call in this process (its input and result take 2 GB, its peak
   2.3 GB: the largest power of ten that stays within a 4 GiB process, the workers' limit)
   against
   :func:`skrobust.dask.attack` on 2 workers, with the success rate reduced on the workers.
   Throughput ratio.
3. Weak scaling: 1 worker, then 2 workers on twice the input (bounds: 2.5 and 5 million
   pairs; attack: 250,000 and 500,000 pairs). Efficiency = time on 1 worker / time on 2.

The machine has 2 cores shared with other work: the load (``uptime``) is recorded beside
every timing. Run: ``python benchmarks/bench_scale.py`` (about 10 minutes on an idle
machine). Results: ``benchmarks/results/bench_scale.csv`` and ``bench_scale.md``.
"""

import csv
import os
import subprocess
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import psutil
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.preprocessing import minmax_scale

import skrobust.dask as skd
from skrobust import AckMetricAttack, RobustMetricLearner, perturbed_distance_bounds

RESULTS = Path(__file__).parent / "results"
N_FEATURES = 64
CHUNK = 100_000
EPS = 0.05
N_BOUNDS = 10_000_000
N_BOUNDS_IN_MEMORY = 1_000_000
N_ATTACK = 1_000_000
WEAK = {"bounds": 2_500_000, "attack": 250_000}


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def load_average():
    return uptime().split("load average:")[-1].strip()


def fitted_model():
    X, y = make_classification(
        n_samples=2000, n_features=N_FEATURES, n_informative=32, n_classes=10, random_state=0
    )
    return RobustMetricLearner(max_iter=100, random_state=0).fit(minmax_scale(X), y)


def lazy_pairs(n, seed):
    """``n`` uniform pairs in the unit box, generated block by block where they are used."""
    return da.random.default_rng(seed).random((n, 2, N_FEATURES), chunks=(CHUNK, 2, N_FEATURES))


def bounds_summary(model, pairs):
    lower, upper = skd.perturbed_distance_bounds(model, pairs, EPS)
    return lower.mean(), upper.mean(), (upper < model.gamma).mean()


def attack_summary(attack, pairs):
    result = skd.attack(attack, pairs, eps=EPS)
    return (result.success.mean(),)


class PeakMemory:
    """Peak resident memory (MB) of processes, sampled every 0.1 s while the context lasts
    (``ru_maxrss`` would not do: a spawned process inherits its parent's high-water mark)."""

    def __init__(self, pids):
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peaks = [0.0] * len(pids)
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.wait(0.1):
            for i, process in enumerate(self.processes):
                try:
                    rss = process.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                self.peaks[i] = max(self.peaks[i], rss)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def on_cluster(n_workers, task, *args):
    """Run ``task(*args)`` (a tuple of lazy scalars) on a fresh cluster; return the
    seconds, the values and each worker's peak resident memory (MB)."""
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            memory_limit="4GiB",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("skrobust.dask"))  # imports excluded from the time
        pids = client.run(os.getpid).values()
        with PeakMemory(pids) as memory:
            start = time.perf_counter()
            values = dask.compute(*task(*args))
            seconds = time.perf_counter() - start
    return seconds, [float(v) for v in values], sorted(memory.peaks)


def main():
    RESULTS.mkdir(exist_ok=True)
    model = fitted_model()
    attack = AckMetricAttack(FrozenEstimator(model), eps=EPS).fit()
    rows = []

    def record(task, where, n_workers, n, seconds, values, peaks):
        row = dict(
            task=task, where=where, workers=n_workers, n_pairs=n, seconds=round(seconds, 2),
            pairs_per_s=round(n / seconds), values=" ".join(f"{v:.6g}" for v in values),
            peak_mb_per_process=" ".join(f"{p:.0f}" for p in peaks), load=load_average(),
        )  # fmt: skip
        rows.append(row)
        print(
            f"{task:6} {where:9} {n_workers} worker(s) {n:>10,} pairs: {seconds:8.1f} s, "
            f"{n / seconds:12,.0f} pairs/s, peak MB {row['peak_mb_per_process']}, "
            f"values {row['values']}  [load {row['load']}]",
            flush=True,
        )
        return row

    # 1. Bounds: 10 million pairs on 2 workers, 1 million in memory. Both times include
    # generating the pairs (the workers generate theirs while they compute).
    big = record(
        "bounds",
        "dask",
        2,
        N_BOUNDS,
        *on_cluster(2, bounds_summary, model, lazy_pairs(N_BOUNDS, 0)),
    )
    with PeakMemory([os.getpid()]) as memory:
        start = time.perf_counter()
        pairs = lazy_pairs(N_BOUNDS_IN_MEMORY, 1).compute(scheduler="sync")
        generated = time.perf_counter() - start
        lower, upper = perturbed_distance_bounds(model, pairs, EPS)
        values = [lower.mean(), upper.mean(), (upper < model.gamma).mean()]
        seconds = time.perf_counter() - start
    small = record("bounds", "in memory", 0, N_BOUNDS_IN_MEMORY, seconds, values, memory.peaks)
    small["generation_s"] = round(generated, 2)
    del lower, upper, pairs

    # 2. The pair attack on 1 million pairs: one in-memory call, then 2 workers on the same
    # pairs (generated by the workers from the same seed).
    with PeakMemory([os.getpid()]) as memory:
        start = time.perf_counter()
        pairs = lazy_pairs(N_ATTACK, 2).compute(scheduler="sync")
        generated = time.perf_counter() - start
        success = attack.attack(pairs, eps=EPS).success.mean()
        seconds = time.perf_counter() - start
    mem = record("attack", "in memory", 0, N_ATTACK, seconds, [success], memory.peaks)
    mem["generation_s"] = round(generated, 2)
    del pairs
    lazy = lazy_pairs(N_ATTACK, 2)
    dist = record("attack", "dask", 2, N_ATTACK, *on_cluster(2, attack_summary, attack, lazy))

    # 3. Weak scaling.
    weak = []
    for task, summary, fitted in (
        ("bounds", bounds_summary, model),
        ("attack", attack_summary, attack),
    ):
        for n_workers in (1, 2):
            n = WEAK[task] * n_workers
            result = on_cluster(n_workers, summary, fitted, lazy_pairs(n, 3))
            weak.append(record(task, "weak", n_workers, n, *result))

    with open(RESULTS / "bench_scale.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) + ["generation_s"])
        writer.writeheader()
        writer.writerows(rows)

    def ratio(a, b):
        return a["pairs_per_s"] / b["pairs_per_s"]

    lines = [
        "# skrobust on a dask LocalCluster (benchmarks/bench_scale.py)",
        "",
        "2 cores shared with other work (load average at the end of each row); worker "
        "processes with one thread and a 4 GiB limit; in-memory calls in the benchmark's "
        "own process (2 BLAS threads). Peak memory: resident memory sampled every 0.1 s "
        "(in memory: of the whole benchmark process, the model and the interpreter "
        "included). Every time includes generating the pairs (in memory: "
        f"{small['generation_s']} s of the bounds' time, {mem['generation_s']} s of the "
        "attack's). Pairs of 64 features uniform in the unit box, 100,000 per chunk, "
        "eps = 0.05; every pair is predicted dissimilar and none flips (the attack runs all "
        "its steps: its slowest case).",
        "",
        "| task | where | workers | pairs | seconds | pairs/s | peak memory per worker "
        "(MB) | results | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['where']} | {r['workers'] or '-'} | {r['n_pairs']:,} | "
            f"{r['seconds']} | {r['pairs_per_s']:,} | {r['peak_mb_per_process']} | "
            f"{r['values']} | {r['load']} |"
        )
    lines += [
        "",
        f"Bounds: 10 million pairs on 2 workers at {big['pairs_per_s']:,} pairs/s, "
        f"{ratio(big, small):.2f}x the in-memory throughput on 1 million pairs.",
        f"Pair attack, 1 million pairs: 2 workers / one in-memory call = "
        f"{ratio(dist, mem):.2f}x throughput.",
        "",
        "Weak scaling (input doubled with the workers; efficiency = seconds on 1 worker / "
        "seconds on 2, 1.0 is perfect):",
        "",
        "| task | pairs on 1 worker | seconds | pairs on 2 workers | seconds | efficiency |",
        "|---|---|---|---|---|---|",
    ]
    for one, two in (weak[0:2], weak[2:4]):
        lines.append(
            f"| {one['task']} | {one['n_pairs']:,} | {one['seconds']} | {two['n_pairs']:,} | "
            f"{two['seconds']} | {one['seconds'] / two['seconds']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    (RESULTS / "bench_scale.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
