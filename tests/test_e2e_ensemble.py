"""`mlflow run . -e ensemble --env-manager local` as a user runs it, then MLflow and Delta read back."""

import json

import mlflow
import numpy as np
import pytest
from helpers import mlflow_run, project_copy, read_results

from ensembles import ENSEMBLES
from mlfleet.config import DataConfig
from mlfleet.data import load_dataset, split_dataset

pytestmark = pytest.mark.e2e

TABLE = "lakehouse/ensemble_results"


def read_rows(uri):
    """The ensemble table's rows (what ``ensembles._table.read_rows`` read)."""
    return read_results(uri, spec=ENSEMBLES)


@pytest.fixture
def project(tmp_path, monkeypatch):
    # The embedded defaults: no tracking URI set, so MLflow uses sqlite:///mlflow.db in the project.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    return project_copy(tmp_path)


def read_back(project):
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    (parent,) = client.search_runs(experiments, "tags.`mlfleet.role` = 'ensemble'")
    # analyze reads runs tagged sweep/model as the fleet's: none of these
    assert not any(client.search_runs(experiments, f"tags.`mlfleet.role` = '{role}'") for role in ("sweep", "model"))
    children = client.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_kind = {}
    for child in children:
        assert child.data.tags["mlfleet.role"] == "ensemble_model"
        by_kind.setdefault(child.data.tags["kind"], []).append(child)
    return client, parent, by_kind


def test_ensemble_of_classifiers_end_to_end(project):
    params = {"partitions": "4", "n_samples": "600", "n_features": "10"}
    proc = mlflow_run(project, "ensemble", params)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "verdict: " in proc.stderr and "members in parallel" in proc.stderr

    client, parent, by_kind = read_back(project)
    assert parent.info.status == "FINISHED" and parent.data.tags["entry_point"] == "ensemble"
    assert parent.data.params["partitions"] == "4" and parent.data.tags["partitioning"] == "stratified"
    metrics = parent.data.metrics
    assert {
        "ensemble_f1",
        "single_f1",
        "member_f1_mean",
        "ensemble_train_wall_s",
        "single_train_wall_s",
        "train_speedup",
    } <= set(metrics)
    assert parent.data.tags["verdict"].startswith(
        ("ensemble of 4 wins on test f1", "single model wins on test f1", "a tie: f1")
    )
    assert sorted(a.path for a in client.list_artifacts(parent.info.run_id)) == [
        "columns.json",
        "comparison.png",
        "ensemble_results.csv",
    ]
    png = client.download_artifacts(parent.info.run_id, "comparison.png", str(project))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    members = sorted(by_kind["member"], key=lambda r: int(r.data.tags["member"]))
    assert [r.data.tags["member"] for r in members] == ["0", "1", "2", "3"]
    assert len(by_kind["single"]) == 1 and len(by_kind["ensemble"]) == 1
    for run in members:
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        counts = json.loads(run.data.params["class_counts"])
        assert sum(counts.values()) == run.data.metrics["shard_rows"] and min(counts.values()) > 0
        assert run.data.metrics["class_share_0"] + run.data.metrics["class_share_1"] == pytest.approx(1.0)
        assert {"f1", "accuracy", "val_f1", "weight", "fit_s"} <= set(run.data.metrics)

    rows = read_rows(str(project / TABLE))
    assert sorted(rows["kind"]) == ["ensemble", "member", "member", "member", "member", "single"]
    assert (rows["status"] == "FINISHED").all() and rows["ensemble_id"].nunique() == 1
    assert set(rows["mlflow_run_id"]) == {r.info.run_id for runs in by_kind.values() for r in runs}
    member_rows = rows[rows["kind"] == "member"].sort_values("member")
    assert member_rows["weight"].sum() == pytest.approx(1.0)
    assert member_rows["shard_rows"].sum() == rows.loc[rows["kind"] == "single", "shard_rows"].item()
    ensemble = rows[rows["kind"] == "ensemble"].iloc[0]
    assert ensemble["voting"] == "soft" and ensemble["n_members"] == 4
    assert ensemble["score"] == pytest.approx(metrics["ensemble_f1"])

    # The logged ensemble predicts raw rows, and its answer is the vote of the logged members.
    split = split_dataset(load_dataset(DataConfig(n_samples=600, n_features=10)), seed=42)
    X = split.X_test
    voted = mlflow.pyfunc.load_model(ensemble["model_uri"]).predict(X)
    probas = [mlflow.sklearn.load_model(uri).predict_proba(X) for uri in member_rows["model_uri"]]
    expected = np.argmax(np.average(probas, axis=0, weights=member_rows["weight"].to_numpy()), axis=1)
    np.testing.assert_array_equal(np.asarray(voted), expected)
    single = mlflow.pyfunc.load_model(rows.loc[rows["kind"] == "single", "model_uri"].item())
    assert set(np.unique(single.predict(X))) <= {0, 1}


