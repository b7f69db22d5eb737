"""resume=<sweep id>: complete models skipped, missing rows rebuilt, the rest trained again.

The states an interrupted sweep leaves are made here directly in the stores (a row deleted,
a run left RUNNING); test_chaos.py makes them with real kills.
"""

import io
import json
from dataclasses import replace

import mlflow
import pytest
from deltalake import DeltaTable
from helpers import assert_sweep_complete, read_results

from mlfleet.commands.analyze.readback import model_runs, read_rows
from mlfleet.commands.analyze.report import join_stores
from mlfleet.commands.sweep import run_sweep
from mlfleet.config import DataConfig, FleetConfig
from mlfleet.errors import MlfleetError
from mlfleet.execution import tasks
from mlfleet.stores import runs
from mlfleet.stores.tables import open_results

MODELS = (("logistic", 2), ("naive_bayes", 2))


def config(tmp_path, **overrides) -> FleetConfig:
    values = {
        "data": DataConfig(n_samples=300),
        "models": MODELS,
        "n_trials": 2,
        "results": str(tmp_path / "results"),
        "experiment": "resume",
    }
    values.update(overrides)
    return FleetConfig(**values)


def test_resume_rebuilds_a_missing_row_and_retrains_a_stale_run(ray_local, tmp_path):
    first = run_sweep(config(tmp_path), stream=io.StringIO())
    assert first.exit_code == 0
    client = mlflow.MlflowClient()
    table = str(tmp_path / "results")
    before = {r.model_id: r for r in (o.row for o in first.outcomes)}
    # the process died after model 1's run finished, before its row; model 2's run never ended
    DeltaTable(table).delete("model_id = 1")
    client.update_run(before[2].mlflow_run_id, status="RUNNING")
    client.update_run(first.parent_run_id, status="FAILED")

    out = io.StringIO()
    resumed = run_sweep(config(tmp_path, resume=first.sweep_id), stream=out)

    assert resumed.exit_code == 0 and resumed.sweep_id == first.sweep_id
    assert (
        f"resuming sweep {first.sweep_id}: 3 of 4 models complete (1 row(s) rebuilt from finished runs), "
        "1 stale run(s) marked FAILED, 1 to train" in out.getvalue()
    )
    counts = assert_sweep_complete(client, table, first.sweep_id, [0, 1, 2, 3])
    assert counts["runs"] == 5  # model 2's stale run stays, FAILED
    rows = {int(r["model_id"]): r for r in read_results(table).to_dict("records")}
    rebuilt = rows[1]
    assert rebuilt["mlflow_run_id"] == before[1].mlflow_run_id and rebuilt["model_uri"] == before[1].model_uri
    assert rebuilt["score"] == pytest.approx(before[1].score) and json.loads(rebuilt["params_json"]) == before[1].params
    assert rebuilt["n_features"] == before[1].n_features and rebuilt["feature_strategy"] == before[1].feature_strategy
    stale = client.get_run(before[2].mlflow_run_id)
    assert stale.info.status == "FAILED" and "trained again on resume" in stale.data.tags[runs.STALE_TAG]
    assert rows[2]["mlflow_run_id"] != before[2].mlflow_run_id  # the row follows the new run
    assert rows[0]["mlflow_run_id"] == before[0].mlflow_run_id and rows[3]["mlflow_run_id"] == before[3].mlflow_run_id
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlfleet.resumes"] == "1"
    assert parent.data.metrics["n_succeeded"] == 4 and parent.data.metrics["n_trained"] == 1
    operations = [h["operation"] for h in DeltaTable(table).history()]
    assert operations.count("MERGE") == 2 and operations.count("DELETE") == 1  # rows replaced, never appended twice


def test_resuming_a_complete_sweep_trains_nothing(ray_local, tmp_path):
    first = run_sweep(config(tmp_path, models=(("naive_bayes", 2),)), stream=io.StringIO())
    written = DeltaTable(str(tmp_path / "results")).version()
    out = io.StringIO()
    again = run_sweep(config(tmp_path, models=(("naive_bayes", 2),), resume=first.sweep_id), stream=out)
    assert again.exit_code == 0 and "2 of 2 models complete" in out.getvalue() and "0 to train" in out.getvalue()
    assert_sweep_complete(mlflow.MlflowClient(), str(tmp_path / "results"), first.sweep_id, [0, 1])
    assert DeltaTable(str(tmp_path / "results")).version() == written  # the resume wrote nothing


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"n_trials": 3},
            r"was run with n_trials='2' \(now '3'\); resume with the sweep's own parameters, or start a new sweep",
        ),
        ({"models": (("logistic", 1),)}, r"models='naive_bayes:1' \(now 'logistic:1'\)"),
        ({"data": DataConfig(n_samples=300, seed=7)}, r"seed='42' \(now '7'\), the data \(digest"),
    ],
)
def test_resume_with_another_configuration_is_refused_and_changes_nothing(ray_local, tmp_path, change, message):
    one = (("naive_bayes", 1),)
    first = run_sweep(config(tmp_path, models=one), stream=io.StringIO())
    client = mlflow.MlflowClient()
    version = DeltaTable(str(tmp_path / "results")).version()
    runs = len(client.search_runs([first.experiment_id]))
    with pytest.raises(MlfleetError, match=message):
        run_sweep(config(tmp_path, **{"models": one, **change}, resume=first.sweep_id), stream=io.StringIO())
    assert DeltaTable(str(tmp_path / "results")).version() == version
    assert len(client.search_runs([first.experiment_id])) == runs
    assert client.get_run(first.parent_run_id).info.status == "FINISHED"


