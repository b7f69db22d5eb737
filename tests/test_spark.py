"""The Spark path as far as it runs here: Spark 4 starts, but Delta's jars cannot be downloaded.

What runs: the results row as a Spark DataFrame; the same writer that writes Delta on a
cluster writing Parquet tables through Spark (create, append, evolve, read back); a whole
sweep with its data read from a Spark table and its rows written by the driver through
Spark, then analyze reading them and writing its summary table through Spark; and the one
clear line (under ``mlflow run`` too) when Spark has no Delta or pyspark is missing.
What does not: Delta's own skipping of a repeated ``txnAppId``/``txnVersion`` (docs/scaling-out.md).
"""

from __future__ import annotations

import io
import sys
from dataclasses import asdict, fields, make_dataclass, replace
from datetime import datetime, timezone

import mlflow
import pytest

pytest.importorskip("pyspark")

from helpers import assert_sweep_complete, mlflow_run, project_copy, read_results  # noqa: E402

from mlfleet.commands.analyze import AnalysisConfig, run_analysis  # noqa: E402
from mlfleet.commands.sweep import run_sweep  # noqa: E402
from mlfleet.config import DataConfig, FleetConfig  # noqa: E402
from mlfleet.errors import MlfleetError  # noqa: E402
from mlfleet.stores import rows as results  # noqa: E402
from mlfleet.stores import spark  # noqa: E402
from mlfleet.stores.rows import RESULTS as SPEC  # noqa: E402
from mlfleet.stores.rows import ResultRow, TableSpec  # noqa: E402
from mlfleet.stores.tables import open_results  # noqa: E402

