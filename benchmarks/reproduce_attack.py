"""Figure 1 / table 2 of Huai et al. (2022): AckMetric's success rate against many learners.

Protocol (sec. 6.1): on each bundled data set scaled to ``[0, 1]``, a random half of the
points trains each metric learner; a threshold on the squared distance is calibrated for
accuracy on labelled pairs of the training half; random pairs of the other half are the test
pairs; the attack (shared budget of eq. 4, step 0.01, 20 iterations) runs on the test pairs the
model predicts similar, and the success rate is the fraction it turns dissimilar, for each eps
of a grid. Learners: metric-learn ``LMNN``, ``ITML_Supervised``, ``SCML_Supervised``,
``MMC_Supervised``, scikit-learn's NCA, and ``RobustMetricLearner`` undefended (NT-ML), with
the paper's defence and with skrobust's certified training (triangle bound), their strengths
chosen on the training half as in table 3 (3-fold ``GridSearchCV``, the strong robust 3-NN
scorer at eps 0.1, the refit rule ``most_robust_within``).

Run: ``python benchmarks/reproduce_attack.py``. Writes ``benchmarks/results/attack_curves.csv``,
one plot per data set, ``attack_curves_<data set>.png``, and ``attack_curves.log``.
"""

import csv
import time
import warnings

import numpy as np
from _log import RESULTS, logged, relative
from metric_learn import LMNN, ITML_Supervised, MMC_Supervised, SCML_Supervised
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from skrobust import AckMetricAttack, RobustMetricLearner, calibrate_threshold, datasets
from skrobust._evaluation import choose_strengths, defence_grid, strength_label

EPS = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15]
SEED = 0

DATASETS = {
    "breast_cancer": datasets.load_breast_cancer,
    "digits 8v9": lambda: datasets.load_digits(classes=(8, 9)),
    "wine 0-vs-rest": datasets.load_wine,
}


def tuned(defence, X, y, seed):
    """A defence's strength chosen on the training half, as in table 3: 3-fold
    ``GridSearchCV`` with the strong robust 3-NN scorer at eps 0.1 and the refit rule
    ``most_robust_within`` (never on the test pairs)."""
    grid = defence_grid(defence)
    pipe = make_pipeline(RobustMetricLearner(random_state=seed), KNeighborsClassifier(3))
    params = choose_strengths(pipe, grid, X, y, [0.1], seed=seed)[0][0.1]
    print(f"  {defence}: chose {strength_label(params)} on the training half")
    return params


def learners(seed, X, y):
    return {
        "LMNN": LMNN(n_neighbors=3, random_state=seed),
        "ITML_Supervised": ITML_Supervised(random_state=seed),
        "SCML_Supervised": SCML_Supervised(random_state=seed),
        "MMC_Supervised": MMC_Supervised(random_state=seed),
        "NCA (scikit-learn)": NeighborhoodComponentsAnalysis(random_state=seed),
        "NT-ML": RobustMetricLearner(alpha=0.0, random_state=seed),
        "paper defence (eig k=3)": RobustMetricLearner(
            random_state=seed, **tuned("eig", X, y, seed)
        ),
        "skrobust certified": RobustMetricLearner(
            random_state=seed, **tuned("triangle", X, y, seed)
        ),
    }


def success_curves(X, y, eps, seed=SEED, n_pairs=2000):
    """Success rate per eps of the pair attack for every learner; one row per learner."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    train, test = order[: len(y) // 2], order[len(y) // 2 :]
    train_pairs, train_labels, _ = datasets.make_pairs(
        X[train], y[train], n_pairs, random_state=seed
    )
    test_pairs, _, _ = datasets.make_pairs(
        X[test], y[test], n_pairs, balanced=False, random_state=seed + 1
    )
    rows = []
    for name, model in learners(seed, X[train], y[train]).items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # metric-learn's convergence chatter
            model.fit(X[train], y[train])
        threshold = calibrate_threshold(model, train_pairs, train_labels)
        attack = AckMetricAttack(FrozenEstimator(model), threshold=threshold).fit()
        result = attack.attack(test_pairs, eps=eps)
        similar = result.distances_before <= threshold
        rates = result.success[:, similar].mean(axis=1) if similar.any() else np.zeros(len(eps))
        rows.append(
            {
                "model": name,
                "n_predicted_similar": int(similar.sum()),
                "seconds": time.perf_counter() - start,
                **{f"eps={e:g}": float(r) for e, r in zip(eps, rates, strict=True)},
            }
        )
    return rows


def plot(rows, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, row in enumerate(rows):
        ours = row["model"] in ("NT-ML", "paper defence (eig k=3)", "skrobust certified")
        style = "-o" if ours else "--s"  # RobustMetricLearner solid, peers dashed
        rates = [row[f"eps={e:g}"] for e in EPS]
        ax.plot(EPS, rates, style, color=f"C{k}", label=row["model"], markersize=4)
    ax.set_xlabel("eps (shared L-infinity budget, features in [0, 1])")
    ax.set_ylabel("attack success rate on predicted-similar pairs")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    with logged("attack_curves"):
        run()


def run():
    all_rows = []
    for data_name, load in DATASETS.items():
        X, y = load()
        rows = success_curves(X, y, EPS)
        print(
            f"\n{data_name}: {X.shape[0]} x {X.shape[1]}; success rate of AckMetric (shared "
            "budget, step 0.01, 20 iterations) on test pairs predicted similar"
        )
        print(f"{'model':<26}{'#similar':>9}" + "".join(f"{f'eps={e:g}':>11}" for e in EPS))
        for row in rows:
            print(
                f"{row['model']:<26}{row['n_predicted_similar']:>9}"
                + "".join(f"{row[f'eps={e:g}']:>11.3f}" for e in EPS)
            )
            all_rows.append({"dataset": data_name, **row})
        slug = data_name.split()[0]
        plot(
            rows,
            f"AckMetric against metric learners: {data_name}",
            RESULTS / f"attack_curves_{slug}.png",
        )
    with open(RESULTS / "attack_curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(all_rows[0]))
        writer.writeheader()
        writer.writerows(all_rows)
    print(f"\nsaved {relative(RESULTS / 'attack_curves.csv')} and attack_curves_*.png")


if __name__ == "__main__":
    # Every product here is small: one BLAS thread is faster (MMC's many small eigh calls
    # slowed to minutes when threads contended for the 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        main()
