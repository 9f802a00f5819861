"""``python -m skrobust``: the robustness report, on bundled data and on a CSV file."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skrobust import RobustMetricLearner
from skrobust.__main__ import main
from skrobust._evaluation import attacked_accuracy, certified_accuracy
from skrobust.datasets import load_wine

FAST = [
    "--eps",
    "0,0.1",
    "--max-iter",
    "30",
    "--folds",
    "2",
    "--grid",
    "eig=1",
    "--grid",
    "pairwise=0.05",
]


def test_report_on_bundled_data_prints_the_table_and_writes_the_figure(tmp_path, capsys):
    figure = tmp_path / "report.png"
    assert main(["--dataset", "wine", *FAST, "--output", str(figure)]) == 0
    out, err = capsys.readouterr()
    assert "paper attack" in out and "certified" in out
    assert "Top-3 eigenvalues of M" in out
    for model in (
        "NT-ML (undefended)",
        "paper: eig k=3, alpha=1",
        "certified (pairwise), robust_eps=0.05",
    ):
        assert model in out
        assert f"training {model}" in err  # progress goes to stderr
    assert "choosing the strength of certified (pairwise)" in err
    assert figure.stat().st_size > 10_000
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_on_a_csv_file(tmp_path, capsys):
    X, y = load_wine()
    path = tmp_path / "wine.csv"
    np.savetxt(path, np.column_stack([X * 10, y]), delimiter=",", header="a" * 3, comments="")
    figure = tmp_path / "csv.png"
    with pytest.raises(SystemExit):  # a header is never guessed
        main(["--csv", str(path), *FAST, "--no-strong", "--output", str(figure)])
    assert "--csv-header" in capsys.readouterr().err
    command = ["--csv", str(path), "--csv-header", *FAST, "--no-strong", "--output", str(figure)]
    assert main(command) == 0
    out, _ = capsys.readouterr()
    assert "wine.csv, 178 points x 13 features" in out
    assert figure.exists()


@pytest.mark.parametrize(
    "text, message",
    [("1,2,0\n3,4\n", "line 2: 2 columns"), ("1,2,0\n3,a,1\n5,6,0\n7,8,1\n", "not a number")],
)
def test_malformed_csv_gets_a_message_not_a_traceback(tmp_path, capsys, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["--csv", str(path), "--output", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_csv_and_bad_options_exit_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--csv", str(tmp_path / "nope.csv")])
    assert exit_info.value.code == 2
    assert "cannot read --csv" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--eps", "0.1,x"])
    assert "comma-separated" in capsys.readouterr().err


def test_help_explains_every_option():
    out = subprocess.run(
        [sys.executable, "-m", "skrobust", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in (
        "--dataset",
        "--csv",
        "--csv-header",
        "--eps",
        "--max-iter",
        "--no-strong",
        "--output",
        "--defences",
        "--grid",
        "--folds",
        "--tune-eps",
    ):
        assert option in out


def test_each_defence_strength_is_chosen_from_its_grid_and_printed(capsys, tmp_path):
    argv = ["--dataset", "wine", "--eps", "0.1", "--max-iter", "30", "--folds", "2",
            "--defences", "triangle", "--grid", "triangle=0.01,0.2", "--no-strong",
            "--output", str(tmp_path / "r.png")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    chosen = [line for line in out.splitlines() if "certified (triangle): chose" in line]
    assert len(chosen) == 1
    # Both candidates were scored, and the one chosen is the one the table then reports.
    assert "robust_eps=0.01 (clean" in chosen[0] and "robust_eps=0.2 (clean" in chosen[0]
    label = chosen[0].split("chose ")[1].split(" from")[0]
    assert label in ("robust_eps=0.01", "robust_eps=0.2")
    assert f"certified (triangle), {label}" in out
    assert "paper: eig" not in out  # only the defences asked for


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--defences", "eig,nope"], "unknown defence"),
        (["--grid", "nope=0.1"], "unknown defence"),
        (["--grid", "eig=x"], "finite strengths >= 0"),
        (["--grid", "eig=-1"], "finite strengths >= 0"),
        (["--folds", "1"], "--folds must be >= 2"),
        (["--tune-eps", "0"], "--tune-eps must be"),
    ],
)
def test_bad_tuning_options_exit_with_a_message(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_certified_accuracy_never_exceeds_accuracy_under_attack():
    X, y = load_wine()
    pipe = make_pipeline(
        RobustMetricLearner(robust_eps=0.05, alpha=0.0, max_iter=100, random_state=0),
        KNeighborsClassifier(3),
    ).fit(X[::2], y[::2])
    for eps in (0.02, 0.05, 0.1):
        paper = attacked_accuracy(pipe, X[1::2], y[1::2], eps, "paper")
        strong = attacked_accuracy(pipe, X[1::2], y[1::2], eps, "strong")
        certified = certified_accuracy(pipe, X[1::2], y[1::2], eps)
        assert certified <= strong <= pipe.score(X[1::2], y[1::2])
        assert certified <= paper
    assert certified_accuracy(pipe, X[1::2], y[1::2], 0.02) > 0


@pytest.mark.parametrize(
    "output, message",
    [
        ("missing_folder/x.png", "does not exist"),
        ("x.txt", "cannot write a figure as .txt"),
        (".", "is a folder"),
    ],
)
def test_output_is_checked_before_any_work(tmp_path, capsys, output, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset", "wine", *FAST, "--output", str(tmp_path / output)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "training" not in err  # nothing was trained before the check


def test_report_leaves_pyplot_state_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    mine = plt.figure()
    try:
        main(["--dataset", "wine", *FAST, "--no-strong", "--output", str(tmp_path / "r.svg")])
        assert matplotlib.get_backend() == backend
        assert plt.get_fignums() == [mine.number]
    finally:
        plt.close(mine)
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")
