"""Shared fixtures: a throwaway MLflow store and working directory per test, one local Ray per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO  # noqa: F401  (the tests' shared code lives in helpers.py)

#: the files that take longest (about a minute or more each), first: with two workers, the file
#: that starts last sets the suite's end, so they go first, as the fleet schedules its models
LONGEST_FIRST = (
    "test_scale_tracking",
    "test_e2e_analyze",
    "test_tracking_outage",
    "test_e2e_ensemble",
    "test_champion",
    "test_scale_multinode",
    "test_e2e_train_cpu",
    "test_chaos",
    "test_spark",
    "test_e2e_train_gpu",
    "test_benchmark",
    "test_scale_ray",
)


#: files whose every test is of one kind; a test elsewhere is ``unit`` unless it is marked itself
FILE_MARKS = {
    "test_e2e_": "e2e",
    "test_resume": "e2e",  # whole sweeps in-process, resumed
    "test_champion": "e2e",
    "test_scale_": "scale",
    "test_spark": "scale",
    "test_chaos": "chaos",
    "test_tracking_outage": "chaos",
}
KINDS = ("unit", "e2e", "scale", "chaos")


def pytest_collection_modifyitems(items):
    """Mark each test unit, e2e, scale or chaos; longest files first (the order within a file stays)."""
    for item in items:
        kind = next((mark for prefix, mark in FILE_MARKS.items() if item.path.stem.startswith(prefix)), "")
        if kind:
            item.add_marker(kind)
        elif not any(item.get_closest_marker(k) for k in KINDS):
            item.add_marker("unit")
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
