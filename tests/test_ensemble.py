"""The ensemble's parts: partitioning, the vote, the comparison, the table, and its command's bad inputs."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
from click.testing import CliRunner
from helpers import REPO, assert_nothing_written, given, load_entrypoint
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mlfleet.commands.ensemble.compare import member_weights, plot_comparison, verdict
from mlfleet.commands.ensemble.partition import (
    MIN_SHARD_ROWS,
    column_shards,
    make_shards,
    random_shards,
    stratified_shards,
)
from mlfleet.commands.ensemble.rows import ENSEMBLES, EnsembleRow, time_of
from mlfleet.commands.ensemble.run import run_ensemble
from mlfleet.config import DataConfig, EnsembleConfig
from mlfleet.errors import MlfleetError
from mlfleet.metrics import METRICS
from mlfleet.stores import model_format
from mlfleet.stores.tables import open_results
from mlfleet.training.voting import build_vote, voting_kind


def assert_partition(shards, n):
    """Every row of range(n) in exactly one shard."""
    together = np.concatenate(shards)
    assert len(together) == n and np.array_equal(np.sort(together), np.arange(n))


# --- partitioning -------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "partitions"), [(100, 1), (100, 3), (101, 8), (10, 10)])
def test_random_shards_cover_every_row_once_with_even_sizes(n, partitions):
    shards = random_shards(n, partitions, seed=0)
    assert len(shards) == partitions
    assert_partition(shards, n)
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    assert all(
        np.array_equal(a, b) for a, b in zip(shards, random_shards(n, partitions, seed=0), strict=False)
    )  # the seed decides
    if partitions > 1:
        assert any(not np.array_equal(a, b) for a, b in zip(shards, random_shards(n, partitions, seed=1), strict=False))


def test_stratified_shards_give_every_shard_its_share_of_every_class():
    y = np.random.default_rng(3).permutation(np.array([0] * 50 + [1] * 31 + [2] * 9))
    shards = stratified_shards(y, 4, seed=7)
    assert_partition(shards, len(y))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    for shard in shards:
        counts = np.bincount(y[shard], minlength=3)
        assert all(
            np.floor(total / 4) <= c <= np.ceil(total / 4) for c, total in zip(counts, (50, 31, 9), strict=False)
        )


def test_column_shards_group_equal_values_and_missing_ones():
    values = pd.Series(["b", "a", None, "b", "c", "a", None, "a"])
    groups = column_shards(values)
    assert [v for v, _ in groups] == ["a", "b", "c", "<missing>"]
    assert_partition([rows for _, rows in groups], len(values))
    for value, rows in groups:
        expected = values.isna() if value == "<missing>" else values == value
        assert np.array_equal(rows, np.flatnonzero(expected))


def test_make_shards_by_column_keeps_groups_whole():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"region": rng.choice(["north", "south", "east"], 300), "x": rng.normal(size=300)})
    y = rng.integers(0, 2, 300)
    shards = make_shards(X, y, "classification", partitions=8, partition_by="region", classes=(0, 1))
    assert [s.label for s in shards] == ["region='east'", "region='north'", "region='south'"]
    assert_partition([s.rows for s in shards], 300)
    for shard in shards:
        assert (X["region"].iloc[shard.rows] == shard.value).all()


def test_make_shards_stratifies_classification_and_not_regression():
    y = np.array([0] * 80 + [1] * 20)
    shards = make_shards(pd.DataFrame({"x": range(100)}), y, "classification", partitions=5, classes=("no", "yes"))
    assert [s.label for s in shards] == [f"stratified {i}/5" for i in range(1, 6)]
    assert all(np.bincount(y[s.rows]).tolist() == [16, 4] for s in shards)
    shards = make_shards(pd.DataFrame({"x": range(100)}), np.linspace(0, 1, 100), "regression", partitions=3)
    assert [s.size for s in shards] == [34, 33, 33] and shards[0].label == "random 1/3"


FRAME = pd.DataFrame({"x": range(60), "region": ["a"] * 30 + ["b"] * 25 + ["c"] * 5, "mixed": ["p"] * 30 + ["q"] * 30})
LABELS = np.array([0, 1] * 15 + [0] * 30)  # "mixed=q" rows are all class 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"partitions": 0}, r"^partitions must be at least 1, but got partitions=0$"),
        ({"partitions": -3}, r"partitions must be at least 1, but got partitions=-3"),
        (
            {"partitions": 7},
            rf"partitions=7 is more than the training rows allow: 60 training rows make shards of 8, "
            rf"and each shard needs at least {MIN_SHARD_ROWS} rows; use partitions=6 or fewer",
        ),
        (
            {"partitions": 4, "task": "classification", "y": np.array([0] * 57 + [1] * 3)},
            r"every shard needs every class .* but class 'yes' has 3 training rows; use partitions=3 or fewer",
        ),
        (
            {"partitions": 2, "task": "classification", "y": np.array([0] * 57 + [1] * 3), "min_class_rows": 2},
            r"class 'yes' has 3 training rows; use partitions=1 or fewer",
        ),
        ({"partition_by": "city"}, r"unknown partition_by column 'city'; the feature columns are: x, region, mixed"),
        ({"partition_by": "region"}, r"partition_by='region' makes a shard too small: region='c' has 5 training rows"),
        ({"partition_by": "mixed", "task": "classification"}, r"shard mixed='q' with 0 training rows of class 'yes'"),
    ],
)
def test_make_shards_refuses_what_cannot_train(kwargs, message):
    kwargs = {"task": "regression", "y": LABELS, "partitions": 2, **kwargs}
    y, task = kwargs.pop("y"), kwargs.pop("task")
    with pytest.raises(MlfleetError, match=message):
        make_shards(FRAME, y, task, classes=("no", "yes"), **kwargs)


# --- the vote -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_members():
    X, y = load_iris(return_X_y=True, as_frame=True)
    order = np.random.default_rng(0).permutation(len(y))
    shards = stratified_shards(y.to_numpy()[order], 3, seed=0)
    return (
        X,
        y,
        [
            make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X.iloc[order[s]], y.iloc[order[s]])
            for c, s in zip((0.01, 0.1, 1.0), shards, strict=False)
        ],
    )


def test_soft_vote_is_the_weighted_mean_of_the_members_probabilities(iris_members):
    X, y, members = iris_members
    weights = (0.2, 0.3, 0.5)
    vote = build_vote([(f"m{i}", m) for i, m in enumerate(members)], "classification", X, y, weights=weights)
    assert vote.voting == "soft" and list(vote.classes_) == [0, 1, 2]
    mean = np.average([m.predict_proba(X) for m in members], axis=0, weights=weights)
    np.testing.assert_allclose(vote.predict_proba(X), mean)
    np.testing.assert_array_equal(vote.predict(X), mean.argmax(axis=1))


def test_hard_vote_counts_weighted_labels_when_a_member_has_no_probabilities(iris_members):
    X, y, members = iris_members
    no_proba = make_pipeline(StandardScaler(), LinearSVC()).fit(X, y)
    pipelines = [*members, no_proba]
    assert voting_kind("classification", pipelines) == "hard"
    weights = (0.1, 0.2, 0.3, 0.4)
    vote = build_vote([(f"m{i}", m) for i, m in enumerate(pipelines)], "classification", X, y, weights=weights)
    labels = np.stack([m.predict(X) for m in pipelines], axis=1)
    expected = [np.argmax(np.bincount(row, weights=weights, minlength=3)) for row in labels]
    np.testing.assert_array_equal(vote.predict(X), expected)


def test_regression_vote_is_the_weighted_mean_and_saves_with_sklearn_types_only():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    members = [LinearRegression().fit(X.iloc[i::3], y.iloc[i::3]) for i in range(3)]
    weights = member_weights("validation", [50.0, 60.0, 75.0], METRICS["rmse"])
    vote = build_vote([(f"m{i}", m) for i, m in enumerate(members)], "regression", X, y, weights=weights)
    np.testing.assert_allclose(vote.predict(X), np.average([m.predict(X) for m in members], axis=0, weights=weights))
    trusted = model_format.trusted_types(vote)  # refuses anything outside scikit-learn, numpy, scipy
    assert all(t.startswith(("sklearn.", "numpy.", "builtins.")) for t in trusted)
    loaded = skops.io.loads(skops.io.dumps(vote), trusted=trusted)
    np.testing.assert_allclose(loaded.predict(X), vote.predict(X))


def test_a_vote_needs_members_and_one_weight_each(iris_members):
    X, y, members = iris_members
    with pytest.raises(MlfleetError, match="at least one member"):
        build_vote([], "classification", X, y)
    with pytest.raises(MlfleetError, match="got 2 weights for 3 members"):
        build_vote([(f"m{i}", m) for i, m in enumerate(members)], "classification", X, y, weights=(0.5, 0.5))


@pytest.mark.parametrize(
    ("mode", "scores", "metric", "expected"),
    [
        ("equal", [0.9, 0.5], "f1", [0.5, 0.5]),
        ("validation", [0.6, 0.2], "f1", [0.75, 0.25]),
        ("validation", [2.0, 4.0], "rmse", [2 / 3, 1 / 3]),
        ("validation", [0.5, -0.2], "r2", [1.0, 0.0]),
        ("validation", [-0.1, -0.3], "r2", [0.5, 0.5]),
        ("validation", [float("nan"), 0.4], "roc_auc", [0.0, 1.0]),
    ],
)
def test_member_weights(mode, scores, metric, expected):
    assert member_weights(mode, scores, METRICS[metric]) == pytest.approx(expected)


# --- the comparison -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "ensemble", "single", "start"),
    [
        (
            "f1",
            0.90,
            0.80,
            "ensemble of 4 wins on test f1: 0.9000 (ensemble) vs 0.8000 (single model), "
            "a difference of +0.1000 (12.5%)",
        ),
        ("f1", 0.80, 0.90, "single model wins on test f1"),
        (
            "rmse",
            10.0,
            12.5,
            "ensemble of 4 wins on test rmse: 10.0000 (ensemble) vs 12.5000 (single model), "
            "a difference of -2.5000 (20.0%)",
        ),
        ("rmse", 0.3, 0.3, "a tie: rmse 0.3000"),
        ("f1", None, 0.9, "no verdict: the ensemble has no f1 score"),
    ],
)
def test_verdict_names_the_winner_and_the_margin(metric, ensemble, single, start):
    line = verdict(METRICS[metric], ensemble, single, n_members=4, ensemble_wall_s=2.0, single_wall_s=6.0)
    assert line.startswith(start) and "\n" not in line
    if ensemble is not None:
        assert line.endswith(
            "training took 2.0 s for 4 members in parallel vs 6.0 s for the single model (the ensemble 3.0x faster)"
        )


def test_plot_is_a_png(tmp_path):
    path = plot_comparison(
        tmp_path / "c.png",
        METRICS["f1"],
        member_scores=[0.8, None, 0.85],
        ensemble_score=0.9,
        single_score=0.88,
        title="t",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the table ----------------------------------------------------------------------------


def make_row(kind="member", member=0, **changes) -> EnsembleRow:
    now = time_of(None)
    values = {name: None for name in ENSEMBLES.schema().names}
    values.update(
        ensemble_id="e1",
        kind=kind,
        member=member,
        family="random_forest",
        model_type="RandomForestClassifier",
        task="classification",
        partitioning="stratified",
        shard="stratified 1/2",
        shard_rows=10,
        class_counts_json='{"0": 5, "1": 5}',
        voting="",
        params_json="{}",
        primary_metric="f1",
        n_trials=0,
        cpus=1.0,
        status="FINISHED",
        error="",
        mlflow_run_id="r",
        parent_run_id="p",
        model_uri="models:/m",
        experiment_id="1",
        dataset="synthetic",
        dataset_digest="d",
        started_at=now,
        finished_at=now,
        node="n",
        entry_point="ensemble",
        score=0.9,
    )
    return replace(EnsembleRow(**values), **changes)


def test_rows_are_written_once_per_key(tmp_path):
    table = open_results(str(tmp_path / "ensemble_results"), ENSEMBLES)
    table.ensure()
    rows = [
        make_row("member", 0),
        make_row("member", 1),
        make_row("single", -1),
        make_row("ensemble", -1, voting="soft", n_members=2),
    ]
    assert table.commit_batch(rows, [1] * len(rows)) == 4
    assert table.commit_batch(rows, [1] * len(rows)) == 0
    assert table.commit_batch([*rows, make_row("member", 0, ensemble_id="e2")], [1] * 5) == 1
    frame = table.read()
    assert list(frame.columns) == ENSEMBLES.schema().names and len(frame) == 5
    assert sorted(table.read(ensemble_id="e1")["kind"]) == ["ensemble", "member", "member", "single"]


# --- the command's bad inputs -------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=120), "region": ["north"] * 60 + ["south"] * 55 + ["west"] * 5})
    frame["label"] = np.where(frame["x"] > 0, "yes", "no")
    frame.to_csv(tmp_path / "regions.csv", index=False)
    pd.DataFrame({"x": rng.normal(size=200), "label": ["rare"] * 10 + ["common"] * 190}).to_csv(
        tmp_path / "imbalanced.csv", index=False
    )
    (tmp_path / "taken").write_text("a file where the table should go")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partitions", "0"], "partitions must be at least 1, but got partitions=0"),
        (["--partitions", "-2"], "partitions must be at least 1, but got partitions=-2"),
        (
            ["--partitions", "100"],
            "partitions=100 is more than the training rows allow: 180 training rows make shards of 1",
        ),
        (
            ["--data", "imbalanced.csv", "--partitions", "8"],
            "partitions=8 is more than the training rows allow: every shard needs every class "
            "(1 row(s) each at least), but class 'rare' has 6 training rows; use partitions=6 or fewer",
        ),
        (["--partition_by", "city"], "unknown partition_by column 'city'; the feature columns are: f00, f01"),
        (
            ["--data", "regions.csv", "--target", "label", "--partition_by", "region"],
            "partition_by='region' makes a shard too small: region='west' has",
        ),
        (["--model", "forest"], "unknown model family 'forest'; use model= one of logistic, svm, random_forest"),
        (["--model", "mlp"], "unknown model family 'mlp' (a GPU family; ensemble members are CPU families)"),
        (["--n_trials", "-1"], "-1 is not in the range x>=0"),
        (["--weights", "votes"], "'votes' is not one of 'equal', 'validation'"),
        (["--register", "a/b"], "register must be a model name without '/' or ':'"),
        (["--metric", "rmse"], "metric 'rmse' does not fit a classification task"),
        (["--results", "taken"], "results=taken is a file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(files, args, message):
    result = CliRunner().invoke(load_entrypoint("ensemble"), [*args, "--n_samples", "300"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert_nothing_written(files, results=given(args, "--results", files))


def test_results_that_is_another_delta_table_is_refused_before_anything_is_made(tmp_path):
    from deltalake import write_deltalake

    write_deltalake(str(tmp_path / "other"), pd.DataFrame({"x": [1]}))
    result = CliRunner().invoke(load_entrypoint("ensemble"), ["--results", "other", "--n_samples", "200"])
    assert (
        result.exit_code == 2
        and "results=other is a Delta table without the columns ensemble_id, kind" in result.stderr
    )
    assert_nothing_written(tmp_path)


def test_ray_address_that_does_not_answer(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "entrypoints" / "ensemble.py"), "--address", "127.0.0.1:9", "--n_samples", "200"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: Ray address 127.0.0.1:9 does not answer")
    assert_nothing_written(tmp_path)


def test_help_lists_every_mlproject_parameter():
    import yaml

    declared = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]["ensemble"]["parameters"]
    result = CliRunner().invoke(load_entrypoint("ensemble"), ["--help"])
    assert result.exit_code == 0
    for name in declared:
        assert f"--{name}" in result.output


# --- one whole run in-process: partition_by, tuning members, validation weights, the registry ---


@pytest.mark.e2e
def test_partition_by_with_tuning_and_registration(ray_local, tmp_path, monkeypatch):
    # a registry of its own (MLFLOW_REGISTRY_URI, as databricks-uc is on Databricks): the model goes there
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'registry.db'}")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"x": rng.normal(size=240), "z": rng.normal(size=240), "region": rng.choice(["north", "south"], 240)}
    )
    frame["label"] = np.where(frame["x"] + 0.5 * rng.normal(size=240) > 0, "yes", "no")
    frame.to_csv(tmp_path / "regions.csv", index=False)
    config = EnsembleConfig(
        data=DataConfig(source=str(tmp_path / "regions.csv"), target="label"),
        partition_by="region",
        partitions=2,
        model="logistic",
        n_trials=2,
        weights="validation",
        register="regions-ensemble",
        results=str(tmp_path / "lakehouse" / "ensemble_results"),
        experiment="in-process",
    )
    report = run_ensemble(config)
    assert report.exit_code == 0, report.problems
    members = [r for r in report.rows if r.kind == "member"]
    assert [m.shard for m in members] == ["region='north'", "region='south'"]
    val = np.array([m.val_score for m in members])
    assert [m.weight for m in members] == pytest.approx(val / val.sum())
    assert report.registered == "regions-ensemble/1"
    version = mlflow.MlflowClient().get_model_version("regions-ensemble", "1")
    assert version.run_id == report.row("ensemble").mlflow_run_id
    tracking_uri = mlflow.get_tracking_uri()
    assert tracking_uri != os.environ["MLFLOW_REGISTRY_URI"]
    assert mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri).search_registered_models() == []
    client = mlflow.MlflowClient()
    for m in members:
        assert len(client.get_metric_history(m.mlflow_run_id, "trial_val_f1")) == 2
        assert json.loads(client.get_run(m.mlflow_run_id).data.params["class_counts"]).keys() == {"no", "yes"}
    parent = client.get_run(report.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlfleet.role"] == "ensemble"
    assert parent.data.params["n_members"] == "2" and parent.data.tags["partitioning"] == "by_column"
    assert len(open_results(report.results, ENSEMBLES).read()) == 4
