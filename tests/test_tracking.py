"""The MLflow side against a real sqlite store in tmp_path."""

import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from helpers import open_parent
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlfleet import settings
from mlfleet.errors import MlfleetError
from mlfleet.settings import Settings
from mlfleet.stores import model_format, runs, store


def test_standalone_sweep_creates_its_parent_in_the_named_experiment():
    sweep = open_parent()
    client = mlflow.MlflowClient()
    run = client.get_run(sweep.tracking.parent_run_id)
    assert sweep.parent.created_here and run.info.status == "RUNNING"
    assert client.get_experiment(run.info.experiment_id).name == "exp"
    assert run.data.params == {"models": "svm:1", "seed": "42"} and run.data.tags["sweep_id"] == "s-1"
    sweep.close(metrics={"n_failed": 0.0, "best_score": float("nan")}, failed=False)
    run = client.get_run(sweep.tracking.parent_run_id)
    assert run.info.status == "FINISHED" and "best_score" not in run.data.metrics


def test_under_mlflow_run_the_parent_is_the_run_it_made_and_workers_do_not_inherit_it(monkeypatch):
    client = mlflow.MlflowClient()
    exp = client.create_experiment("given")
    outer = client.create_run(exp)
    client.log_param(outer.info.run_id, "seed", "42")  # `mlflow run` logs its parameters first
    monkeypatch.setenv("MLFLOW_RUN_ID", outer.info.run_id)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp)
    found = settings.read()  # what a command does first: read its settings once, then set its process up
    settings.process_setup()
    assert "MLFLOW_RUN_ID" not in os.environ and "MLFLOW_EXPERIMENT_ID" not in os.environ
    sweep = open_parent(experiment="ignored", settings=found)
    assert sweep.tracking.parent_run_id == outer.info.run_id and sweep.tracking.experiment_id == exp
    assert not sweep.parent.created_here
    child = sweep.model.start("000-svm-all", {"model_id": "0"})
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == outer.info.run_id
    sweep.model.fail(child, "ValueError: boom")
    assert client.get_run(child).info.status == "FAILED"
    sweep.close(metrics={}, failed=True)
    assert client.get_run(outer.info.run_id).info.status == "RUNNING"  # `mlflow run` ends it by exit code


def test_child_logs_model_that_loads_and_predicts(tmp_path):
    sweep = open_parent()
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5, "b": [1.0, 0.0, 1.0, 0.0] * 5})
    y = [0, 1, 0, 1] * 5
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    child = sweep.model.start("000", {})
    uri = sweep.model.finish(
        child,
        params={"C": 1.0},
        metrics={"f1": 1.0, "roc_auc": float("nan")},
        history={"val_f1": (0.5, 0.7, 0.9)},
        tags={"node": "n"},
        model=model,
        input_example=X.head(2),
    )
    client = mlflow.MlflowClient()
    run = client.get_run(child)
    assert run.info.status == "FINISHED" and run.data.metrics["val_f1"] == 0.9 and "roc_auc" not in run.data.metrics
    assert [m.step for m in client.get_metric_history(child, "val_f1")] == [0, 1, 2]
    assert list(mlflow.pyfunc.load_model(uri).predict(X.head(4))) == [0, 1, 0, 1]
    assert mlflow.active_run() is None
    sweep.close(metrics={}, failed=False)


def test_a_worker_checks_serving_once_per_kind_and_every_model_loads_with_its_metrics(tmp_path, monkeypatch):
    """Many models of one kind: MLflow's serving check (a reload and a predict) runs for the first
    of each kind only, and every model still loads, predicts on rows read from a CSV, and carries
    its run's metrics in the Models view; skops's schema is written without indentation."""
    import json
    import zipfile

    import mlflow.models.utils

    checked = []
    original = mlflow.models.utils._validate_serving_input

    def counting(model_uri, serving_input):
        checked.append(model_uri)
        return original(model_uri, serving_input)

    monkeypatch.setattr(mlflow.models.utils, "_validate_serving_input", counting)
    monkeypatch.setattr(model_format, "_SERVED", set())
    sweep = open_parent()
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5, "b": [1, 0, 1, 0] * 5, "c": ["x", "y"] * 10})
    y = [0, 1, 0, 1] * 5
    X.to_csv(tmp_path / "rows.csv", index=False)
    numeric = X[["a", "b"]]
    fits = [(numeric, C) for C in (0.1, 1.0, 10.0)] + [(numeric.astype(float), 1.0)]  # the last: another dtype
    client = mlflow.MlflowClient()
    for i, (frame, C) in enumerate(fits):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(frame, y)
        child = sweep.model.start(f"00{i}", {})
        uri = sweep.model.finish(
            child,
            params={"C": C},
            metrics={"f1": 0.5 + i / 10},
            history={"val_f1": (0.5, 0.6)},
            tags={},
            model=model,
            input_example=frame.head(2),
        )
        run = client.get_run(child)
        assert run.info.status == "FINISHED" and run.data.tags[runs.MODEL_URI_TAG] == uri
        logged = mlflow.get_logged_model(uri.split("/")[-1])
        assert {m.key: m.value for m in logged.metrics} == {"f1": 0.5 + i / 10, "val_f1": 0.5}
        rows = pd.read_csv(tmp_path / "rows.csv")[list(frame.columns)]
        assert list(mlflow.pyfunc.load_model(uri).predict(rows.head(4))) == list(model.predict(frame.head(4)))
        skops_file = next(Path(mlflow.artifacts.download_artifacts(uri)).rglob("*.skops"))
        schema = zipfile.ZipFile(skops_file).read("schema.json").decode()
        assert "\n" not in schema and json.loads(schema)["__class__"] == "Pipeline"
    assert len(checked) == 2  # the first model of each kind (int and float "b")
    sweep.close(metrics={}, failed=False)


