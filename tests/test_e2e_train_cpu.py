"""`mlflow run . -e train_cpu --env-manager local` as a user runs it, then both stores read back."""

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import append_row, assert_serves_what_was_scored, mlflow_run, project_copy, read_results
from test_secrets import SECRETS, assert_no_secret_left

from mlfleet.data import STRATEGIES
from mlfleet.stores import rows
from mlfleet.zoo import cpu_families

pytestmark = pytest.mark.e2e

ONE_PER_FAMILY = ",".join(f"{name}:1" for name in cpu_families())


@pytest.fixture
def project(tmp_path, monkeypatch):
    # The embedded defaults: no tracking URI set, so MLflow uses sqlite:///mlflow.db in the project.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    return project_copy(tmp_path)


def children_of(client, parent):
    return client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")


def only_parent(client):
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`mlfleet.role` = 'sweep'")
    assert len(runs) == 1
    return runs[0]


def test_train_cpu_end_to_end(project, mixed_csv):
    # secrets in the environment, as on a real machine: they must appear nowhere in what the sweep leaves
    proc = mlflow_run(
        project,
        "train_cpu",
        {"data": mixed_csv.name, "target": "churn", "models": ONE_PER_FAMILY, "n_trials": "2", "ensemble": "4"},
        env=SECRETS,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    n = len(cpu_families())
    assert f"{n} of {n} models succeeded" in proc.stderr
    assert "Token authentication" not in proc.stderr  # nothing the user cannot act on (a Ray of our own)

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    parent = only_parent(client)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["n_succeeded"] == n and parent.data.metrics["n_failed"] == 0
    figures = parent.data.metrics  # how well the cores were used: shares that cannot pass 100%
    assert 0 < figures["packing_efficiency"] <= 1 and 0 < figures["cpu_utilisation"] <= 1
    assert figures["fleet_cpu_s"] > figures["fit_cpu_s"] > 0  # the tasks also recorded what they fitted
    assert figures["ideal_wall_s"] <= figures["wall_s"]
    assert parent.data.params["models"] == ONE_PER_FAMILY
    sweep_id = parent.data.tags["sweep_id"]
    assert sweep_id.startswith("train_cpu-") and sweep_id in proc.stderr
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["columns.json", "results.csv"]
    columns = json.loads(open(client.download_artifacts(parent.info.run_id, "columns.json", str(project))).read())
    assert {c["name"]: c["role"] for c in columns["columns"]}["segment"] == "categorical"
    assert "columns: " in proc.stderr and parent.data.tags["columns"].startswith("numeric=")

    everything = children_of(client, parent)
    children = [c for c in everything if c.data.tags["mlfleet.role"] == "model"]
    assert sorted(int(c.data.params["model_id"]) for c in children) == list(range(n))
    file = pd.read_csv(mixed_csv)
    raw = file.drop(columns=["churn"])
    assert raw.isna().any().any()  # the rows hold missing values and text, as the file does
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["sweep_id"] == sweep_id and child.data.tags["device"] == "cpu"
        assert child.data.params["family"] == child.data.tags["family"]
        assert {"accuracy", "f1", "roc_auc", "log_loss", "tuning_s", "train_s"} <= set(child.data.metrics)
        assert len(client.get_metric_history(child.info.run_id, "val_f1")) == 2
        assert child.inputs.dataset_inputs[0].dataset.name == "customers"
        family = child.data.params["family"]  # one model a family: its cores held and used, on the parent
        assert figures[f"cores_held/{family}"] == float(child.data.tags["cpus"])
        assert 0 < figures[f"cores_used/{family}"] and 0 < figures[f"task_cores_used/{family}"]
    assert "cores per model, held / used fitting / used over the task: " in proc.stderr

    # ensemble=4: the sweep's close selected an ensemble over its models, logged as a run of its own
    (ensemble,) = [c for c in everything if c.data.tags["mlfleet.role"] == "selected_ensemble"]
    assert ensemble.info.status == "FINISHED" and 2 <= int(ensemble.data.params["n_members"]) <= 4
    assert parent.data.tags["ensemble_model_uri"] in proc.stderr and "ensemble: The ensemble of" in proc.stderr
    assert parent.data.metrics["ensemble_members"] == int(ensemble.data.params["n_members"])
    assert ensemble.data.metrics["val_f1"] == pytest.approx(parent.data.metrics["ensemble_val_score"])

    table = read_results(str(project / "lakehouse" / "model_training_results"))
    assert len(table) == n and table["model_id"].is_unique
    by_run = {c.info.run_id: c for c in children}
    assert set(table["mlflow_run_id"]) == set(by_run)
    assert (table["status"] == "FINISHED").all() and (table["sweep_id"] == sweep_id).all()
    assert table["feature_strategy"].nunique() == min(n, len(STRATEGIES))
    # never more CPUs held at once than the machine has: a task waiting on Ray gives its CPUs
    # back, and Ray starts another model on them (the board is told, never waited on)
    events = sorted(
        [(r.finished_at, 0, -r.cpus) for r in table.itertuples()]
        + [(r.started_at, 1, r.cpus) for r in table.itertuples()]
    )
    held = np.cumsum([cpus for _, _, cpus in events])
    assert held.max() <= os.cpu_count(), events
    for row in table.itertuples():
        assert row.score == pytest.approx(by_run[row.mlflow_run_id].data.metrics["f1"])
        # every family serves exactly what was scored, in the file's labels (issues 15 and 30)
        assert_serves_what_was_scored(row.model_uri, raw, file["churn"], min_accuracy=0.6)
    assert_serves_what_was_scored(parent.data.tags["ensemble_model_uri"], raw, file["churn"], min_accuracy=0.6)

    # writing a model's row again leaves one row
    again = rows.ResultRow(**{k: getattr(row, k) for k in rows.schema().names})
    assert append_row(str(project / "lakehouse" / "model_training_results"), again) is False
    assert len(read_results(str(project / "lakehouse" / "model_training_results"))) == n
    assert_no_secret_left(project, proc.stdout + proc.stderr)


def test_a_failing_model_is_recorded_and_the_others_go_on(project):
    proc = mlflow_run(
        project,
        "train_cpu",
        {"models": "naive_bayes:2,logistic:1", "n_trials": "2", "n_samples": "300"},
        env={"MLFLEET_FAIL_MODEL_IDS": "1"},
    )
    assert proc.returncode != 0
    assert "2 of 3 models succeeded, 1 failed" in proc.stderr
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    parent = only_parent(client)
    assert parent.info.status == "FAILED" and parent.data.metrics["n_failed"] == 1
    status = {int(c.data.params.get("model_id", c.data.tags["model_id"])): c for c in children_of(client, parent)}
    assert {k: v.info.status for k, v in status.items()} == {0: "FINISHED", 1: "FAILED", 2: "FINISHED"}
    assert "injected failure of model 1" in status[1].data.tags["error"]
    table = read_results(str(project / "lakehouse" / "model_training_results")).set_index("model_id")
    assert table.loc[1, "status"] == "FAILED" and "injected failure" in table.loc[1, "error"]
    assert table.loc[1, "mlflow_run_id"] == status[1].info.run_id
    assert (table.loc[[0, 2], "status"] == "FINISHED").all()


def test_train_cpu_on_a_sample_of_its_training_rows(project, mixed_csv):
    """``-P sample=ROWS``: the models train on that many training rows, said on the terminal and the parent run
    (a bad sample: tests/test_sample.py)."""
    proc = mlflow_run(project, "train_cpu", {"data": mixed_csv.name, "target": "churn", "models": "random_forest:1",
                                             "n_trials": "1", "sample": "60"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sample=60: the models train on 60 of the 144 training rows (stratified by class, seed 42)" in proc.stderr
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    parent = only_parent(client)
    assert parent.data.params["sample"] == "60" and parent.data.tags["training_sample"] == "60 of 144 training rows"
    (row,) = read_results(str(project / "lakehouse" / "model_training_results")).itertuples()
    assert row.status == "FINISHED"
    raw = pd.read_csv(mixed_csv)
    assert_serves_what_was_scored(row.model_uri, raw.drop(columns=["churn"]), raw["churn"], min_accuracy=0.6)


def test_bad_input_under_mlflow_run_leaves_no_running_run_and_no_table(project):
    proc = mlflow_run(project, "train_cpu", {"data": "nonsense"})
    assert proc.returncode != 0
    assert "error: unknown data 'nonsense'" in proc.stderr
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]  # the run `mlflow run` made, closed
    assert not (project / "lakehouse").exists()


@pytest.mark.parametrize("how", ["zip", "folder"])
def test_mlflow_run_from_another_folder_leaves_everything_in_that_folder(tmp_path, mixed_csv, how):
    # MLflow unpacks a .zip project (as it clones a Git one) into a temporary folder, and runs a
    # project folder in place: either way it starts the entry point in the project's folder, and
    # the relative data, the default results and the store are the user's folder's
    import shutil
    import subprocess
    import sys

    source = project_copy(tmp_path / "source")
    archive = shutil.make_archive(str(tmp_path / "project"), "zip", source) if how == "zip" else str(source)
    user = tmp_path / "user"
    user.mkdir()
    shutil.move(str(mixed_csv), user / "mine.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    cmd = [sys.executable, "-m", "mlflow", "run", archive, "-e", "train_cpu", "--env-manager", "local"]
    params = {"data": "mine.csv", "target": "churn", "models": "naive_bayes:1", "n_trials": "1"}
    for key, value in params.items():
        cmd += ["-P", f"{key}={value}"]
    proc = subprocess.run(cmd, cwd=user, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"relative paths are taken from {user.resolve()}, where mlflow run was started" in proc.stderr
    table = read_results(str(user / "lakehouse" / "model_training_results"))
    assert len(table) == 1 and table["status"].iloc[0] == "FINISHED"
    assert (user / "mlflow.db").exists() and not (source / "lakehouse").exists()
