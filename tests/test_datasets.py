"""Bundled loaders scale to the box; pair and triplet sampling is labelled and seeded."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skrobust import datasets


@pytest.mark.parametrize(
    "load, shape",
    [
        (datasets.load_breast_cancer, (569, 30)),
        (lambda **kw: datasets.load_digits(classes=(8, 9), **kw), (354, 64)),
        (datasets.load_wine, (178, 13)),
    ],
)
@pytest.mark.parametrize("box", [(0.0, 1.0), (-2.0, 3.0)])
def test_loaders_fill_the_box(load, shape, box):
    X, y = load(feature_range=box)
    assert X.shape == shape and len(y) == shape[0]
    assert X.min() >= box[0] and X.max() <= box[1]
    assert X.min() == pytest.approx(box[0]) and X.max() == pytest.approx(box[1])
    assert len(np.unique(y)) == 2


def test_digits_keep_the_requested_classes_only():
    _, y = datasets.load_digits(classes=(3, 5, 8))
    assert set(np.unique(y)) == {3, 5, 8}
    with pytest.raises(ValueError, match="classes"):
        datasets.load_digits(classes=(8, 11))


def test_wine_one_versus_rest_and_all_classes():
    _, y = datasets.load_wine(positive_class=2)
    assert set(np.unique(y)) == {0, 1}
    _, y3 = datasets.load_wine(positive_class=None)
    assert set(np.unique(y3)) == {0, 1, 2}
    with pytest.raises(ValueError, match="positive_class"):
        datasets.load_wine(positive_class=3)


@pytest.mark.parametrize("balanced", [True, False])
def test_pairs_are_labelled_by_class_and_seeded(balanced):
    X, y = datasets.load_wine(positive_class=None)
    pairs, labels, idx = datasets.make_pairs(X, y, 101, balanced=balanced, random_state=0)
    assert pairs.shape == (101, 2, 13)
    np.testing.assert_array_equal(labels, np.where(y[idx[:, 0]] == y[idx[:, 1]], 1, -1))
    np.testing.assert_array_equal(pairs[:, 0], X[idx[:, 0]])
    assert np.all(idx[:, 0] != idx[:, 1])
    if balanced:
        assert abs(int((labels == 1).sum()) - 50) <= 1
    again = datasets.make_pairs(X, y, 101, balanced=balanced, random_state=0)
    np.testing.assert_array_equal(again[2], idx)


def test_triplets_have_a_positive_of_the_anchors_class_and_a_negative_of_another():
    X, y = datasets.load_wine(positive_class=None)
    triplets, idx = datasets.make_triplets(X, y, 50, random_state=1)
    assert triplets.shape == (50, 3, 13)
    assert np.all(y[idx[:, 0]] == y[idx[:, 1]]) and np.all(y[idx[:, 0]] != y[idx[:, 2]])
    assert np.all(idx[:, 0] != idx[:, 1])


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_counts_must_be_positive_integers(n):
    X, y = datasets.load_wine()
    with pytest.raises(ValueError, match="positive integer"):
        datasets.make_pairs(X, y, n)


def test_load_csv_reads_features_and_last_column_labels(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("f1,f2,label\n1,10,a\n2,30,b\n3,20,a\n4,40,b\n")
    X, y = datasets.load_csv(path, header=True)
    np.testing.assert_allclose(X[:, 0], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(y, ["a", "b", "a", "b"])
    path.write_text("1,10,0\n2,30,1\n3,20,0\n4,40,1\n")
    assert datasets.load_csv(path)[1].dtype.kind == "i"


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("1,2,0\n3,4\n5,6,1\n7,8,0\n", "line 2: 2 columns"),
        ("1,2,0\n3,x,1\n5,6,1\n7,8,0\n", "line 2: a feature is not a number"),
        ("1,2,0\n3,4,0\n5,6,0\n7,8,0\n", "two classes"),
        ("1,nan,0\n3,4,1\n5,6,1\n7,8,0\n", "finite"),
        ("0\n1\n0\n1\n", "2\\+ columns"),
    ],
)
def test_load_csv_explains_a_malformed_file(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        datasets.load_csv(path)


def test_load_csv_reads_a_header_of_numbers_only_when_told(tmp_path):
    # What pandas.DataFrame(...).to_csv(index=False) writes: column names 0, 1, 2.
    path = tmp_path / "pandas.csv"
    path.write_text("0,1,2\n1,10,5\n2,30,7\n3,20,5\n4,40,7\n")
    X, y = datasets.load_csv(path, header=True)
    assert X.shape == (4, 2)
    np.testing.assert_array_equal(y, [5, 7, 5, 7])
    X, y = datasets.load_csv(path)  # header=False: the first row is data
    assert X.shape == (5, 2)
    with pytest.raises(TypeError, match="header must be True or False"):
        datasets.load_csv(path, header="infer")


def test_load_csv_points_to_header_for_a_text_first_row(tmp_path):
    path = tmp_path / "named.csv"
    path.write_text("f1,f2,label\n1,10,a\n2,30,b\n3,20,a\n4,40,b\n")
    with pytest.raises(ValueError, match="line 1: .*pass header=True"):
        datasets.load_csv(path)


@given(lo=st.floats(-1e3, 1e3), width=st.floats(1e-3, 1e3), seed=st.integers(0, 2**16))
def test_min_max_scaling_never_leaves_the_box(lo, width, seed):
    X = np.random.default_rng(seed).normal(size=(50, 4)) * 7.0
    Xb = datasets._minmax_box(X, (lo, lo + width))
    assert Xb.min() >= lo and Xb.max() <= lo + width


@pytest.mark.parametrize("box", [(0.0, 1.0), (-2.0, 3.0), (0.1, 0.7)])
def test_bundled_data_is_accepted_by_the_attack(box):
    from sklearn.frozen import FrozenEstimator
    from sklearn.neighbors import NeighborhoodComponentsAnalysis

    from skrobust import AckMetricAttack

    X, y = datasets.load_wine(feature_range=box)
    nca = NeighborhoodComponentsAnalysis(max_iter=5, random_state=0).fit(X, y)
    attack = AckMetricAttack(FrozenEstimator(nca), mode="knn", feature_range=box).fit(X, y)
    assert attack.transform(X).shape == X.shape
