"""`mlflow run . -e analyze --env-manager local` after a small train_cpu and train_gpu into one
experiment and table: the report, the summary table, the champion and the mismatch report.

One trained project serves the whole module (training is most of its time); the tests run
in file order and the last one deletes a run, so it stays last.
"""

import json
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from deltalake import DeltaTable
from helpers import assert_serves_what_was_scored, mlflow_run, mlflow_run_command, project_copy, read_results

from mlfleet.config import DataConfig
from mlfleet.data import load_dataset

pytestmark = pytest.mark.e2e
TABLE = "lakehouse/model_training_results"
DATA = {"n_trials": "2", "n_samples": "400"}
NAME = "fleet-champion"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A project where train_cpu (5 models) and train_gpu (2 MLPs) trained into experiment ``fleet`` at once."""
    project = project_copy(tmp_path_factory.mktemp("analyze"))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    # two `mlflow run`s creating one fresh store or experiment at once race in MLflow itself; made
    # here, outside the project folder, the experiment needs its artifacts placed in the project
    mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"]).create_experiment(
        "fleet", artifact_location=(project / "mlruns" / "fleet").as_uri()
    )
    commands = [
        mlflow_run_command(
            project,
            "train_cpu",
            {"models": "logistic:2,naive_bayes:2,random_forest:1", **DATA},
            experiment="fleet",
            env=env,
        ),
        mlflow_run_command(project, "train_gpu", {"models": "mlp:2", **DATA}, experiment="fleet", env=env),
    ]
    procs = [
        subprocess.Popen(cmd, cwd=project, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd, e in commands
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    return project, env


def analyze(fleet, **params):
    project, env = fleet
    return mlflow_run(project, "analyze", params, experiment="fleet", env=env)


def client_of(fleet):
    return mlflow.MlflowClient(fleet[1]["MLFLOW_TRACKING_URI"])


@pytest.fixture(scope="module")
def first(fleet):
    """The first analysis, with the defaults but a fixed report folder."""
    proc = analyze(fleet, output="reports/first")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_report_summary_table_and_champion(fleet, first, monkeypatch):
    project, env = fleet
    out = project / "reports" / "first"
    table = read_results(str(project / TABLE))
    assert len(table) == 7
    for name in (
        "report.html",
        "summary.md",
        "models.csv",
        "mismatches.csv",
        "analysis.json",
        "ensemble.png",
        "score_by_type.png",
        "time_vs_score.png",
        "score_by_strategy.png",
        "cpu_vs_gpu.png",
    ):
        assert (out / name).stat().st_size > 0, name
    facts = json.loads((out / "analysis.json").read_text())
    assert facts["n_models"] == 7 and facts["n_failed"] == 0 and facts["metric"] == "f1"
    assert sorted((s["entry_point"], s["n_rows"]) for s in facts["sweeps"]) == [("train_cpu", 5), ("train_gpu", 2)]
    assert facts["mismatches"] == {} and "MLflow and Delta agree: 7 models" in first.stderr
    assert len(pd.read_csv(out / "models.csv")) == 7
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "src='" not in page.replace("src='data:", "")
    assert "Top 7 models" in page and "TorchMLPClassifier" in page
    assert "| rank | sweep_id | model_id |" in (out / "summary.md").read_text()

    summary = DeltaTable(str(project / "lakehouse" / "model_training_summary")).to_pandas()
    mine = summary[summary["analysis_id"] == facts["analysis_id"]]
    assert sorted(mine["model_type"]) == sorted(table["model_type"].unique())  # one row per model type
    assert mine.set_index("model_type")["n_models"].to_dict() == table.groupby("model_type").size().to_dict()

    # chosen on validation (ties to the lower model id), its test score reported
    best = table.sort_values(["sweep_id", "model_id"]).sort_values("val_score", ascending=False, kind="stable").iloc[0]
    assert facts["best"]["mlflow_run_id"] == best.mlflow_run_id
    client = client_of(fleet)
    version = client.get_model_version_by_alias(NAME, "champion")
    ensemble = facts["ensemble"]  # selected over all 7 models' validation predictions
    assert ensemble["best_single_val_score"] == pytest.approx(best.val_score)
    assert ensemble["best_single_test_score"] == pytest.approx(best.f1)
    assert 1 <= len(ensemble["members"]) <= 7 and sum(ensemble["weights"]) == pytest.approx(1.0)
    assert ensemble["wins"] == (len(ensemble["members"]) > 1 and ensemble["val_score"] > best.val_score)
    if ensemble["wins"]:  # the ensemble competes for champion on validation like any model
        assert version.tags["model_type"] == f"ensemble of {len(ensemble['members'])}"
        assert float(version.tags["score"]) == pytest.approx(ensemble["test_score"])
    else:
        assert version.run_id == best.mlflow_run_id and version.source == best.model_uri
        assert float(version.tags["score"]) == pytest.approx(best.f1)
    assert version.tags["sweep_id"] == best.sweep_id and version.tags["metric"] == "f1"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
    data = load_dataset(DataConfig(n_samples=400))
    assert_serves_what_was_scored(f"models:/{NAME}@champion", data.X, data.y, min_accuracy=0.7)

    run = client.get_run(facts["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["mlfleet.role"] == "analysis"
    assert {"report.html", "summary.md", "ensemble.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    # a 0/1 integer target: evaluate gets the labels the served model returns, on the report's half of the
    # test rows (the gate has the other half)
    assert "mlflow.models.evaluate of the champion on the report's half of the test split (40 rows" in first.stderr
    assert {"accuracy_score", "f1_score"} <= set(run.data.metrics)
    # the ensemble pins what its members hold, and PyTorch only with an MLP among them
    if len(ensemble["members"]) > 1:
        files = Path(mlflow.artifacts.download_artifacts(run.data.tags["ensemble_model_uri"]))
        pinned = (files / "requirements.txt").read_text()
        members = ensemble["members"]
        assert ("torch==" in pinned) == any("TorchMLP" in m for m in members), (pinned, members)
        assert_serves_what_was_scored(run.data.tags["ensemble_model_uri"], data.X, data.y, min_accuracy=0.7)


def test_an_analysis_without_a_better_model_leaves_the_champion(fleet, first):
    client = client_of(fleet)
    champion = client.get_model_version_by_alias(NAME, "champion")
    proc = analyze(fleet)  # the same sweeps: the best model already is the champion
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{NAME} version {champion.version} stays the champion" in proc.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == champion.version
    assert len(client.search_model_versions(f"name='{NAME}'")) == 1

    # the other sweep's best cannot beat the best of both: registered, aliased challenger
    table = read_results(str(fleet[0] / TABLE))
    other = next(s for s in table["sweep_id"].unique() if s != champion.tags["sweep_id"])
    proc = analyze(fleet, sweep=other, k="2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "aliased it challenger: it does not beat the champion" in proc.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == champion.version
    challenger = client.get_model_version_by_alias(NAME, "challenger")
    assert challenger.tags["sweep_id"] == other and "does not beat" in challenger.tags["mlfleet.decision"]


def test_bad_input_under_mlflow_run_registers_nothing(fleet, first):
    client = client_of(fleet)
    versions = len(client.search_model_versions(f"name='{NAME}'"))
    proc = analyze(fleet, sweep="nope")
    assert proc.returncode != 0
    assert "error: sweep 'nope' is not in experiment 'fleet'" in proc.stderr
    assert len(client.search_model_versions(f"name='{NAME}'")) == versions


def test_a_run_deleted_from_mlflow_shows_in_the_mismatch_report(fleet, first):
    project, _ = fleet
    client = client_of(fleet)
    table = read_results(str(project / TABLE))
    worst = table.sort_values("f1").iloc[0]
    client.delete_run(worst.mlflow_run_id)
    proc = analyze(fleet, output="reports/after_delete")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MLflow and Delta disagree: 1 row without a run" in proc.stderr
    mismatches = pd.read_csv(project / "reports" / "after_delete" / "mismatches.csv")
    assert mismatches[["kind", "model_id", "run_id"]].values.tolist() == [
        ["row without a run", worst.model_id, worst.mlflow_run_id]
    ]
    facts = json.loads((project / "reports" / "after_delete" / "analysis.json").read_text())
    assert facts["n_models"] == 7 and facts["mismatches"] == {"row without a run": 1}
