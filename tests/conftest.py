"""Shared fixtures: a throwaway MLflow store and working directory per test, one local Ray per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

#: the files that take longest (about a minute or more each), first: with two workers, the file
#: that starts last sets the suite's end, so they go first, as the fleet schedules its models
LONGEST_FIRST = (
    "test_scale_tracking", "test_e2e_analyze", "test_tracking_outage", "test_e2e_ensemble", "test_scale_multinode",
    "test_e2e_train_cpu", "test_chaos", "test_spark", "test_e2e_train_gpu", "test_benchmark", "test_scale_ray",
)


def pytest_collection_modifyitems(items):
    """Longest files first; the order within a file stays (test_e2e_analyze relies on it)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test works in its own folder with its own sqlite tracking store."""
    import mlflow

    mlflow.set_tracking_uri(None)  # forget a URI an earlier test set in this process
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for key in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)
    yield tmp_path
    active = mlflow.active_run()
    if active is not None:
        mlflow.end_run()
        pytest.fail(f"test left run {active.info.run_id} active")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the tests that need it (2 CPUs, no dashboard), shut down at the end."""
    import ray

    before = dict(os.environ)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # ray.init sets RAY_AUTH_MODE=token (and more) in this process; commands the tests start
    # later inherit the environment and would then demand a token from clusters without one
    for key in set(os.environ) - set(before):
        del os.environ[key]
    yield ray
    ray.shutdown()


@pytest.fixture
def mixed_csv(tmp_path) -> Path:
    """A CSV like a user's: numbers, a text column and missing values, a text target."""
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(50, 15, n),
            "visits": rng.poisson(3, n).astype(float),
            "segment": rng.choice(["retail", "online", "partner"], n),
        }
    )
    score = frame["income"] / 15 + (frame["segment"] == "online") * 1.5 - frame["age"] / 40 + rng.normal(0, 0.5, n)
    frame["churn"] = np.where(score > score.median(), "yes", "no")
    frame.loc[rng.choice(n, 20, replace=False), "income"] = np.nan
    frame.loc[rng.choice(n, 10, replace=False), "segment"] = np.nan
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def project_copy(dest: Path) -> Path:
    """The files `mlflow run .` needs (the library is installed), copied to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("MLproject", "conda.yaml"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "entrypoints", dest / "entrypoints", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def mlflow_run_command(project: Path, entry_point: str, params: dict[str, str], *, experiment: str = "", env: dict[str, str] | None = None):
    """The command line and environment of ``mlflow run . -e ENTRY --env-manager local -P k=v ...``."""
    cmd = [sys.executable, "-m", "mlflow", "run", ".", "-e", entry_point, "--env-manager", "local"]
    if experiment:
        cmd += ["--experiment-name", experiment]
    for key, value in params.items():
        cmd += ["-P", f"{key}={value}"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_RUN")}
    full_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full_env.get("PATH", "")])
    full_env.update(env or {})
    return cmd, full_env


def mlflow_run(project: Path, entry_point: str, params: dict[str, str], *, experiment: str = "", env: dict[str, str] | None = None, timeout: int = 600):
    """Run ``mlflow run . -e ENTRY --env-manager local -P k=v ...`` in ``project``, as a user types it."""
    cmd, full_env = mlflow_run_command(project, entry_point, params, experiment=experiment, env=env)
    return subprocess.run(cmd, cwd=project, env=full_env, capture_output=True, text=True, timeout=timeout)


def sweep_counts(client, results_uri: str, sweep_id: str) -> dict[str, object]:
    """What a sweep left in both stores: runs by status, rows, duplicates, rows without their run."""
    from mlfleet import results

    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.sweep_id = '{sweep_id}' and tags.`mlfleet.role` = 'model'", max_results=5000)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    rows = results.read_results(results_uri, sweep_id)
    finished_ids = [int(r.data.tags["model_id"]) for r in finished]
    return {
        "runs": len(runs),
        "finished_runs": len(finished),
        "running_runs": sum(r.info.status == "RUNNING" for r in runs),
        "models_with_two_finished_runs": len(finished_ids) - len(set(finished_ids)),
        "rows": len(rows),
        "duplicate_rows": int(rows["model_id"].duplicated().sum()),
        "finished_rows": int((rows["status"] == "FINISHED").sum()),
        "rows_not_on_their_finished_run": int((~rows["mlflow_run_id"].isin({r.info.run_id for r in finished})).sum()),
        "model_ids": sorted(set(finished_ids)),
    }


def assert_sweep_complete(client, results_uri: str, sweep_id: str, model_ids) -> dict[str, object]:
    """Every model of the sweep: exactly one FINISHED run and one FINISHED row on it; nothing RUNNING."""
    counts = sweep_counts(client, results_uri, sweep_id)
    n = len(list(model_ids))
    assert counts["model_ids"] == sorted(model_ids), counts
    assert counts["finished_runs"] == n and counts["models_with_two_finished_runs"] == 0, counts
    assert counts["running_runs"] == 0, counts
    assert counts["rows"] == n and counts["duplicate_rows"] == 0 and counts["finished_rows"] == n, counts
    assert counts["rows_not_on_their_finished_run"] == 0, counts
    print(f"sweep {sweep_id}: {counts}")
    return counts
