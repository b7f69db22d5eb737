"""A real `mlflow server` on 127.0.0.1 that is gone at start, or goes away in the middle of a sweep.

Gone at start, the driver runs as a user starts it by itself (`mlflow run` needs the server
to create its own run, so it could not even start): one line, exit 2, in seconds, nothing
trained. Gone mid-sweep (the sweep in this process): each model still running costs bounded
retries and is recorded in its row as not logged; resume, once the server is back,
completes the sweep.
"""

import io
import os
import subprocess
import sys
import time
from dataclasses import replace

import mlflow
import pytest
from helpers import REPO, assert_sweep_complete, read_results, sweep_counts
from procs import PROGRESS
from servers import MlflowServer

from mlfleet.commands.sweep import run_sweep
from mlfleet.config import DataConfig, FleetConfig

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
        train_cpu(*ARGS),
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": server.uri},
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: the MLflow tracking store {server.uri} cannot be used: ")
    assert errors[0].endswith("check MLFLOW_TRACKING_URI") and "Traceback" not in proc.stderr
    assert not (tmp_path / "lakehouse").exists()
    assert elapsed < 60, f"{elapsed:.0f} s: MLflow's own retries were not bounded"  # they take minutes
    print(f"server gone at start: exit 2 after {elapsed:.1f} s (Python, imports and the probe)")


def test_a_server_that_drops_mid_sweep_costs_bounded_retries_and_resume_completes(
    server, tmp_path, ray_local, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    config = FleetConfig(
        data=DataConfig(n_samples=300),
        models=(("logistic", 3), ("naive_bayes", 3)),
        n_trials=2,
        results=str(tmp_path / "results"),
        experiment="outage",
    )
    table = config.results
    dropped: dict[str, float] = {}

    class DropAfterTwoModels(io.StringIO):
        """The sweep's progress stream: the server stops when the driver has taken two models' results.

        At that point at most two more models are training (two CPUs) and the rest have not started,
        however fast the machine: the drop falls mid-sweep by construction, not by a race.
        """

        def write(self, text: str) -> int:
            done = PROGRESS.match(text)
            if done and int(done.group(1)) >= 2 and "at" not in dropped:
                server.stop()
                dropped["at"] = time.monotonic()
            return super().write(text)

    out = DropAfterTwoModels()
    report = run_sweep(config, stream=out)
    assert "at" in dropped, f"the sweep never reported two models: {out.getvalue()[-3000:]}"
    after_drop = time.monotonic() - dropped["at"]

    rows = read_results(table)
    assert report.exit_code == 1, out.getvalue()[-3000:]
    assert len(rows) == 6 and rows["model_id"].is_unique  # no model lost: each has its row
    unlogged = rows[rows["status"] == "FAILED"]
    assert len(unlogged) >= 1 and unlogged["error"].str.startswith("MLflow: ").all(), unlogged["error"].tolist()
    assert (
        "the sweep's parent run could not be closed" in out.getvalue() and f"resume={report.sweep_id}" in out.getvalue()
    )

    server.start()
    client = mlflow.MlflowClient(server.uri)
    before = sweep_counts(client, table, report.sweep_id)
    resumed = run_sweep(replace(config, resume=report.sweep_id), stream=io.StringIO())

    assert resumed.exit_code == 0
    after = assert_sweep_complete(client, table, report.sweep_id, range(6))
    assert client.get_run(report.parent_run_id).info.status == "FINISHED"
    print(
        f"server dropped mid-sweep: the sweep ended {after_drop:.1f} s after the drop, "
        f"{len(unlogged)} model(s) not logged; before resume {before}; after {after}"
    )
