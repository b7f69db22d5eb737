"""``sample=ROWS``: a fleet trains on a stratified sample of its training rows, the validation and test rows
all kept, said on the parent run and on the terminal; bad values stop the command in one line (issue 32)."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import assert_nothing_written, assert_serves_what_was_scored, load_entrypoint, read_results

import mlfleet
from mlfleet.commands.sweep import SAMPLE_TAG
from mlfleet.config import DataConfig
from mlfleet.data import load_dataset, split_dataset
from mlfleet.errors import MlfleetError
from mlfleet.training.labels import codes_model


def dataset(source="messy", **rest):
    return load_dataset(DataConfig(source=source, n_samples=2000, **rest))


@pytest.mark.parametrize("rows", [12, 300, 1199, 1200])
def test_a_sample_keeps_the_class_shares_and_every_validation_and_test_row(rows):
    data = dataset()  # 10:1 classes
    whole, sampled = split_dataset(data, seed=3), split_dataset(data, seed=3, train_rows=rows)
    assert sampled.n_train == rows and sampled.train_pool == whole.n_train == 1200
    assert sampled.key == whole.key  # the same validation and test rows: the scores compare
    # the column plan is the sample's: a few rows may keep or drop a column the whole training rows would not
    used = [c for c in sampled.X_val.columns if c in whole.X_val.columns]
    assert len(used) >= 5
    assert sampled.X_val[used].equals(whole.X_val[used]) and sampled.X_test[used].equals(whole.X_test[used])
    assert np.array_equal(sampled.y_val, whole.y_val) and np.array_equal(sampled.y_test, whole.y_test)
    counts, pool = np.bincount(sampled.y_train, minlength=2), np.bincount(whole.y_train)
    assert (counts >= 1).all() and np.abs(counts - rows * pool / pool.sum()).max() < 1 + (rows < 12)
    rows_of = {tuple(r) for r in whole.X_train[used].astype(str).itertuples(index=False)}
    assert all(tuple(r) in rows_of for r in sampled.X_train[used].astype(str).itertuples(index=False))  # training rows
    again = split_dataset(data, seed=3, train_rows=rows)
    assert again.X_train.equals(sampled.X_train)  # drawn with the seed
    if 1 < rows < 1200:
        assert not split_dataset(data, seed=4, train_rows=rows).X_train.equals(sampled.X_train)


def test_a_regression_sample_is_drawn_from_the_training_rows():
    data = dataset("synthetic_regression", task="regression")
    whole, sampled = split_dataset(data, seed=0), split_dataset(data, seed=0, train_rows=100)
    assert sampled.n_train == 100 and np.isin(sampled.y_train, whole.y_train).all()
    assert np.array_equal(sampled.y_test, whole.y_test) and np.array_equal(sampled.y_val, whole.y_val)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "-5"], "'--sample': -5 is not in the range x>=0"),
        (
            ["--sample", "5000"],
            "sample must be between 0 (every training row) and the 1200 training rows of data=messy, but got "
            "sample=5000; give a number of training rows up to 1200, or 0 for all of them",
        ),
        (["--sample", "1"], "sample=1 training rows cannot hold each of the 2 classes of data=messy; give sample=2"),
    ],
)
def test_a_bad_sample_is_one_line_exit_2_and_nothing_written(tmp_path, args, message):
    result = CliRunner().invoke(load_entrypoint("train_cpu"), ["--data", "messy", "--n_samples", "2000", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert message in result.stderr and "sample" in lines[-1], result.stderr
    if "range" not in message:  # click's own usage lines come first for an option out of its range
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert_nothing_written(tmp_path)


def test_a_table_too_big_for_a_sweep_names_sample_and_a_sample_that_fits_is_taken(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=20_000), "city": rng.choice(["Lyon", "Oslo"], 20_000)})
    frame["y"] = (frame["x"] > 0).astype(int)
    frame.to_parquet("t.parquet", index=False)
    size = frame.memory_usage(deep=True, index=False).sum()
    monkeypatch.setenv("MLFLEET_MEMORY_BYTES", str(int(2.5 * size)))
    config = DataConfig(source="t.parquet", target="y")
    with pytest.raises(MlfleetError, match=r"a sweep needs 3x that, .* \(sample=ROWS: the table once, 2x with the"):
        load_dataset(config)
    # as a user meets it: one line, exit 2, nothing trained or written
    result = CliRunner().invoke(load_entrypoint("train_cpu"), ["--data", "t.parquet", "--target", "y"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "sample=ROWS" in lines[0], result.stderr
    assert_nothing_written(tmp_path)
    data = load_dataset(config, sampled=True)
    assert split_dataset(data, train_rows=1000).n_train == 1000  # kept: 9,000 of 20,000 rows
    with pytest.raises(MlfleetError, match=r"give a smaller sample \(the rows kept must stay under about 15"):
        split_dataset(data, train_rows=11_000)  # kept: 19,000 rows


@pytest.mark.e2e
def test_a_sweep_on_a_sample_trains_on_it_says_so_and_serves_what_it_scored(tmp_path, ray_local, caplog):
    rng = np.random.default_rng(1)
    n = 600
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n),
            "visits": rng.poisson(3, n),
            "segment": rng.choice(["retail", "online", "partner"], n),
        }
    )
    signal = frame["income"] / 15 + (frame["segment"] == "online") * 1.5 - frame["visits"] / 3
    frame["churn"] = np.where(signal + rng.normal(0, 0.5, n) > signal.quantile(0.7), "yes", "no")
    frame.to_csv("customers.csv", index=False)
    with caplog.at_level(logging.INFO, logger="mlfleet"):  # the terminal's lines, whichever stream they reach
        report = mlfleet.train_cpu(
            data="customers.csv", target="churn", models="random_forest:1,logistic:1,svm:1", n_trials=2, sample=150
        )
    assert report.exit_code == 0
    whole = split_dataset(load_dataset(DataConfig(source="customers.csv", target="churn")))
    line = (
        f"sample=150: the models train on 150 of the {whole.n_train} training rows (stratified by class, seed 42); "
        f"the {len(whole.y_val)} validation and {len(whole.y_test)} test rows are all kept"
    )
    assert line in caplog.text
    parent = mlflow.MlflowClient().get_run(report.parent_run_id)
    assert parent.data.params["sample"] == "150"
    assert parent.data.tags[SAMPLE_TAG] == f"150 of {whole.n_train} training rows"
    rows = read_results("lakehouse/model_training_results", report.sweep_id)
    assert len(rows) == 3 and (rows["status"] == "FINISHED").all()
    raw = frame.drop(columns=["churn"])
    for row in rows.itertuples():
        native = mlflow.sklearn.load_model(row.model_uri)
        pipeline = codes_model(native)
        pipeline = getattr(pipeline, "estimator", pipeline)  # a FrozenEstimator's pipeline
        features = pipeline[:-1].transform(raw)
        assert features.dtype == (np.float64 if row.family == "svm" else np.float32), row.family
        assert pipeline[-1].n_features_in_ == features.shape[1]
        assert_serves_what_was_scored(row.model_uri, pd.read_csv("customers.csv"), frame["churn"], min_accuracy=0.6)
