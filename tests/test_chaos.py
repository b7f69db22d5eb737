"""Real kills: a Ray worker SIGKILLed while its model trains; the driver of `mlflow run` SIGKILLed mid-sweep.

Either way the sweep ends (after a resume, for the driver) with exactly one FINISHED run
and one row per model. The counts each test saw are printed (``pytest -s`` shows them).
"""

import io
import os
import signal
import subprocess
import threading
import time

import mlflow
import pytest
from deltalake import DeltaTable
from helpers import assert_sweep_complete, mlflow_run, mlflow_run_command, project_copy, read_results, sweep_counts
from procs import kill_group, processes, wait_for_finished_models, worker_of

from mlfleet.commands.sweep import run_sweep
from mlfleet.config import DataConfig, FleetConfig


def sweep_killing(config: FleetConfig, find, *, every_s: float):
    """Run the sweep of ``config`` while a thread SIGKILLs the first worker ``find(client)`` names.

    ``find`` returns what it found (a dict with the worker's ``pid``) or None; it is asked
    every ``every_s`` until it finds one. Returns the report and what was killed ({} if none).
    """
    killed: dict[str, object] = {}
    stop = threading.Event()

    def kill_one():
        client = mlflow.MlflowClient()
        while not stop.is_set():
            found = find(client)
            if found:
                os.kill(found["pid"], signal.SIGKILL)
                killed.update(found)
                return
            time.sleep(every_s)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    try:
        return run_sweep(config, stream=io.StringIO()), killed
    finally:
        stop.set()
        killer.join(5)


def test_a_worker_killed_mid_model_is_retried_into_the_same_run(ray_local, tmp_path):
    config = FleetConfig(
        data=DataConfig(n_samples=800),
        models=(("random_forest", 1), ("logistic", 2)),
        n_trials=6,
        results=str(tmp_path / "results"),
        experiment="chaos",
    )

    def a_training_worker(client):
        experiment = client.get_experiment_by_name("chaos")
        training = (
            client.search_runs(
                [experiment.experiment_id], "tags.`mlfleet.role` = 'model' and attributes.status = 'RUNNING'"
            )
            if experiment
            else []
        )
        for run in training:
            pid = worker_of(run.info.run_name)
            if pid:
                return {"pid": pid, "run_id": run.info.run_id, "model_id": int(run.data.tags["model_id"])}
        return None

    report, killed = sweep_killing(config, a_training_worker, every_s=0.1)

    assert killed, "no worker was caught training"
    assert report.exit_code == 0, [o.row.error for o in report.outcomes]
    client = mlflow.MlflowClient()
    counts = assert_sweep_complete(client, str(tmp_path / "results"), report.sweep_id, [0, 1, 2])
    run = client.get_run(killed["run_id"])
    if run.info.status == "FINISHED":  # killed while training: the retry reused the model's run
        assert run.data.tags["mlfleet.attempt"] == "2" and counts["runs"] == 3
    else:  # killed while logging: that run is marked stale and the retry logged a new one
        assert run.data.tags["mlfleet.stale"].startswith("its worker died") and counts["runs"] == 4
    print(f"worker kill: model {killed['model_id']} (pid {killed['pid']}); {counts}")


def test_a_worker_killed_while_logging_its_fitted_model_leaves_one_run_row_and_model(ray_local, tmp_path):
    """The window between fitting and logging: the worker dies while its model is being saved
    (the logged model exists, still PENDING). The retry trains the model again into a new run;
    the half-logged run is marked stale and its model leaves the Models view."""
    config = FleetConfig(
        data=DataConfig(n_samples=3000),
        models=(("random_forest", 2),),
        n_trials=2,
        results=str(tmp_path / "results"),
        experiment="chaos-logging",
    )

    def a_logging_worker(client):
        experiment = client.get_experiment_by_name("chaos-logging")
        for model in client.search_logged_models([experiment.experiment_id]) if experiment else []:
            if not str(model.status).endswith("PENDING"):
                continue
            run = client.get_run(model.source_run_id)
            pid = worker_of(run.info.run_name)
            if pid and run.info.status == "RUNNING":
                return {"pid": pid, "run_id": run.info.run_id, "model": model.model_id}
        return None

    report, killed = sweep_killing(config, a_logging_worker, every_s=0.02)

    assert killed, "no worker was caught logging its model"
    assert report.exit_code == 0, [o.row.error for o in report.outcomes]
    client = mlflow.MlflowClient()
    counts = assert_sweep_complete(client, str(tmp_path / "results"), report.sweep_id, [0, 1])
    stale = client.get_run(killed["run_id"])
    assert stale.info.status == "FAILED" and stale.data.tags["mlfleet.stale"].startswith("its worker died")
    models = client.search_logged_models(
        [stale.info.experiment_id], filter_string=f"tags.sweep_id = '{report.sweep_id}'"
    )
    assert killed["model"] not in {m.model_id for m in models}
    assert len(models) == 2 and all(str(m.status).endswith("READY") for m in models)
    print(f"worker killed while logging: run {killed['run_id']} (pid {killed['pid']}); {counts}")


@pytest.mark.e2e
def test_driver_killed_mid_sweep_then_resume_completes_the_sweep(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    project = project_copy(tmp_path)
    params = {"models": "logistic:4,naive_bayes:4", "n_trials": "3", "n_samples": "400"}
    table = str(project / "lakehouse" / "model_training_results")
    cmd, env = mlflow_run_command(project, "train_cpu", params)
    log = tmp_path / "first.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_finished_models(log, 1, proc)  # the driver writes rows in batches: some may not be written yet
        driver = next(
            pid for pid, (ppid, args) in processes().items() if ppid == proc.pid and "-m mlfleet train-cpu" in args
        )
        os.kill(driver, signal.SIGKILL)
        assert proc.wait(60) != 0
        # only now: a client creates the sqlite store's tables, and two creators at once race in MLflow
        client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
        time.sleep(2)  # a worker that outlived its driver would log now
        finished = len(client.search_runs(["0"], "tags.`mlfleet.role` = 'model' and attributes.status = 'FINISHED'"))
        left = len(read_results(table)) if DeltaTable.is_deltatable(table) else 0
        assert left <= finished < 8, f"the kill came too late to be mid-sweep: {finished} finished runs, {left} rows"
    finally:
        kill_group(proc)
    parent = client.search_runs(["0"], "tags.`mlfleet.role` = 'sweep'")[0]
    sweep_id = parent.data.tags["sweep_id"]
    before = sweep_counts(client, table, sweep_id)

    second = mlflow_run(project, "train_cpu", {**params, "resume": sweep_id})

    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming sweep {sweep_id}" in second.stderr
    after = assert_sweep_complete(client, table, sweep_id, range(8))
    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlfleet.resumes"] == "1"
    # the run `mlflow run` made for the resume sits under the sweep's parent
    resume_runs = client.search_runs(["0"], "tags.`mlfleet.role` = 'resume'")
    assert len(resume_runs) == 1 and resume_runs[0].data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert resume_runs[0].info.status == "FINISHED"
    print(f"driver kill: before resume {before}; after {after}")
