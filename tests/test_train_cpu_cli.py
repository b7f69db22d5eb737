"""train_cpu's command line: every bad input is one line, exit 2, no run and no row."""

import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import REPO, assert_nothing_written, given, load_entrypoint


@pytest.fixture
def csvs(tmp_path):
    pd.DataFrame({"x": range(30), "y": ["same"] * 30}).to_csv(tmp_path / "one_class.csv", index=False)
    pd.DataFrame({"x": range(5), "y": [0.1, 0.2, 0.3, 0.4, 0.5]}).to_csv(tmp_path / "tiny.csv", index=False)
    pd.DataFrame({"x": range(30), "y": ["a", "b", "c"] * 10}).to_csv(tmp_path / "text.csv", index=False)
    (tmp_path / "taken").write_text("a file where the table should go")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nonsense"], "unknown data 'nonsense'"),
        (["--data", "missing.csv"], "data file not found: missing.csv"),
        (["--target", "label"], "target column 'label' is not in data=synthetic"),
        (["--data", "one_class.csv", "--target", "y"], "single class"),
        (["--data", "text.csv", "--target", "y", "--task", "regression"], "regression needs numbers"),
        (["--data", "tiny.csv"], "too few rows to split"),
        (["--models", "forest:3"], "unknown model family 'forest'"),
        (["--models", "svm:0"], "at least 1, but got 'svm:0'"),
        (["--n_trials", "0"], "0 is not in the range x>=1"),
        (["--metric", "rmse"], "metric 'rmse' does not fit a classification task"),
        (["--results", "taken"], "results=taken is a file"),
        (["--results", "taken/table"], "cannot be written"),
        (["--task", "clustering"], "'clustering' is not one of 'auto', 'classification', 'regression'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(csvs, args, message):
    result = CliRunner().invoke(load_entrypoint("train_cpu"), [*args, "--n_samples", "100"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert_nothing_written(csvs, results=given(args, "--results", csvs))


def test_ray_address_that_does_not_answer(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "entrypoints" / "train_cpu.py"), "--address", "127.0.0.1:9", "--models", "svm:1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: Ray address 127.0.0.1:9 does not answer")
    assert_nothing_written(tmp_path)


def test_help_lists_every_parameter():
    result = CliRunner().invoke(load_entrypoint("train_cpu"), ["--help"])
    assert result.exit_code == 0
    for name in (
        "--data",
        "--target",
        "--task",
        "--models",
        "--first_id",
        "--n_trials",
        "--metric",
        "--results",
        "--address",
        "--seed",
        "--experiment",
    ):
        assert name in result.output
