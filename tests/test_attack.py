"""Tests of AckMetricAttack: modes, budgets, box, best iterate, sklearn conventions."""

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline

from skrobust import AckMetricAttack
from skrobust.datasets import load_breast_cancer, load_wine, make_pairs, make_triplets


@pytest.fixture(scope="module")
def wine_nca():
    X, y = load_wine()
    return X, y, NeighborhoodComponentsAnalysis(random_state=0).fit(X, y)


def test_pair_attack_success_grows_with_eps(wine_nca):
    X, y, nca = wine_nca
    pairs, _, _ = make_pairs(X, y, 60, random_state=0)
    attack = AckMetricAttack(FrozenEstimator(nca), threshold=25.0).fit()
    result = attack.attack(pairs, eps=[0.0, 0.05, 0.2])
    assert result.adversarial.shape == (3,) + pairs.shape
    assert result.success_rate[0] == 0.0
    assert np.all(np.diff(result.success_rate) >= 0)
    assert result.success_rate[-1] > 0.2


def test_triplet_and_knn_modes_run(wine_nca):
    X, y, nca = wine_nca
    triplets, _ = make_triplets(X, y, 30, random_state=0)
    out = AckMetricAttack(FrozenEstimator(nca), mode="triplets").fit().transform(triplets)
    assert out.shape == triplets.shape
    Xb, yb = load_breast_cancer()
    pipe = make_pipeline(NeighborhoodComponentsAnalysis(random_state=0), KNeighborsClassifier(3))
    pipe.fit(Xb[::2], yb[::2])
    result = AckMetricAttack(FrozenEstimator(pipe), mode="knn").fit().attack(Xb[1::2], yb[1::2])
    clean = (pipe.predict(Xb[1::2]) == yb[1::2]).mean()
    assert (result.predictions_after[0] == yb[1::2]).mean() < clean