RESULTS = "spark_catalog.default.model_training_results"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One local Spark for the module (it takes seconds to start), its warehouse in a temp dir."""
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("warehouse")
    active = (
        SparkSession.builder.master("local[1]")
        .appName("mlfleet-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    active.sparkContext.setLogLevel("ERROR")
    yield active
    active.stop()


@pytest.fixture
def fresh(session):
    """The session with no tables in ``default`` (tests share the module's session)."""
    for table in session.catalog.listTables("default"):
        session.sql(f"DROP TABLE IF EXISTS spark_catalog.default.`{table.name}`")
    return session


def row(model_id: int, **changes) -> ResultRow:
    at = datetime(2026, 11, 22, 8, 30, 15, 123456, tzinfo=timezone.utc)
    values = dict(
        sweep_id="s1",
        model_id=model_id,
        model_type="RandomForestClassifier",
        family="random_forest",
        device="cpu",
        feature_strategy="all",
        n_features=20,
        task="classification",
        params_json='{"max_depth": 4}',
        primary_metric="f1",
        score=0.9 + model_id / 100,
        accuracy=0.91,
        f1=0.9,
        roc_auc=None,
        log_loss=0.3,
        rmse=None,
        mae=None,
        r2=None,
        n_trials=3,
        tuning_s=1.5,
        train_s=0.25,
        cpus=1.0,
        gpus=0.0,
        status="FINISHED",
        error="",
        mlflow_run_id=f"run{model_id}",
        model_uri=f"models:/m-{model_id}",
        experiment_id="1",
        dataset="synthetic",
        dataset_digest="abc",
        started_at=at,
        finished_at=at,
        node="host:1",
        entry_point="train_cpu",
    )
    return ResultRow(**{**values, **changes})


def test_a_table_name_is_three_identifiers_and_an_existing_path_wins(tmp_path):
    assert is_table("main.ml.model_training_results") and is_table("spark_catalog.default.t")
    assert not is_table("lakehouse/model_training_results") and not is_table("default.t")
    assert not is_table("s3://bucket/a.b.c")
    (tmp_path / "a.b.c").mkdir()
    assert not is_table("a.b.c") and open_results("a.b.c").is_local
    assert not open_results("main.ml.results").is_local


def test_the_results_row_as_a_spark_dataframe(session):
    frame = session.createDataFrame([tuple(asdict(row(3)).values())], spark.ddl(results.schema()))
    assert frame.columns == results.schema().names
    types = dict(frame.dtypes)
    assert (types["model_id"], types["score"], types["sweep_id"], types["started_at"]) == (
        "bigint",
        "double",
        "string",
        "timestamp",
    )
    back = spark.to_pandas(frame, session).iloc[0]
    assert results.row_from_record(back.to_dict()) == row(3)  # every value, None and the UTC timestamp included


def test_the_writer_writes_parquet_through_spark(fresh):
    table = spark.SparkResults("spark_catalog.default.rows", SPEC, fresh, fmt="parquet")
    assert table.ensure() == [] and table.provider() == "parquet"
    table.append([row(0), row(1)], "mlfleet/s1/0")
    table.append([row(2, sweep_id="s2")], "mlfleet/s2/2")
    back = table.read(sweep_id="s1").sort_values("model_id")
    assert [results.row_from_record(r) for r in back.to_dict("records")] == [row(0), row(1)]
    assert len(table.read()) == 3 and table.ensure() == []
    with pytest.raises(MlfleetError, match="the Spark path only appends"):
        table.append([row(0)], "mlfleet/s1/0", version=2)


def test_a_table_of_an_earlier_schema_gains_the_new_columns(fresh):
    old = results.schema().remove(results.schema().get_field_index("entry_point"))
    fresh.sql(f"CREATE TABLE spark_catalog.default.{SPEC.name} ({spark.ddl(old)}) USING parquet")
    # the rows an earlier mlfleet wrote: its row type had no entry_point
    OldRow = make_dataclass(
        "OldRow", [(f.name, f.type) for f in fields(ResultRow) if f.name != "entry_point"], frozen=True
    )
    old_spec = TableSpec(SPEC.name, OldRow, SPEC.key)
    assert old_spec.schema() == old
    spark.SparkResults(RESULTS, old_spec, fresh, fmt="parquet").append(
        [OldRow(**{k: v for k, v in asdict(row(0)).items() if k != "entry_point"})], "mlfleet/s1/0"
    )
    table = spark.SparkResults(RESULTS, SPEC, fresh, fmt="parquet")
    assert table.ensure() == ["entry_point"]
    table.append([row(1)], "mlfleet/s1/1")
    back = table.read().set_index("model_id")["entry_point"]
    assert back.isna()[0] and back[1] == "train_cpu"  # the old row reads the new column as null


def test_tables_that_are_not_ours_are_refused_and_left_alone(fresh):
    fresh.sql("CREATE TABLE spark_catalog.default.events (id BIGINT, name STRING) USING parquet")
    with pytest.raises(
        MlfleetError, match=r"^results=spark_catalog.default.events is a table without the columns sweep_id"
    ):
        spark.SparkResults("spark_catalog.default.events", SPEC, fresh, fmt="parquet").ensure()
    fresh.sql("CREATE TABLE spark_catalog.default.typed (sweep_id STRING, model_id STRING) USING parquet")
    with pytest.raises(MlfleetError, match=r"model_id \(STRING where mlfleet writes BIGINT\)"):
        spark.SparkResults("spark_catalog.default.typed", SPEC, fresh, fmt="parquet").ensure()
    fresh.sql(f"CREATE TABLE spark_catalog.default.as_json ({spark.ddl(results.schema())}) USING json")
    with pytest.raises(MlfleetError, match="is a json table; mlfleet writes parquet tables"):
        spark.SparkResults("spark_catalog.default.as_json", SPEC, fresh, fmt="parquet").ensure()
    with pytest.raises(MlfleetError, match="the schema spark_catalog.nope does not exist"):
        spark.SparkResults("spark_catalog.nope.t", SPEC, fresh, fmt="parquet").ensure()
    assert [t.columns for t in [fresh.table("spark_catalog.default.events")]] == [["id", "name"]]


def test_without_delta_the_table_is_refused_in_one_line_and_not_created(fresh):
    assert not spark.has_delta(fresh)
    with pytest.raises(MlfleetError) as caught:
        open_results(RESULTS).ensure()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"results={RESULTS}: this Spark has no Delta Lake")
    assert "delta-spark" in message and "s3://" in message
    assert not fresh.catalog.tableExists(RESULTS)