def test_a_sweep_recorded_before_a_parameter_existed_resumes_with_its_default(ray_local, tmp_path):
    one = (("naive_bayes", 1),)
    first = run_sweep(config(tmp_path, models=one), stream=io.StringIO())
    client = mlflow.MlflowClient()
    recorded = json.loads(client.get_run(first.parent_run_id).data.tags[runs.CONFIG_TAG])
    for key in ("drop", "time_budget", "ensemble"):  # parameters later than the sweep
        recorded.pop(key)
    client.set_tag(first.parent_run_id, runs.CONFIG_TAG, json.dumps(recorded))
    assert run_sweep(config(tmp_path, models=one, resume=first.sweep_id), stream=io.StringIO()).exit_code == 0
    with pytest.raises(MlfleetError, match=r"was run with time_budget='0.0' \(now '5.0'\)"):
        run_sweep(config(tmp_path, models=one, time_budget=5.0, resume=first.sweep_id), stream=io.StringIO())


def test_resume_of_an_unknown_sweep_is_one_line(ray_local, tmp_path):
    with pytest.raises(
        MlfleetError,
        match=(
            r"resume=train_cpu-nope: no sweep with that id in the tracking store "
            r".*pass the sweep id printed at the start"
        ),
    ):
        run_sweep(config(tmp_path, resume="train_cpu-nope"), stream=io.StringIO())
    assert not (tmp_path / "results").exists() or DeltaTable(str(tmp_path / "results")).version() == 0


