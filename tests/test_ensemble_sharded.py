"""The ensemble over a table bigger than the driver: each member reads its own shard on a worker.

Small tables and a proportionally small ``MLFLEET_MEMORY_BYTES``: what is checked is who read
which rows (every read is counted by the data layer's Reader), not how big the machine is.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers import assert_nothing_written, load_entrypoint, read_results

from mlfleet.commands.ensemble import ENSEMBLES, run_ensemble
from mlfleet.commands.ensemble.sharded import Sharded, rows_digest, training_split
from mlfleet.config import DataConfig, EnsembleConfig
from mlfleet.data import plan_parts, read_holdout, read_part
from mlfleet.data._dataset import model_rows
from mlfleet.errors import MlfleetError

ROWS, GROUP_ROWS = 4000, 250


def _table(rows: int = ROWS) -> pa.Table:
    """An id, six numbers, a segment and a yes/no label that depends on two numbers and the segment."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(rows, 6))
    seg = rng.choice(["north", "south", "east"], rows)
    score = X[:, 0] + 0.5 * X[:, 1] + (seg == "east") + rng.normal(0, 0.5, rows)
    columns = {"id": np.arange(rows), **{f"x{i}": X[:, i] for i in range(6)}, "seg": seg}
    return pa.table({**columns, "label": np.where(score > 0.3, "yes", "no")})


def _write(table: pa.Table, folder, *, delta: bool) -> str:
    """The table in two files of ``GROUP_ROWS``-row row groups: a Parquet folder or a Delta table."""
    from deltalake import WriterProperties, write_deltalake

    half = table.num_rows // 2
    for part in (table.slice(0, half), table.slice(half)):
        if delta:
            write_deltalake(
                str(folder), part, mode="append", writer_properties=WriterProperties(max_row_group_size=GROUP_ROWS)
            )
        else:
            folder.mkdir(exist_ok=True)
            pq.write_table(part, folder / f"part-{len(list(folder.iterdir()))}.parquet", row_group_size=GROUP_ROWS)
    return str(folder)


def _config(tmp_path, data: str, **given) -> EnsembleConfig:
    values = {
        "data": DataConfig(source=data, target="label"),
        "partitions": 4,
        "model": "logistic",
        "sharded": "on",
        "results": str(tmp_path / "lakehouse" / "ensemble_results"),
        "experiment": "sharded",
        **given,
    }
    return EnsembleConfig(**values)


def _members(report) -> list:
    return sorted((r for r in report.rows if r.kind == "member"), key=lambda r: r.member)


def _ids(frame: pd.DataFrame) -> set[int]:
    return set(frame["id"].tolist())


def test_parquet_and_delta_give_members_the_same_rows_each_read_on_its_worker(ray_local, tmp_path):
    table = _table()
    locations = {kind: _write(table, tmp_path / kind, delta=kind == "delta") for kind in ("parquet", "delta")}
    reports = {kind: run_ensemble(_config(tmp_path, where)) for kind, where in locations.items()}
    client = mlflow.MlflowClient()
    plan = plan_parts(locations["parquet"], target="label", partitions=4, seed=42)
    val, test = (_ids(read_holdout(plan, which, columns=["id"])) for which in ("val", "test"))
    digests = {}
    for kind, report in reports.items():
        assert report.exit_code == 0 and report.sharded, report.problems
        figures = report.figures
        # the driver: metadata only (the footers, one batch of the text columns), no row of the table decoded;
        # the validation rows are a worker's: the holdout task's one pass, where the columns were decided
        assert figures["driver_rows_read"] == 0 and figures["driver_bytes_read"] < 0.15 * figures["file_bytes"]
        assert figures["holdout_rows_read"] == ROWS and figures["holdout_rows_kept"] == len(val)
        assert figures["holdout_bytes_read"] > figures["driver_bytes_read"]
        assert figures["scoring_rows"] == len(val) + len(test)  # read by the scoring task, not the driver
        runs = [client.get_run(m.mlflow_run_id) for m in _members(report)]
        assert [r.data.tags["shard"] for r in runs] == [f"row groups {i}/4" for i in range(1, 5)]
        # each member read its own row groups only, and all of them together read the table once
        read = [r.data.metrics["read_rows"] for r in runs]
        assert read == [plan.shard_rows(i) for i in range(4)] and sum(read) == ROWS
        digests[kind] = [r.data.params["shard_digest"] for r in runs]
        assert all(r.data.metrics["rows_of_unknown_class"] == 0 for r in runs)
    assert digests["parquet"] == digests["delta"]  # the same rows, whichever format they were read from
    for index, digest in enumerate(digests["parquet"]):
        # what the member learnt from is its shard of the data layer, and no validation or test row is in it
        split, facts = training_split(_source(reports["parquet"], plan), index)
        rows = read_part(plan, index)
        X, y = model_rows(rows, target="label", task="classification", classes=("no", "yes"))
        assert facts.digest == rows_digest(X[split.X_train.columns], y) == digest
        assert not _ids(rows) & (val | test) and len(rows) == facts.rows == len(split.y_train)
    single = reports["parquet"].row("single")  # as many rows as one member's shard: 4000 x 0.6 / 4
    assert single.shard == "a sample of 600 training rows" and single.shard_rows == 600
    assert "the single model learnt from a stratified sample of 600" in reports["parquet"].verdict