def test_a_sweep_reads_a_spark_table_and_its_driver_writes_the_rows(fresh, ray_local, monkeypatch, tmp_path):
    from sklearn.datasets import load_wine

    monkeypatch.setattr(spark, "FORMAT", "parquet")  # the Delta writer, minus Delta
    wine = load_wine(as_frame=True).frame
    fresh.createDataFrame(wine).write.format("parquet").saveAsTable("spark_catalog.default.wine")
    models = (("logistic", 2), ("naive_bayes", 1))
    config = FleetConfig(
        data=DataConfig(source="spark_catalog.default.wine"),
        models=models,
        n_trials=2,
        results=RESULTS,
        experiment="spark",
    )
    out = io.StringIO()
    report = run_sweep(config, stream=out)
    assert report.exit_code == 0, out.getvalue()
    client = mlflow.MlflowClient()
    assert_sweep_complete(client, RESULTS, report.sweep_id, [0, 1, 2])
    rows = read_results(RESULTS, report.sweep_id)
    assert set(rows["dataset"]) == {"spark_catalog.default.wine"} and set(rows["task"]) == {"classification"}
    assert all(o.delta_s > 0 for o in report.outcomes)  # each row's write, timed where it happened: the driver
    assert not (tmp_path / "lakehouse").exists()  # nothing went through delta-rs
    parent = client.get_run(report.parent_run_id)
    assert parent.data.params["data"] == "spark_catalog.default.wine" and parent.data.tags["dataset_digest"]

    analysis = run_analysis(
        AnalysisConfig(experiment="spark", results=RESULTS, output=str(tmp_path / "report")), stream=io.StringIO()
    )
    assert analysis.summary.n_models == 3
    summary = fresh.table("spark_catalog.default.model_training_summary").toPandas()
    assert set(summary["analysis_id"]) == {analysis.plan.analysis_id}
    assert set(summary["model_type"]) == set(rows["model_type"])


def test_a_row_the_driver_cannot_write_fails_its_model_and_the_others_go_on(fresh, ray_local, monkeypatch):
    monkeypatch.setattr(spark, "FORMAT", "parquet")
    append, refused = spark.SparkResults.append, []

    def append_once_refused(
        self, rows, app_id="", *, version=1
    ):  # the first write of model 0 fails, as a lost connection would
        if rows[0].model_id == 0 and not refused:
            refused.append(app_id or self.spec.app_id(rows[0]))
            raise RuntimeError("the metastore went away")
        return append(self, rows, app_id, version=version)

    monkeypatch.setattr(spark.SparkResults, "append", append_once_refused)
    config = FleetConfig(models=(("naive_bayes", 2),), n_trials=1, results=RESULTS, experiment="spark")
    report = run_sweep(config, stream=io.StringIO())
    assert refused == [results.transaction_id(report.sweep_id, 0)] and report.exit_code == 1
    rows = read_results(RESULTS, report.sweep_id).set_index("model_id")
    assert rows.loc[0, "status"] == "FAILED" and "RuntimeError: the metastore went away" in rows.loc[0, "error"]
    assert rows.loc[1, "status"] == "FINISHED"
    client = mlflow.MlflowClient()
    assert client.get_run(rows.loc[0, "mlflow_run_id"]).info.status == "FAILED"  # the run says so too
    assert client.get_run(rows.loc[1, "mlflow_run_id"]).info.status == "FINISHED"


