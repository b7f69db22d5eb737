"""What the tests share besides fixtures: running an entry point as a user does, and reading back what it left."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow

REPO = Path(__file__).resolve().parents[1]

#: the rounds (epochs) that a fitted model of each family that stops early grew
GROWN = {
    "xgboost": lambda m: m.get_booster().num_boosted_rounds(),
    "lightgbm": lambda m: m.booster_.current_iteration(),
    "hist_gradient_boosting": lambda m: m.n_iter_,
    "gradient_boosting": lambda m: m.n_estimators_,
    "mlp": lambda m: m.best_epoch_,
}


def read_results(uri: str, sweep_id: str | None = None, spec=None):
    """The rows of the results table at ``uri`` (a folder or URI, or a Spark table name), optionally of one sweep."""
    from mlfleet.stores.rows import RESULTS
    from mlfleet.stores.tables import open_results

    table = open_results(uri, spec or RESULTS)
    return table.read(**({"sweep_id": sweep_id} if sweep_id is not None else {})).reset_index(drop=True)


def append_row(uri: str, row, *, attempt: int = 1) -> bool:
    """Write one results row as a sweep's worker does (creating the table first)."""
    from mlfleet.stores.rows import RESULTS
    from mlfleet.stores.tables import open_results

    table = open_results(uri, RESULTS)
    table.ensure()
    return table.append([row], version=attempt)


def open_parent(
    *, experiment: str = "exp", sweep_id: str = "s-1", params: dict | None = None, table=None, settings=None
):
    """A parent run in the test's store, as a command opens it, and its recorder (``SweepRecorder``)."""
    from mlfleet.settings import Settings
    from mlfleet.stores import store
    from mlfleet.stores.recorder import SweepRecorder

    uri, settings = store.tracking_uri(), settings or Settings()
    store.prepare(uri, settings)
    return SweepRecorder.open(
        table,
        uri=uri,
        settings=settings,
        experiment=experiment,
        sweep_id=sweep_id,
        entry_point="train_cpu",
        params=params if params is not None else {"models": "svm:1", "seed": "42"},
        dataset=None,
    )


def load_entrypoint(name: str):
    """``entrypoints/<name>.py`` as click runs it: the ``mlfleet <name>`` command (for CliRunner)."""
    from mlfleet.cli import group

    return group.get_command(None, name)


def assert_nothing_written(tmp_path, *, results: str | Path | None = None):
    """Nothing of a command that stopped on bad input: no table, no run, no registered model, no artifact.

    ``results`` is a results location the command was given, besides the default one.
    """
    assert not (tmp_path / "lakehouse").exists()
    if results is not None:
        assert not (Path(results) / "_delta_log").exists(), f"a table was written at {results}"
    artifacts = [p for p in (tmp_path / "mlruns").rglob("*") if p.is_file()] if (tmp_path / "mlruns").exists() else []
    assert not artifacts, artifacts[:5]
    if (tmp_path / "mlflow.db").exists():  # the test's store (conftest); a command that stopped early made none
        client = mlflow.MlflowClient()
        experiments = [e.experiment_id for e in client.search_experiments()]
        assert client.search_runs(experiments) == []
        assert client.search_registered_models() == []


def given(args: list[str], option: str, folder: Path) -> Path | None:
    """The path a command line gave ``option`` (``--results x``), in ``folder``; None when not given."""
    return folder / args[args.index(option) + 1] if option in args else None


def assert_serves_what_was_scored(model_uri: str, rows, labels=None, *, min_accuracy: float = 0.0):
    """The logged classifier, loaded as a user does, predicts on raw ``rows`` exactly what its scores were
    computed from: the label map of its pipeline's predictions as the scorer makes them, row by row.

    ``labels``: the rows' true labels; with ``min_accuracy`` the served model must also get that share right
    (a constant predictor or a swapped label map cannot).
    """
    import numpy as np

    from mlfleet.metrics import predict_with_proba
    from mlfleet.training.labels import codes_model, label_array

    served = np.asarray(mlflow.pyfunc.load_model(model_uri).predict(rows))
    native = mlflow.sklearn.load_model(model_uri)
    codes, _ = predict_with_proba(codes_model(native), rows, "classification")
    expected = label_array(native.classes_)[codes]
    mismatched = np.flatnonzero(served != expected)
    assert len(served) == len(rows) and not len(mismatched), f"{len(mismatched)} rows differ, first {mismatched[:5]}"
    if labels is not None:
        accuracy = float(np.mean(served == np.asarray(labels)))
        assert accuracy >= min_accuracy, f"the served model gets {accuracy:.2f} of the rows right"


def project_copy(dest: Path) -> Path:
    """The files `mlflow run .` needs (the library is installed), copied to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("MLproject", "conda.yaml"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "entrypoints", dest / "entrypoints", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def mlflow_run_command(
    project: Path, entry_point: str, params: dict[str, str], *, experiment: str = "", env: dict[str, str] | None = None
):
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


def mlflow_run(
    project: Path,
    entry_point: str,
    params: dict[str, str],
    *,
    experiment: str = "",
    env: dict[str, str] | None = None,
    timeout: int = 600,
):
    """Run ``mlflow run . -e ENTRY --env-manager local -P k=v ...`` in ``project``, as a user types it."""
    cmd, full_env = mlflow_run_command(project, entry_point, params, experiment=experiment, env=env)
    return subprocess.run(cmd, cwd=project, env=full_env, capture_output=True, text=True, timeout=timeout)


def sweep_counts(client, results_uri: str, sweep_id: str) -> dict[str, object]:
    """What a sweep left in both stores: runs by status, rows, duplicates, rows without their run."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.sweep_id = '{sweep_id}' and tags.`mlfleet.role` = 'model'", max_results=5000
    )
    finished = [r for r in runs if r.info.status == "FINISHED"]
    rows = read_results(results_uri, sweep_id)
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
