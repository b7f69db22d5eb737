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

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
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