def test_resume_ensemble_and_benchmark_refuse_a_spark_table_before_doing_anything(tmp_path):
    from ensembles import EnsembleConfig, run_ensemble
    from mlfleet.commands.speedup import run_benchmark
    from mlfleet.config import BenchmarkConfig

    with pytest.raises(MlfleetError, match=r"^resume=train_cpu-x: resuming reads the table's Delta transactions"):
        run_sweep(FleetConfig(models=(("logistic", 1),), results=RESULTS, resume="train_cpu-x"), stream=io.StringIO())
    with pytest.raises(MlfleetError, match=f"^results={RESULTS} names a Spark table, which ensemble does not write"):
        run_ensemble(replace(EnsembleConfig(), results=RESULTS), stream=io.StringIO())
    with pytest.raises(MlfleetError, match=f"^results={RESULTS} names a Spark table, which benchmark does not write"):
        run_benchmark(replace(BenchmarkConfig(), results=RESULTS), stream=io.StringIO())
    assert (
        mlflow.MlflowClient().search_runs([e.experiment_id for e in mlflow.MlflowClient().search_experiments()]) == []
    )


def test_without_pyspark_a_spark_name_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as on a machine without it: the import fails
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(
        MlfleetError, match=r"^results=main.ml.results names a Spark table, but pyspark is not installed; run where"
    ):
        run_sweep(FleetConfig(models=(("logistic", 1),), results="main.ml.results"), stream=io.StringIO())
    with pytest.raises(MlfleetError, match=r"^data=main.ml.features names a Spark table, but pyspark is not installed"):
        run_sweep(
            FleetConfig(data=DataConfig(source="main.ml.features"), models=(("logistic", 1),)), stream=io.StringIO()
        )
    assert not (tmp_path / "lakehouse").exists()


@pytest.mark.e2e
def test_train_cpu_into_a_spark_table_without_delta_under_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the embedded defaults: sqlite:///mlflow.db in the project
    project = project_copy(tmp_path / "project")
    proc = mlflow_run(project, "train_cpu", {"models": "logistic:1", "n_trials": "1", "results": RESULTS})
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: results={RESULTS}: this Spark has no Delta Lake (data source 'delta' not found); "
        + errors[0].split("); ", 1)[1]
    ]
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]  # the run `mlflow run` made, closed; no sweep
    assert not (project / "spark-warehouse").exists() and not (project / "lakehouse").exists()


def test_a_databricks_volume_is_written_through_spark_when_spark_is_active(fresh, tmp_path, monkeypatch):
    from mlfleet import locations

    volumes = tmp_path / "Volumes"
    monkeypatch.setattr(locations, "MOUNTS", (f"{volumes}/", "/dbfs/"))  # the seam: a temp folder as /Volumes
    monkeypatch.setattr(spark, "FORMAT", "parquet")  # the Delta writer, minus Delta
    location = f"{volumes}/main/ml/lake/model_training_results"
    table = open_results(location)
    assert isinstance(table, spark.SparkResults) and table.at_path and not table.is_local
    assert table.quoted == f"parquet.`{location}`" and not table.exists()
    assert table.ensure() == [] and table.exists()
    table.append([row(0), row(1)], "mlfleet/s1/0")
    table.append([row(2, sweep_id="s2")], "mlfleet/s2/2")
    back = table.read(sweep_id="s1").sort_values("model_id")
    assert [results.row_from_record(r) for r in back.to_dict("records")] == [row(0), row(1)]
    assert len(open_results(location).read()) == 3 and table.ensure() == []
    other = volumes / "main" / "ml" / "notes"
    other.mkdir(parents=True)
    (other / "readme.txt").write_text("not a table")
    with pytest.raises(MlfleetError, match="holds other files but no parquet table"):
        open_results(str(other)).ensure()
    assert spark.spark_path("/dbfs/mnt/lake/t") == "dbfs:/mnt/lake/t" and spark.spark_path(location) == location
    assert str(spark.fuse_path("dbfs:/mnt/lake/t")) == "/dbfs/mnt/lake/t"


def is_table(text: str) -> bool:
    """Whether mlfleet takes ``text`` for a Spark catalog table (what ``open_results`` hands to Spark)."""
    from mlfleet import locations

    return locations.place(text).kind == locations.SPARK_TABLE