def test_ensemble_of_regressors_with_validation_weights(project):
    # ElasticNet members (the logistic family's regressor) keep this one quick; the forest is above.
    params = {
        "task": "regression",
        "partitions": "4",
        "n_samples": "500",
        "n_features": "8",
        "weights": "validation",
        "model": "logistic",
    }
    proc = mlflow_run(project, "ensemble", params)
    assert proc.returncode == 0, proc.stderr[-3000:]

    client, parent, by_kind = read_back(project)
    assert parent.info.status == "FINISHED" and parent.data.tags["partitioning"] == "random"
    assert {"ensemble_rmse", "single_rmse", "ensemble_r2"} <= set(parent.data.metrics)
    assert len(by_kind["member"]) == 4
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in by_kind["member"])

    rows = read_rows(str(project / TABLE))
    members = rows[rows["kind"] == "member"].sort_values("member")
    assert len(members) == 4 and len(rows) == 6 and (rows["status"] == "FINISHED").all()
    inverse = 1 / members["val_score"].to_numpy()  # rmse: lower is better, so weights go by its inverse
    np.testing.assert_allclose(members["weight"].to_numpy(), inverse / inverse.sum())
    ensemble = rows[rows["kind"] == "ensemble"].iloc[0]
    assert ensemble["voting"] == "mean" and ensemble["model_type"] == "VotingRegressor"

    split = split_dataset(load_dataset(DataConfig(task="regression", n_samples=500, n_features=8)), seed=42)
    X = split.X_test.head(50)
    voted = np.asarray(mlflow.pyfunc.load_model(ensemble["model_uri"]).predict(X))
    each = [np.asarray(mlflow.pyfunc.load_model(uri).predict(X)) for uri in members["model_uri"]]
    np.testing.assert_allclose(voted, np.average(each, axis=0, weights=members["weight"].to_numpy()))
    rmse = float(
        np.sqrt(
            np.mean(
                (np.asarray(mlflow.pyfunc.load_model(ensemble["model_uri"]).predict(split.X_test)) - split.y_test) ** 2
            )
        )
    )
    assert rmse == pytest.approx(ensemble["rmse"])


def test_a_failing_member_is_recorded_and_the_others_vote(project):
    params = {"partitions": "3", "n_samples": "300", "n_features": "6", "model": "logistic"}
    proc = mlflow_run(project, "ensemble", params, env={"MLFLEET_FAIL_MODEL_IDS": "1"})
    assert proc.returncode != 0
    assert "failed: member 1: RuntimeError: injected failure of member 1" in proc.stderr

    _, parent, by_kind = read_back(project)
    assert parent.info.status == "FAILED" and parent.data.metrics["n_failed"] == 1
    status = {r.data.tags["member"]: r.info.status for r in by_kind["member"]}
    assert status == {"0": "FINISHED", "1": "FAILED", "2": "FINISHED"}
    rows = read_rows(str(project / TABLE)).set_index(["kind", "member"])
    assert rows.loc[("member", 1), "status"] == "FAILED" and "injected failure" in rows.loc[("member", 1), "error"]
    assert rows.loc[("ensemble", -1), "n_members"] == 2 and rows.loc[("ensemble", -1), "status"] == "FINISHED"
    assert json.loads(rows.loc[("ensemble", -1), "params_json"])["members"] == [0, 2]


def test_a_sharded_parquet_folder_end_to_end(project):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    n = 3000
    X = rng.normal(size=(n, 5))
    label = np.where(X[:, 0] - X[:, 2] + rng.normal(0, 0.5, n) > 0, "churn", "stay")
    table = pa.table({**{f"x{i}": X[:, i] for i in range(5)}, "label": label})
    (project / "events").mkdir()
    for i, start in enumerate(range(0, n, 1000)):
        pq.write_table(table.slice(start, 1000), project / "events" / f"part-{i}.parquet", row_group_size=200)
    params = {"data": "events", "target": "label", "partitions": "4", "model": "logistic", "sharded": "on",
              "register": "events-ensemble"}  # fmt: skip
    proc = mlflow_run(project, "ensemble", params)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the table is sharded: each member read its own shard" in proc.stderr

    client, parent, by_kind = read_back(project)
    assert parent.info.status == "FINISHED" and parent.data.tags["sharded"] == "true"
    assert parent.data.tags["partitioning"] == "row_groups" and "parquet" in parent.data.tags["sharding"]
    metrics = parent.data.metrics
    assert {"ensemble_f1", "single_f1", "holdout_rows_kept", "scoring_rows", "driver_peak_rss_bytes"} <= set(metrics)
    # the driver read metadata only; the validation rows were the holdout task's, on a worker
    assert metrics["driver_rows_read"] == 0 and metrics["driver_bytes_read"] < 0.15 * metrics["file_bytes"]
    assert metrics["holdout_rows_read"] == n
    members = sorted(by_kind["member"], key=lambda r: int(r.data.tags["member"]))
    assert [r.info.status for r in members] == ["FINISHED"] * 4
    assert sum(r.data.metrics["read_rows"] for r in members) == n  # the table read once, shard by shard
    rows = read_rows(str(project / TABLE))
    assert sorted(rows["kind"]) == ["ensemble", "member", "member", "member", "member", "single"]
    assert (rows["status"] == "FINISHED").all() and set(rows["partitioning"]) == {"row_groups", "all"}
    ensemble = rows[rows["kind"] == "ensemble"].iloc[0]
    assert ensemble["score"] == pytest.approx(parent.data.metrics["ensemble_f1"])

    version = client.get_model_version("events-ensemble", "1")
    assert version.run_id == ensemble["mlflow_run_id"]
    frame = pd.read_parquet(project / "events")
    served = np.asarray(mlflow.pyfunc.load_model("models:/events-ensemble/1").predict(frame.drop(columns=["label"])))
    assert set(np.unique(served)) <= {"churn", "stay"} and np.mean(served == frame["label"].to_numpy()) > 0.8
