"""The Delta side against real tables in tmp_path."""

import multiprocessing
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone

import pandas as pd
import pytest
from deltalake import DeltaTable
from helpers import append_row, read_results

from mlfleet.errors import MlfleetError
from mlfleet.stores import rows
from mlfleet.stores.rows import RESULTS, ResultRow
from mlfleet.stores.tables import open_results


def ensure_table(uri: str) -> list[str]:
    return open_results(uri).ensure()


def make_row(model_id=0, sweep_id="s1", **changes) -> ResultRow:
    now = datetime.now(timezone.utc)
    row = ResultRow(
        sweep_id=sweep_id,
        model_id=model_id,
        model_type="SVC",
        family="svm",
        device="cpu",
        feature_strategy="all",
        n_features=4,
        task="classification",
        params_json='{"C": 1.0}',
        primary_metric="f1",
        score=0.9,
        accuracy=0.91,
        f1=0.9,
        roc_auc=0.95,
        log_loss=0.3,
        rmse=None,
        mae=None,
        r2=None,
        n_trials=3,
        tuning_s=1.0,
        train_s=0.1,
        cpus=1.0,
        gpus=0.0,
        status="FINISHED",
        error="",
        mlflow_run_id="r",
        model_uri="models:/m",
        experiment_id="1",
        dataset="synthetic",
        dataset_digest="d",
        started_at=now,
        finished_at=now,
        node="n",
        entry_point="train_cpu",
    )
    return replace(row, **changes)


