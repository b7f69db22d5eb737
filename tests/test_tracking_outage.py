"""A real `mlflow server` on 127.0.0.1 that is gone at start, or goes away in the middle of a sweep.

The driver runs as a user starts it by itself (`mlflow run` needs the server to create its
own run, so it could not even start). Gone at start: one line, exit 2, in seconds, nothing
trained. Gone mid-sweep: each model still running costs bounded retries and is recorded
in its row as not logged; resume, once the server is back, completes the sweep.
"""

import os
import subprocess
import sys
import time

import mlflow
import pytest

from conftest import REPO, assert_sweep_complete, sweep_counts
from mlflow_server import MlflowServer
from mlfleet import results
from procs import kill_group, wait_for_rows

pytestmark = pytest.mark.e2e
ARGS = ["--models", "logistic:3,naive_bayes:3", "--n_trials", "2", "--n_samples", "300", "--experiment", "outage"]


@pytest.fixture
def server(tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    yield server
    server.stop()


def train_cpu(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "entrypoints" / "train_cpu.py"), *args]


def test_a_server_gone_at_start_fails_in_seconds_and_nothing_trains(server, tmp_path):
    server.stop()
    started = time.monotonic()
    proc = subprocess.run(
        train_cpu(*ARGS), cwd=tmp_path, env={**os.environ, "MLFLOW_TRACKING_URI": server.uri}, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: the MLflow tracking store {server.uri} cannot be used: ")
    assert errors[0].endswith("check MLFLOW_TRACKING_URI") and "Traceback" not in proc.stderr
    assert not (tmp_path / "lakehouse").exists()
    assert elapsed < 60, f"{elapsed:.0f} s: MLflow's own retries were not bounded"  # they take minutes
    print(f"server gone at start: exit 2 after {elapsed:.1f} s (Python, imports and the probe)")


def test_a_server_that_drops_mid_sweep_costs_bounded_retries_and_resume_completes(server, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri}
    table = str(tmp_path / "lakehouse" / "model_training_results")
    log = tmp_path / "first.log"
    proc = subprocess.Popen(train_cpu(*ARGS), cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_rows(table, 2, proc)
        server.stop()
        dropped = time.monotonic()
        code = proc.wait(300)
        after_drop = time.monotonic() - dropped
    finally:
        kill_group(proc)
    output = log.read_text()
    rows = results.read_results(table)
    sweep_id = rows["sweep_id"][0]
    assert code == 1, output[-3000:]
    assert len(rows) == 6 and rows["model_id"].is_unique  # no model lost: each has its row
    unlogged = rows[rows["status"] == "FAILED"]
    assert len(unlogged) >= 1 and unlogged["error"].str.startswith("MLflow: ").all(), unlogged["error"].tolist()
    assert "the sweep's parent run could not be closed" in output and f"resume={sweep_id}" in output

    server.start()
    client = mlflow.MlflowClient(server.uri)
    before = sweep_counts(client, table, sweep_id)
    second = subprocess.run(train_cpu(*ARGS, "--resume", sweep_id), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    assert second.returncode == 0, second.stderr[-3000:]
    after = assert_sweep_complete(client, table, sweep_id, range(6))
    parent = client.search_runs([client.get_experiment_by_name("outage").experiment_id], "tags.`mlfleet.role` = 'sweep'")[0]
    assert parent.info.status == "FINISHED"
    print(f"server dropped mid-sweep: first run ended {after_drop:.1f} s after the drop, {len(unlogged)} model(s) not logged; before resume {before}; after {after}")
