"""Databricks without a workspace: tracking and registry URIs pass through, bad forms are one line
before anything starts, and Volumes/DBFS paths count as shared storage (simulated by a temp folder)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from servers import child_env

from mlfleet import locations
from mlfleet.errors import MlfleetError
from mlfleet.execution import guard
from mlfleet.settings import Settings
from mlfleet.stores import registry, store
from mlfleet.stores.tables import open_results


@pytest.mark.parametrize(
    "uri",
    ["databricks", "databricks://my-profile", "databricks-uc", "http://127.0.0.1:5000", "postgresql://u@h/db"],
)
def test_service_uris_reach_mlflow_untouched(uri):
    assert locations.store(uri).uri == uri


def test_local_stores_are_made_absolute(tmp_path):
    assert locations.store("sqlite:///mlflow.db").uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert locations.store("mlruns").uri == (tmp_path / "mlruns").as_uri()
    assert locations.store("sqlite:////abs/m.db").uri == "sqlite:////abs/m.db"


def _without_workspace(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path.parent / f"{tmp_path.name}-home"  # no ~/.databrickscfg here; caches MLflow keeps there stay apart
    home.mkdir(exist_ok=True)
    env = child_env(HOME=str(home), **extra)
    for key in [k for k in env if k.startswith("DATABRICKS_")]:
        del env[key]
    return env


def test_databricks_tracking_without_a_workspace_is_one_line_and_creates_nothing(tmp_path):
    env = _without_workspace(tmp_path, MLFLOW_TRACKING_URI="databricks")
    command = [sys.executable, "-m", "mlfleet", "train-cpu", "--models", "logistic:1", "--n_trials", "1"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "DATABRICKS_HOST" in errors[0] and "DATABRICKS_TOKEN" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no ./databricks folder, no table, no store


def test_a_bare_experiment_name_on_databricks_is_refused():
    here = Settings()
    with pytest.raises(MlfleetError, match=r"workspace path; pass experiment=/Users/<you>/fleet"):
        store.experiment_name("databricks", "fleet", here)
    assert store.experiment_name("databricks", "/Users/me@example.com/fleet", here) == "/Users/me@example.com/fleet"
    assert store.experiment_name("sqlite:////x.db", "fleet", here) == "fleet"
    assert store.experiment_name("databricks", "fleet", Settings(run_id="r1")) == "fleet"  # mlflow run's own


def test_unity_catalog_names_are_three_level():
    unity = locations.store("databricks-uc")
    registry.check_model_name("main.ml.churn", "register", unity)
    registry.check_model_name("churn", "register", locations.store("sqlite:////x.db"))
    for name in ("churn", "ml.churn", "a..b"):
        with pytest.raises(MlfleetError, match="catalog.schema.model"):
            registry.check_model_name(name, "register", unity)
    with pytest.raises(MlfleetError, match="pass registered_model=CATALOG.SCHEMA.MODEL"):
        registry.check_model_name("", "registered_model", unity, defaulted=True)


def test_analyze_with_a_two_level_name_under_unity_catalog_stops_before_anything(tmp_path):
    env = child_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", MLFLOW_REGISTRY_URI="databricks-uc")
    command = [sys.executable, "-m", "mlfleet", "analyze", "--registered_model", "ml.churn"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: registered_model='ml.churn'"), proc.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "reports").exists()


class _TwoNodes:
    address = "auto"
    nodes = 2


def test_volumes_count_as_shared_storage_and_delta_rs_refuses_them(tmp_path, monkeypatch):
    volumes = tmp_path / "Volumes"
    monkeypatch.setattr(locations, "MOUNTS", (f"{volumes}/", "/dbfs/"))  # the seam: a temp folder as /Volumes
    table = open_results(f"{volumes}/main/ml/lake/results")
    assert not table.is_local
    guard.check_shared_stores(
        _TwoNodes(), Settings(), tracking_uri="http://127.0.0.1:5000", tables=(table,)
    )  # accepted
    with pytest.raises(MlfleetError, match=r"volume or DBFS path.*abfss://.*catalog\.schema\.table"):
        table.check_writable()
    assert not volumes.exists()
    assert open_results("dbfs:/mnt/lake/results").is_local is False
    local = open_results(str(tmp_path / "lake"))
    with pytest.raises(MlfleetError, match="nodes"):
        guard.check_shared_stores(_TwoNodes(), Settings(), tracking_uri="http://127.0.0.1:5000", tables=(local,))