def _source(report, plan) -> Sharded:
    """The task's view of the table, as the run decided it (the column plan comes from its parent run)."""
    from mlfleet.data import ColumnPlan

    document = json.loads(open(mlflow.MlflowClient().download_artifacts(report.parent_run_id, "columns.json")).read())
    columns = ColumnPlan({c["name"]: c["role"] for c in document["columns"]})
    return Sharded(plan, "label", "classification", ("no", "yes"), columns, "", sample_rows=600)


def test_a_table_over_the_memory_limit_is_sharded_by_itself_and_its_vote_registered(ray_local, tmp_path, monkeypatch):
    table = _table()
    folder = _write(table, tmp_path / "big", delta=False)
    in_memory = table.to_pandas().memory_usage(deep=True, index=False).sum()
    limit = in_memory // 4  # the table is 4 times what the driver may hold
    monkeypatch.setenv("MLFLEET_MEMORY_BYTES", str(limit))
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'registry.db'}")
    config = _config(tmp_path, folder, sharded="auto", partitions=8, partition_by="id", n_trials=1, register="big")
    with pytest.raises(MlfleetError, match=r"takes about .* and a sweep needs 3x that"):
        run_ensemble(_config(tmp_path, folder, sharded="off"))  # the driver's own read is refused
    report = run_ensemble(config)
    assert report.exit_code == 0 and report.sharded and report.registered == "big/1", report.problems
    parent = mlflow.MlflowClient().get_run(report.parent_run_id)
    assert parent.data.tags["sharded"] == "true" and parent.data.tags["partitioning"] == "column_hash"
    metrics = parent.data.metrics
    assert metrics["driver_rows_read"] == 0 and metrics["driver_bytes_read"] < 0.15 * metrics["file_bytes"]
    assert metrics["holdout_rows_kept"] < ROWS / 4 and metrics["driver_peak_rss_bytes"] > 0
    rows = read_results(report.results, spec=ENSEMBLES)
    assert sorted(rows["kind"]) == ["ensemble"] + ["member"] * 8 + ["single"] and (rows["status"] == "FINISHED").all()
    members = rows[rows["kind"] == "member"]
    assert members["shard"].tolist() == [f"id hash {i}/8" for i in range(1, 9)]
    assert rows.loc[rows["kind"] == "ensemble", "shard_rows"].item() == members["shard_rows"].sum()
    # the registered vote predicts the file's labels on rows read as a user reads them
    frame = pd.read_parquet(folder).head(200)
    served = mlflow.pyfunc.load_model("models:/big/1").predict(frame.drop(columns=["label"]))
    assert set(np.unique(served)) <= {"no", "yes"} and np.mean(np.asarray(served) == frame["label"]) > 0.7
    # a second vote of the same table faces the champion at the gate, on the test rows a worker holds
    again = run_ensemble(replace(config, n_trials=0, partition_by=""))
    assert again.exit_code == 0 and again.registered == "big/2", again.problems
    tags = mlflow.MlflowClient().get_model_version("big", "2").tags
    assert "gate.diff" in tags and "could not be compared" not in tags["mlfleet.decision"], tags


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "big.csv", "--target", "label"], r"data=big.csv takes about .* more than the .* the driver may "
         r"hold; convert it to Parquet without loading it whole: python -c .*write_dataset"),
        (["--data", "big.csv", "--sharded", "on"], r"sharded=on reads a Parquet file or folder or a Delta table on the "
         r"workers, but got data=big.csv; convert it first: python -c"),
        (["--sharded", "on"], r"sharded=on reads a Parquet file or folder or a Delta table on the workers, but got "
         r"data=synthetic$"),
        (["--data", "nothing.parquet", "--sharded", "on"], r"data file not found: nothing.parquet"),
    ],
)  # fmt: skip
def test_what_cannot_be_sharded_is_refused_in_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, args, message):
    _table(3000).to_pandas().to_csv(tmp_path / "big.csv", index=False)
    monkeypatch.setenv("MLFLEET_MEMORY_BYTES", "200000")  # the CSV takes about half a MB in pandas
    result = CliRunner().invoke(load_entrypoint("ensemble"), args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert_nothing_written(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]  # nor a converted copy


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("few", r"leaves \d validation rows and the ensemble decides the columns and classes on them, which needs "
         r"at least 10; use more data or a larger val_size"),
        ("one class", r"target 'label' has a single class \('yes'\); classification needs at least two"),
        ("no column", r"has no usable feature columns: id is"),
    ],
)  # fmt: skip
def test_bad_validation_rows_stop_in_one_line_exit_2_nothing_written_ray_as_found(ray_local, tmp_path, kind, message):
    """Decided in a Ray task (the driver reads no row), before any run or table exists; Ray left running."""
    table = _table(60 if kind == "few" else 400)
    if kind == "one class":
        table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(["yes"] * table.num_rows))
    if kind == "no column":
        table = table.select(["id", "label"])
    folder = _write(table, tmp_path / "table", delta=False)
    args = ["--data", folder, "--target", "label", "--sharded", "on", "--partitions", "2"]
    result = CliRunner().invoke(load_entrypoint("ensemble"), args + (["--val-size", "0.1"] if kind == "few" else []))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert_nothing_written(tmp_path)
    assert ray_local.is_initialized()  # a Ray the command found running is left running
