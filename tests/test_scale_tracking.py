"""Every entry point against a real MLflow tracking server (``MLFLOW_TRACKING_URI=http://...``) serving
the artifacts, once with a sqlite backend and once with PostgreSQL, as teams run it in production.

One server per backend and one Ray head serve the whole module; the entry points run in file
order (analyze reads what train_cpu and train_gpu wrote) through `mlflow run`, as users type it.
"""

from pathlib import Path

import mlflow
import pytest

from conftest import mlflow_run, project_copy
from mlfleet import results
from servers import mlflow_server, postgres, ray_cluster

pytestmark = pytest.mark.e2e
SMALL = {"n_trials": "2", "n_samples": "300", "n_features": "8"}
EXPERIMENT = "fleet"


@pytest.fixture(scope="module")
def head():
    with ray_cluster((2,)) as cluster:
        yield cluster


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory, head):
    """A project folder, an `mlflow server` on ``request.param`` and the environment that points at it."""
    root = tmp_path_factory.mktemp(request.param)
    project = project_copy(root / "project")
    with _backend(request.param, root) as backend, mlflow_server(backend, root / "artifacts") as uri:
        yield Stack(project, uri, root / "artifacts", head.address)


class Stack:
    def __init__(self, project: Path, uri: str, artifacts: Path, address: str):
        self.project, self.uri, self.artifacts, self.address = project, uri, artifacts, address
        self.client = mlflow.MlflowClient(uri)

    def run(self, entry_point: str, params: dict[str, str]):
        proc = mlflow_run(self.project, entry_point, params, experiment=EXPERIMENT, env={"MLFLOW_TRACKING_URI": self.uri})
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    def runs(self, role: str):
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        return self.client.search_runs([experiment.experiment_id], f"tags.`mlfleet.role` = '{role}'")

    def nothing_local(self) -> bool:
        return not (self.project / "mlflow.db").exists() and not (self.project / "mlruns").exists()


def _backend(name: str, root: Path):
    from contextlib import nullcontext

    return postgres() if name == "postgresql" else nullcontext(f"sqlite:///{root / 'server.db'}")


def test_train_cpu(stack):
    stack.run("train_cpu", {"address": stack.address, "models": "logistic:1,naive_bayes:1,random_forest:1", **SMALL})
    (parent,) = stack.runs("sweep")
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_succeeded"] == 3
    table = results.read_results(str(stack.project / "lakehouse" / "model_training_results"))
    assert len(table) == 3
    for row in table.itertuples():
        run = stack.client.get_run(row.mlflow_run_id)
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server, stored under its destination
    assert any(stack.artifacts.rglob("MLmodel")) and stack.nothing_local()


def test_train_gpu(stack):
    stack.run("train_gpu", {"address": stack.address, "models": "mlp:2", "device": "cpu", **SMALL})
    parents = [r for r in stack.runs("sweep") if r.data.tags["entry_point"] == "train_gpu"]
    assert len(parents) == 1 and parents[0].data.metrics["n_succeeded"] == 2


def test_ensemble(stack):
    stack.run("ensemble", {"address": stack.address, "partitions": "2", "model": "naive_bayes", "register": "fleet-ensemble", **SMALL, "n_trials": "0"})
    (parent,) = stack.runs("ensemble")
    assert parent.info.status == "FINISHED"
    assert stack.client.get_registered_model("fleet-ensemble").name == "fleet-ensemble"


def test_benchmark(stack):
    params = {"address": stack.address, "model": "random_forest", "n_models": "2", "ladder": "n_estimators=5:10", "modes": "sequential,ray"}
    stack.run("benchmark", {**params, "n_samples": "300", "n_features": "8"})
    (parent,) = stack.runs("benchmark")
    assert parent.info.status == "FINISHED" and "wall_s_ray" in parent.data.metrics


def test_analyze(stack):
    proc = stack.run("analyze", {"k": "2", "output": "reports/one"})
    (analysis,) = stack.runs("analysis")
    assert analysis.data.metrics["n_models"] == 5, proc.stderr[-2000:]
    champion = stack.client.get_model_version_by_alias(f"{EXPERIMENT}-champion", "champion")
    assert champion.tags["sweep_id"].startswith(("train_cpu-", "train_gpu-"))
    assert any(a.path == "report.html" for a in stack.client.list_artifacts(analysis.info.run_id))
    assert stack.nothing_local()
