"""The champion a user puts to work: trained on a CSV with a text target, text and integer
columns and missing values (through the Python API), chosen on validation, predicting the
labels on rows read straight from the file, the Parquet copy and the Delta copy, and served by
``mlflow models serve`` on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import assert_serves_what_was_scored
from servers import _stop, _wait_for, child_env, free_port

import mlfleet

pytestmark = pytest.mark.e2e
TARGET = "churn"
NAME = "churn-champion"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, ray_local):
    """A sweep and an analysis on a user's CSV: what both stores and the registry hold afterwards."""
    import os

    tmp = tmp_path_factory.mktemp("champion")
    old_cwd, old_uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(tmp)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(None)
    try:
        rng = np.random.default_rng(0)
        n = 300
        frame = pd.DataFrame(
            {
                "visits": rng.poisson(3, n),  # whole numbers, no gaps: an integer column
                "income": rng.normal(50, 15, n),
                "segment": rng.choice(["retail", "online", "partner"], n),
            }
        )
        signal = frame["income"] / 15 + (frame["segment"] == "online") * 1.5 - frame["visits"] / 3
        frame[TARGET] = np.where(signal + rng.normal(0, 0.5, n) > signal.median(), "yes", "no")
        frame.loc[rng.choice(n, 20, replace=False), "income"] = np.nan
        csv = tmp / "customers.csv"
        frame.to_csv(csv, index=False)
        sweep = mlfleet.train_cpu(data=str(csv), target=TARGET, models="logistic:1,xgboost:1,svm:1", n_trials=3)
        analysis = mlfleet.analyze(registered_model=NAME, k=3)
        yield {"tmp": tmp, "csv": csv, "sweep": sweep, "analysis": analysis, "uri": os.environ["MLFLOW_TRACKING_URI"]}
    finally:
        os.chdir(old_cwd)
        if old_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = old_uri