def test_failed_models_are_trained_again_on_resume(ray_local, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLEET_FAIL_MODEL_IDS", "1,3")
    out = io.StringIO()
    first = run_sweep(config(tmp_path), stream=out)
    assert first.exit_code == 1
    assert f"to train the failed models again: the same command with resume={first.sweep_id}" in out.getvalue()
    monkeypatch.delenv("MLFLEET_FAIL_MODEL_IDS")

    out = io.StringIO()
    second = run_sweep(config(tmp_path, resume=first.sweep_id), stream=out)

    assert second.exit_code == 0
    assert "2 of 4 models complete" in out.getvalue() and "4 of 4 models succeeded" in out.getvalue()
    client = mlflow.MlflowClient()
    table = str(tmp_path / "results")
    counts = assert_sweep_complete(client, table, first.sweep_id, [0, 1, 2, 3])
    assert counts["runs"] == 6  # the two failed runs stay FAILED beside their models' finished runs
    superseded = [
        r
        for r in client.search_runs([first.experiment_id], "tags.`mlfleet.role` = 'model'")
        if r.info.status == "FAILED"
    ]
    assert len(superseded) == 2 and all(
        r.data.tags["mlfleet.stale"] == "the model was trained again on resume" for r in superseded
    )
    assert [h["operation"] for h in DeltaTable(table).history()].count("MERGE") == 2  # the FAILED rows replaced
    # analyze sees the stores agree: superseded runs are not "runs without a row"
    runs = model_runs(client, first.experiment_id, [first.sweep_id])
    check = join_stores(read_rows(open_results(table), first.experiment_id), runs.assign(run_score=runs["f1"]), "f1")
    assert check.mismatches.empty and len(check.joined) == 4


@pytest.fixture
def slow_board(monkeypatch):
    """The sweep's board answers the driver in 3 s, past the 2 s a read once waited (then took it as empty)."""
    opened = tasks.open_board
    monkeypatch.setattr(tasks, "open_board", lambda: opened(answer_delay_s=3.0))


def test_a_model_past_model_timeout_is_cancelled_and_the_fleet_goes_on(ray_local, tmp_path, slow_board):
    # an SVM on 20,000 rows takes minutes here; naive Bayes takes about a second
    slow = config(tmp_path, data=DataConfig(n_samples=20000), models=(("svm", 1), ("naive_bayes", 2)))
    out = io.StringIO()
    report = run_sweep(replace(slow, model_timeout=10.0), stream=out)

    assert report.exit_code == 1 and not report.stopped
    by_family = {o.row.model_id: o.row for o in report.outcomes}
    assert [r.status for r in by_family.values()] == ["FAILED", "FINISHED", "FINISHED"]
    assert by_family[0].error == "TimeoutError: timed out after 10 s"
    client = mlflow.MlflowClient()
    run = client.get_run(by_family[0].mlflow_run_id)  # the run the model had opened, closed FAILED
    assert run.info.status == "FAILED" and run.data.tags["error"] == "TimeoutError: timed out after 10 s"
    rows = read_results(str(tmp_path / "results"))
    assert rows.set_index("model_id")["status"].to_dict() == {0: "FAILED", 1: "FINISHED", 2: "FINISHED"}
    assert "model_timeout" not in client.get_run(report.parent_run_id).data.params  # a resume may change it
    assert "failed: model 0 (svm): TimeoutError: timed out after 10 s" in out.getvalue()


def test_a_sweep_past_its_timeout_stops_and_resume_finishes_it(ray_local, tmp_path, slow_board):
    # about 10 s of work on a quiet 2-CPU machine (more on a busy one): at 4 s some models ran out
    # of time, the rest had not started
    busy = config(tmp_path, data=DataConfig(n_samples=2000), models=(("logistic", 8),), n_trials=30)
    out = io.StringIO()
    stopped = run_sweep(replace(busy, timeout=4.0), stream=out)

    assert stopped.exit_code == 1 and stopped.stopped == "the sweep's timeout of 4 s passed"
    rows = {o.row.model_id: o.row for o in stopped.outcomes}
    cancelled = [r for r in rows.values() if not r.ok]
    assert stopped.not_started + len(rows) == 8 and len(cancelled) + stopped.not_started > 0
    assert {r.error for r in cancelled} <= {"TimeoutError: cancelled: the sweep's timeout of 4 s passed"}
    client = mlflow.MlflowClient()
    assert client.get_run(stopped.parent_run_id).info.status == "FAILED"
    assert f"to train what is not finished: the same command with resume={stopped.sweep_id}" in out.getvalue()
    assert not client.search_runs([stopped.experiment_id], "attributes.status = 'RUNNING'")
    # every model that started has its FAILED run and row, whatever the board's latency
    started_runs = client.search_runs([stopped.experiment_id], f"tags.sweep_id = '{stopped.sweep_id}'")
    assert {int(r.data.tags["model_id"]) for r in started_runs if "model_id" in r.data.tags} <= set(rows)

    resumed = run_sweep(replace(busy, resume=stopped.sweep_id), stream=io.StringIO())
    assert resumed.exit_code == 0
    trained_again = {o.row.model_id for o in resumed.outcomes if not o.resumed}
    assert trained_again == set(range(8)) - {i for i, r in rows.items() if r.ok}  # only what had not finished
    assert_sweep_complete(client, str(tmp_path / "results"), stopped.sweep_id, range(8))


def test_a_forgotten_try_is_not_brought_back_by_an_answer_asked_before_it(ray_local):
    """The driver forgets a model's try (a retry, a time budget's next round): an answer of the board asked
    before that still holds the old start, and taking it would cancel the new try early."""
    import time

    import ray

    view = tasks.BoardView(tasks.open_board(answer_delay_s=1.0))
    ray.get(view.board.started.remote(7))
    view.poll()
    time.sleep(1.5)
    view.poll()  # the first answer taken (7 started), the next question asked
    assert 7 in view.started()
    view.forget(7)  # before that question's answer, which still holds 7's earlier try
    time.sleep(1.5)
    view.poll()
    assert 7 not in view.started() and view.overdue(0.0) == set()
    time.sleep(1.5)
    view.poll()  # asked after the forget: the board forgot it too
    assert 7 not in view.started()


def test_a_file_the_close_cannot_write_ends_the_parent_run_failed_not_running(ray_local, tmp_path, monkeypatch):
    """The disk fills as the sweep writes results.csv for its parent run: the command fails, and the parent
    run says so (FAILED), where it was left RUNNING."""
    import mlfleet.commands.sweep as sweep

    def disk_full(rows):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweep, "rows_to_frame", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run_sweep(config(tmp_path, models=(("naive_bayes", 1),)), stream=io.StringIO())
    client = mlflow.MlflowClient()
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`mlfleet.role` = 'sweep'"
    )
    assert parent.info.status == "FAILED"
    assert all(r.info.status != "RUNNING" for r in client.search_runs([parent.info.experiment_id]))