def test_rows_round_trip_through_the_table(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    assert append_row(uri, make_row(1))
    assert append_row(uri, make_row(2, status="FAILED", error="ValueError: boom", score=None))
    frame = read_results(uri).sort_values("model_id")
    assert list(frame.columns) == rows.schema().names
    assert frame["model_id"].tolist() == [1, 2]
    assert frame["status"].tolist() == ["FINISHED", "FAILED"]
    assert frame["score"].isna().tolist() == [False, True]


def test_writing_the_same_key_twice_leaves_one_row(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    assert append_row(uri, make_row(5)) is True
    assert append_row(uri, make_row(5)) is False
    assert append_row(uri, make_row(5, sweep_id="s2")) is True
    assert len(read_results(uri)) == 2
    assert len(read_results(uri, sweep_id="s1")) == 1


def test_ensure_table_is_idempotent_and_checks_columns(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    ensure_table(uri)
    assert DeltaTable(uri).version() == 0
    other = tmp_path / "other"
    import pandas as pd
    from deltalake import write_deltalake

    write_deltalake(str(other), pd.DataFrame({"x": [1]}))
    with pytest.raises(MlfleetError, match=r"Delta table without the columns sweep_id, model_id"):
        ensure_table(str(other))


def _append_many(uri: str, worker: int, count: int) -> None:
    for i in range(count):
        append_row(uri, make_row(worker * 1000 + i))


def test_concurrent_writers_lose_no_row(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(uri, w, 10)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    frame = read_results(uri)
    assert len(frame) == 40 and frame["model_id"].is_unique
    assert DeltaTable(uri).version() == 40


def test_compaction_merges_the_small_files_keeps_every_row_and_races_no_writer(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    _append_many(uri, 0, 40)  # 40 models: a file and a commit each
    table = open_results(uri)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(uri, w, 30)) for w in (1, 2)]  # another sweep, writing
    for p in procs:
        p.start()
    while DeltaTable(uri).version() < 45:  # compact while they append
        time.sleep(0.05)
    done = table.compact()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert done.startswith("compacted ") and done.endswith(" into 1, checkpoint written"), done
    frame = read_results(uri)
    assert len(frame) == 100 and frame["model_id"].is_unique  # no row lost or doubled
    delta = DeltaTable(uri)
    assert len(delta.file_uris()) < 60 and any((tmp_path / "results" / "_delta_log").glob("*.checkpoint.parquet"))
    assert delta.transaction_version(RESULTS.app_id(make_row(7))) == 1  # resume still sees each row's transaction
    assert DeltaTable(uri).history()[-1]["operation"] == "CREATE TABLE"  # the history stays


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", r"is a file, not a table folder"),
        (
            lambda p: (p / "file.txt").write_text("x") and p / "file.txt" / "table",
            r"cannot be written .*choose a location you can write to",
        ),
        (
            lambda p: (p / "busy").mkdir() or (p / "busy" / "notes.md").write_text("x") and p / "busy",
            r"holds other files but no Delta table",
        ),
    ],
)
def test_unwritable_results_locations(tmp_path, make, message):
    with pytest.raises(MlfleetError, match=message):
        open_results(str(make(tmp_path))).check_writable()


def test_new_and_existing_locations_are_writable(tmp_path):
    open_results(str(tmp_path / "a" / "b" / "table")).check_writable()
    assert not (tmp_path / "a").exists()  # the check writes nothing that stays
    ensure_table(str(tmp_path / "t"))
    open_results(str(tmp_path / "t")).check_writable()


def old_table(uri: str, without: str = "entry_point") -> None:
    """A results table as an earlier mlfleet wrote it: one column fewer, one row."""
    from dataclasses import asdict

    import pyarrow as pa
    from deltalake import write_deltalake

    old = pa.schema([f for f in rows.schema() if f.name != without])
    DeltaTable.create(uri, old, name=RESULTS.name)
    row = asdict(make_row(0, sweep_id="old"))
    row.pop(without)
    write_deltalake(uri, pa.Table.from_pylist([row], schema=old), mode="append")


def test_a_table_of_an_earlier_schema_is_evolved_not_rewritten(tmp_path):
    uri = str(tmp_path / "results")
    old_table(uri)
    files_before = set(DeltaTable(uri).file_uris())

    assert ensure_table(uri) == ["entry_point"]
    assert ensure_table(uri) == []  # once
    assert append_row(uri, make_row(1, sweep_id="new"))

    table = DeltaTable(uri)
    assert [h["operation"] for h in reversed(table.history())] == ["CREATE TABLE", "WRITE", "ADD COLUMN", "WRITE"]
    assert files_before <= set(table.file_uris())  # the old rows' file is still the table's
    frame = read_results(uri).set_index("sweep_id")
    assert (
        len(frame) == 2 and pd.isna(frame.loc["old", "entry_point"]) and frame.loc["new", "entry_point"] == "train_cpu"
    )
    assert frame.loc["old", "score"] == pytest.approx(0.9)


def test_rows_append_to_a_table_with_a_column_this_version_does_not_know(tmp_path):
    import pyarrow as pa
    from deltalake import Field

    uri = str(tmp_path / "results")
    ensure_table(uri)
    DeltaTable(uri).alter.add_columns([Field.from_arrow(pa.field("added_later", pa.string()))])
    assert append_row(uri, make_row(1))
    frame = read_results(uri)
    assert len(frame) == 1 and frame["added_later"].isna().all()


def test_a_column_of_another_type_is_refused(tmp_path):
    import pyarrow as pa

    uri = str(tmp_path / "results")
    fields = [pa.field("score", pa.string()) if f.name == "score" else f for f in rows.schema()]
    DeltaTable.create(uri, pa.schema(fields), name=RESULTS.name)
    with pytest.raises(
        MlfleetError, match=r"columns score \(string where mlfleet writes double\) differ; use another location"
    ):
        ensure_table(uri)


def _evolve(uri: str) -> list[str]:
    return ensure_table(uri)


def test_sweeps_evolving_the_table_at_once_add_the_column_once(tmp_path):
    uri = str(tmp_path / "results")
    old_table(uri)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        added = pool.map(_evolve, [uri] * 3)
    assert sum(a == ["entry_point"] for a in added) >= 1 and all(a in ([], ["entry_point"]) for a in added)
    table = DeltaTable(uri)
    assert [h["operation"] for h in table.history()].count("ADD COLUMN") == 1
    assert "entry_point" in table.schema().to_arrow().names


def test_a_later_generation_replaces_the_row_and_an_earlier_one_is_skipped(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    assert append_row(uri, make_row(3, status="FAILED", error="RuntimeError: boom", score=None))
    assert append_row(uri, make_row(3, score=0.7), attempt=2)  # resumed: trained again
    assert not append_row(uri, make_row(3, score=0.1), attempt=2)  # a retried write of it
    assert not append_row(uri, make_row(3, score=0.2))  # a stale first generation
    frame = read_results(uri)
    assert len(frame) == 1 and frame["status"][0] == "FINISHED" and frame["score"][0] == pytest.approx(0.7)
    assert [h["operation"] for h in reversed(DeltaTable(uri).history())] == ["CREATE TABLE", "WRITE", "MERGE"]


def test_rows_read_back_as_result_rows(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    row = make_row(4, rmse=None, n_features=None)
    append_row(uri, row)
    assert rows.row_from_record(read_results(uri).to_dict("records")[0]) == row


def _append_same_key(uri: str, barrier) -> bool:
    barrier.wait()
    return append_row(uri, make_row(7, sweep_id="race"))


def test_writers_racing_with_one_key_leave_one_row(tmp_path):
    uri = str(tmp_path / "results")
    ensure_table(uri)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            wrote = pool.starmap(_append_same_key, [(uri, barrier)] * 4)
    assert sorted(wrote) == [False, False, False, True]
    assert len(read_results(uri)) == 1 and DeltaTable(uri).version() == 1


def test_a_writer_with_a_stale_view_does_not_duplicate_a_key(tmp_path):
    """delta-rs refuses a second commit of one application transaction from an older snapshot."""
    import pyarrow as pa
    from deltalake import CommitProperties, Transaction, write_deltalake
    from deltalake.exceptions import CommitFailedError

    uri = str(tmp_path / "results")
    ensure_table(uri)
    stale = DeltaTable(uri)
    assert append_row(uri, make_row(8))
    with pytest.raises(CommitFailedError):
        write_deltalake(
            stale, pa.Table.from_pylist([asdict(make_row(8))], schema=rows.schema()), mode="append",
            commit_properties=CommitProperties(
                app_transactions=[Transaction(app_id=rows.transaction_id("s1", 8), version=1)]
            ),
        )  # fmt: skip
    assert len(read_results(uri)) == 1


def test_a_batch_of_rows_is_one_commit_each_row_its_own_transaction(tmp_path):
    """The driver's batch: new rows in one append; a row of a later attempt replaces its earlier
    one; rows already committed are skipped, so writing the batch again changes nothing."""
    uri = str(tmp_path / "results")
    ensure_table(uri)
    table = open_results(uri)
    assert append_row(uri, make_row(0, status="FAILED", error="boom", score=None))
    assert append_row(uri, make_row(1, score=0.5))
    batch = [make_row(0, score=0.8), make_row(1, score=0.1), *(make_row(i, score=0.6) for i in range(2, 40))]
    versions = [2, 1] + [1] * 38
    assert table.commit_batch(batch, versions) == 39  # all but model 1, whose first attempt is there
    operations = [h["operation"] for h in reversed(DeltaTable(uri).history())]
    assert operations == ["CREATE TABLE", "WRITE", "WRITE", "WRITE", "MERGE"]
    assert table.commit_batch(batch, versions) == 0 and DeltaTable(uri).version() == 4
    frame = read_results(uri).set_index("model_id").sort_index()
    assert len(frame) == 40 and frame.loc[0, "score"] == pytest.approx(0.8) and frame.loc[0, "status"] == "FINISHED"
    assert frame.loc[1, "score"] == pytest.approx(0.5) and frame.loc[2:, "score"].eq(0.6).all()
    committed = DeltaTable(uri)
    assert [committed.transaction_version(rows.transaction_id("s1", i)) for i in (0, 1, 39)] == [2, 1, 1]


def test_a_row_the_table_refuses_fails_its_model_and_the_rest_of_its_batch_is_written(tmp_path):
    """The driver's batch against a store that refuses one row: that model becomes a FAILED run
    and row saying why; the other rows of the batch are written."""
    import mlflow
    from helpers import open_parent

    from mlfleet.commands.sweep import _Rows, record_death
    from mlfleet.stores.delta import DeltaResults
    from mlfleet.training.jobs import ModelJob
    from mlfleet.training.outcome import Outcome, SweepSpec

    class Refusing(DeltaResults):
        """A store that refuses model 1's finished row (a write that fails there, and only there)."""

        def append(self, rows, app_id="", *, version=1):
            if any(r.model_id == 1 and r.status == "FINISHED" for r in rows):
                raise OSError("the store refused the write")
            return super().append(rows, app_id, version=version)

        def commit_batch(self, rows, versions):
            if any(r.model_id == 1 and r.status == "FINISHED" for r in rows):
                raise OSError("the store refused the write")
            return super().commit_batch(rows, versions)

    uri = str(tmp_path / "results")
    ensure_table(uri)
    recorder = open_parent(experiment="rows", sweep_id="s1", params={}, table=Refusing(uri, RESULTS))
    spec = SweepSpec(recorder.model, "f1", 1, "synthetic", "d")
    jobs = [ModelJob(i, "svm", "all", 1, 0.0, 42, 1.0) for i in range(3)]
    run_ids = [recorder.model.start(job.run_name, {}) for job in jobs]
    outcomes = [Outcome(make_row(i, mlflow_run_id=run_ids[i]), 0.1, 0.1, 0.0, 1.0) for i in range(3)]
    died = lambda job, exc, run_id: record_death(recorder, spec, "classification", job, exc, run_id)  # noqa: E731
    batch = _Rows(outcomes, recorder, died)
    for i, job in enumerate(jobs):
        batch.add(job, i)
    batch.write(due_only=True)  # three rows, none waited 2 s: not due yet
    assert not DeltaTable(uri).version()
    batch.write()

    frame = read_results(uri).set_index("model_id").sort_index()
    assert list(frame["status"]) == ["FINISHED", "FAILED", "FINISHED"]
    assert "the store refused the write" in frame.loc[1, "error"] and outcomes[1].row.status == "FAILED"
    assert mlflow.MlflowClient().get_run(run_ids[1]).info.status == "FAILED"
    assert [o.row.status for o in outcomes] == ["FINISHED", "FAILED", "FINISHED"]