@pytest.fixture
def store(trained, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    return mlflow.MlflowClient(trained["uri"])


def test_every_model_predicts_the_labels_on_rows_read_from_the_file(trained, store, tmp_path):
    csv = trained["csv"]
    raw = pd.read_csv(csv).drop(columns=[TARGET])
    raw.to_parquet(tmp_path / "customers.parquet")
    from deltalake import DeltaTable, write_deltalake

    write_deltalake(str(tmp_path / "customers_delta"), raw)
    readers = {
        "read_csv": raw,
        "read_parquet": pd.read_parquet(tmp_path / "customers.parquet"),
        "delta": DeltaTable(str(tmp_path / "customers_delta")).to_pandas(),
    }
    assert raw["visits"].dtype == np.int64  # the file's integer column reads as integers
    for outcome in trained["sweep"].outcomes:
        row = outcome.row
        assert row.ok and row.val_score is not None and json.loads(row.classes_json) == ["no", "yes"]
        model = mlflow.pyfunc.load_model(row.model_uri)
        inputs = {c["name"]: c["type"] for c in model.metadata.signature.inputs.to_dict()}
        assert inputs["visits"] == "long" and inputs["income"] == "double"
        assert model.metadata.signature.outputs.to_dict()[0]["type"] == "string"
        labels = pd.read_csv(csv)[TARGET]
        for rows in readers.values():
            assert_serves_what_was_scored(row.model_uri, rows, labels, min_accuracy=0.6)
        native = mlflow.sklearn.load_model(row.model_uri)
        assert list(native.classes_) == ["no", "yes"]
        if hasattr(native, "predict_proba"):
            assert native.predict_proba(raw.head(3)).shape == (3, 2)


def test_the_fleet_is_named_and_sortable_in_the_models_view(trained, store):
    sweep = trained["sweep"]
    models = mlflow.search_logged_models(
        experiment_ids=[sweep.experiment_id],
        filter_string=f"tags.sweep_id = '{sweep.sweep_id}'",
        order_by=[{"field_name": "metrics.f1", "ascending": False}],
        output_format="list",
    )
    expected = {f"{o.row.model_id:03d}-{o.row.family}-{o.row.feature_strategy}" for o in sweep.outcomes}
    assert {m.name for m in models} == expected
    assert all(str(m.status).endswith("READY") for m in models)  # no Failed model left by a retry
    assert all(m.tags["mlflow.source.name"] == "train_cpu" and "family" in m.params for m in models)
    f1 = [next(x.value for x in m.metrics if x.key == "f1") for m in models]
    assert f1 == sorted(f1, reverse=True)
    assert store.get_run(sweep.parent_run_id).info.run_name == sweep.sweep_id


def test_the_champion_is_the_best_on_validation(trained, store):
    rows = pd.DataFrame([o.row.__dict__ for o in trained["sweep"].outcomes])
    best = rows.sort_values("model_id").sort_values("val_score", ascending=False, kind="stable").iloc[0]
    assert trained["sweep"].best.model_id == best.model_id
    version = store.get_model_version_by_alias(NAME, "champion")
    assert version.run_id == best.mlflow_run_id and float(version.tags["score"]) == pytest.approx(best.score)


def test_the_champion_served_over_rest_answers_in_labels(trained, store, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    env = child_env(MLFLOW_TRACKING_URI=trained["uri"])
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:

        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).status == 200
            except OSError:
                return False

        _wait_for(ready, 180, "mlflow models serve", proc, log)
        rows = pd.read_csv(trained["csv"]).drop(columns=[TARGET]).head(8)
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body.encode(), headers={"Content-Type": "application/json"}
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert len(answer["predictions"]) == 8 and set(answer["predictions"]) <= {"yes", "no"}
        local = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(rows)
        assert list(local) == answer["predictions"]
    finally:
        _stop(proc)


def test_the_analysis_logs_the_ensemble_and_evaluates_the_champion(trained, store):
    run = store.get_run(trained["analysis"].run_id)
    file = pd.read_csv(trained["csv"])
    if "ensemble_model_uri" in run.data.tags:  # the selection mixed two models or more
        assert_serves_what_was_scored(
            run.data.tags["ensemble_model_uri"], file.drop(columns=[TARGET]), file[TARGET], min_accuracy=0.6
        )
    else:
        assert "kept the best single model alone" in trained["analysis"].ensemble_note
    assert {"accuracy_score", "f1_score", "roc_auc"} <= set(run.data.metrics)  # mlflow.models.evaluate
    artifacts = {a.path for a in store.list_artifacts(run.info.run_id)}
    assert any("confusion_matrix" in path for path in artifacts), artifacts


def test_scoring_a_table_with_spark_udf_and_in_pandas_batches(trained, store, tmp_path, monkeypatch):
    """docs/champion.md: the champion over a Parquet table, with Spark (local[2]) and without it."""
    from pyspark.sql import SparkSession

    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # Spark's Python workers: this environment
    from pyspark.sql.functions import struct

    rows = pd.read_csv(trained["csv"]).drop(columns=[TARGET])
    rows.to_parquet(tmp_path / "to_score.parquet")
    uri = f"models:/{NAME}@champion"
    expected = list(mlflow.pyfunc.load_model(uri).predict(rows))

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("mlfleet-score")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        table = spark.read.parquet(str(tmp_path / "to_score.parquet"))
        predict = mlflow.pyfunc.spark_udf(spark, uri, result_type="string", env_manager="local")
        scored = table.withColumn("prediction", predict(struct(*table.columns))).toPandas()
    finally:
        spark.stop()
    assert list(scored.columns) == [*rows.columns, "prediction"]
    assert list(scored["prediction"]) == expected and set(expected) <= {"yes", "no"}

    import pyarrow.parquet as pq

    model = mlflow.pyfunc.load_model(uri)
    parts = []
    for batch in pq.ParquetFile(tmp_path / "to_score.parquet").iter_batches(batch_size=100):
        frame = batch.to_pandas()
        parts.append(frame.assign(prediction=model.predict(frame)))
    assert list(pd.concat(parts)["prediction"]) == expected