def test_a_retried_model_reuses_an_empty_run_and_replaces_one_that_began_logging():
    """A worker that died before logging leaves a run the retry reuses; one that died while its
    model was being logged (model begun, parameters not yet) leaves a run marked stale, and
    that half-logged model leaves the Models view."""
    sweep = open_parent()
    ctx, client = sweep.tracking, mlflow.MlflowClient()
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5})
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, [0, 1, 0, 1] * 5)

    empty = runs.start(ctx, run_name="000", tags={})
    assert runs.start(ctx, run_name="000", tags={}, previous=empty, attempt=2) == empty
    assert client.get_run(empty).data.tags[runs.ATTEMPT_TAG] == "2"

    begun = runs.start(ctx, run_name="001", tags={})
    logged = model_format.LoggedAs(name="001", tags={}, params={})
    with mlflow.start_run(run_id=begun):
        half = model_format.log_pipeline(model, X.head(2), logged, model_format.trusted_types(model))
    client.update_run(begun, status="RUNNING")  # as a worker killed before the run's last batch leaves it
    assert not client.get_run(begun).data.params

    retried = runs.start(ctx, run_name="001", tags={}, previous=begun, attempt=2)
    assert retried != begun
    stale = client.get_run(begun)
    assert stale.info.status == "FAILED" and stale.data.tags[runs.STALE_TAG].startswith("its worker died")
    left = client.search_logged_models(experiment_ids=[ctx.experiment_id])
    assert half.model_id not in {m.model_id for m in left}
    sweep.close(metrics={}, failed=False)


def test_foreign_types_are_never_trusted():
    class Mine(LogisticRegression):
        pass

    with pytest.raises(MlfleetError, match="types outside the trusted libraries"):
        model_format.trusted_types(Mine().fit([[0.0], [1.0]], [0, 1]))


def test_unreachable_store_is_one_line():
    with pytest.raises(MlfleetError, match=r"the MLflow tracking store .* cannot be used"):
        store.prepare("http://127.0.0.1:9", Settings())


@pytest.mark.parametrize("head", [10_000, 40])
def test_the_datasets_schema_is_mlflows_own_inference_without_reading_every_cell(head, monkeypatch):
    """The dataset logged with every run has the schema ``mlflow.data.from_pandas`` infers (MLflow reads
    every cell in Python: 74 s on a million rows); types come from the first rows and each column's
    first value, so a column missing only in later rows, or empty in the first rows, comes out the same."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = 300
    X = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "n": rng.integers(0, 9, rows),
            "city": rng.choice(["oslo", "lima"], rows),
            "late_gap": np.where(np.arange(rows) == 250, np.nan, 1.5),  # missing only after the first rows
            "late_text": [None] * 100 + ["b"] * (rows - 100),  # present only after the first rows
            "flag": rng.random(rows) < 0.5,
        }
    )
    y = rng.integers(0, 2, rows)
    monkeypatch.setattr(model_format, "SCHEMA_ROWS", head)
    ours = model_format.dataset_entity(X, y, name="t", source="t.csv", digest="d", target="target")
    mlflows = mlflow.data.from_pandas(X.assign(target=y), name="t", targets="target", digest="d")._to_mlflow_entity()
    assert ours.schema == mlflows.schema and ours.profile == mlflows.profile
    assert '"required": false' in ours.schema and "late_text" in ours.schema
