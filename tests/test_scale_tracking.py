"""Every entry point against a real MLflow tracking server (``MLFLOW_TRACKING_URI=http://...``) serving
the artifacts, with a sqlite backend and with PostgreSQL, as teams run it in production.

One server per backend and one Ray head serve the whole module; the entry points run through
`mlflow run`, as users type it. On the sqlite-backed server, two train_cpu sweeps and a
train_gpu sweep run at the same time into one experiment and one table (all their tasks logging
through the server at once: SQLite's one writer is where concurrency bites), then analyze reads
them back; on PostgreSQL one sweep and the analysis run. The ensemble and the benchmark talk
to the server as the others do and never to its database, so they run against the
sqlite-backed server only, which keeps the module's time down.

Every command runs as on a real machine: credentials in MLflow's and the clouds' environment
variables (:data:`test_secrets.SECRETS`) and a password inside the tracking URI itself
(``http://user:password@127.0.0.1:port``, which the server, running without auth, ignores).
The module's last test searches every file the five entry points left (the server's
database and artifacts, the Delta tables, the reports) and everything they printed: no secret.
"""

import subprocess
from pathlib import Path

import mlflow
import pytest
from deltalake import DeltaTable
from helpers import assert_sweep_complete, mlflow_run, mlflow_run_command, project_copy, read_results
from servers import mlflow_server, postgres, ray_cluster
from test_secrets import SECRETS, assert_no_secret_left

pytestmark = pytest.mark.e2e
SMALL = {"n_trials": "2", "n_samples": "300", "n_features": "8"}
EXPERIMENT = "fleet"
#: inside the tracking URI every command gets: the sweep's own lines, params and tags must not carry it
URI_PASSWORD = "mlfleet-secret-uri-password-48be"


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
        yield Stack(project, uri, root, head.address)


class Stack:
    def __init__(self, project: Path, uri: str, root: Path, address: str):
        self.project, self.uri, self.root, self.address = project, uri, root, address
        self.artifacts = root / "artifacts"
        self.client = mlflow.MlflowClient(uri)
        with_password = uri.replace("http://", f"http://fleet:{URI_PASSWORD}@", 1)
        self.env = {**SECRETS, "MLFLOW_TRACKING_URI": with_password}
        self.printed: list[str] = []  # every command's stdout and stderr, for the secrets search

    def run(self, entry_point: str, params: dict[str, str]):
        proc = mlflow_run(self.project, entry_point, params, experiment=EXPERIMENT, env=self.env)
        self.printed.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    def run_together(self, *commands: tuple[str, dict[str, str]]) -> None:
        self.client.create_experiment(EXPERIMENT)  # once, before the runs that share it start
        lines = [mlflow_run_command(self.project, e, p, experiment=EXPERIMENT, env=self.env) for e, p in commands]
        procs = [
            subprocess.Popen(cmd, cwd=self.project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for cmd, env in lines
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            self.printed.append(out + err)
            assert proc.returncode == 0, err[-3000:]

    def runs(self, role: str):
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        return self.client.search_runs([experiment.experiment_id], f"tags.`mlfleet.role` = '{role}'")

    def nothing_local(self) -> bool:
        return not (self.project / "mlflow.db").exists() and not (self.project / "mlruns").exists()


def _backend(name: str, root: Path):
    from contextlib import nullcontext

    return postgres() if name == "postgresql" else nullcontext(f"sqlite:///{root / 'server.db'}")


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_two_cpu_fleets_and_a_gpu_fleet_at_once(stack):
    stack.run_together(
        ("train_cpu", {"address": stack.address, "models": "logistic:1,naive_bayes:1,random_forest:1", **SMALL}),
        ("train_cpu", {"address": stack.address, "models": "naive_bayes:2", "first_id": "10", **SMALL}),
        ("train_gpu", {"address": stack.address, "models": "mlp:2", "device": "cpu", **SMALL}),
    )
    parents = {r.data.tags["sweep_id"]: r for r in stack.runs("sweep")}
    assert sorted(r.data.tags["entry_point"] for r in parents.values()) == ["train_cpu", "train_cpu", "train_gpu"]
    assert sorted(r.data.metrics["n_succeeded"] for r in parents.values()) == [2, 2, 3]
    location = str(stack.project / "lakehouse" / "model_training_results")
    table = read_results(location)
    assert sorted(table["model_id"]) == [0, 1, 2, 10, 11, 90, 91] and (table["status"] == "FINISHED").all()
    history = DeltaTable(location).history()
    assert sorted(h["version"] for h in history) == list(range(len(history)))  # no gap in the table's history
    # each fleet's driver commits its rows in batches: at least one append per fleet, at most one per model
    assert 3 <= sum(h["operation"] == "WRITE" for h in history) <= 7
    for sweep_id, _ in parents.items():
        assert_sweep_complete(
            stack.client, location, sweep_id, table[table["sweep_id"] == sweep_id]["model_id"].tolist()
        )
    for row in table.itertuples():
        run = stack.client.get_run(row.mlflow_run_id)
        assert run.data.tags["mlflow.parentRunId"] == parents[row.sweep_id].info.run_id
        assert run.info.artifact_uri.startswith(
            "mlflow-artifacts:"
        )  # served by the server, stored under its destination
    assert len(list(stack.artifacts.rglob("MLmodel"))) >= 7 and stack.nothing_local()


@pytest.mark.parametrize("stack", ["postgresql"], indirect=True)
def test_a_sweep_into_postgresql(stack):
    stack.run("train_cpu", {"address": stack.address, "models": "logistic:1,naive_bayes:1", **SMALL})
    (parent,) = stack.runs("sweep")
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_succeeded"] == 2
    location = str(stack.project / "lakehouse" / "model_training_results")
    assert_sweep_complete(stack.client, location, parent.data.tags["sweep_id"], [0, 1])
    assert stack.nothing_local()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_ensemble(stack):
    stack.run(
        "ensemble",
        {
            "address": stack.address,
            "partitions": "2",
            "model": "naive_bayes",
            "register": "fleet-ensemble",
            **SMALL,
            "n_trials": "0",
        },
    )
    (parent,) = stack.runs("ensemble")
    assert parent.info.status == "FINISHED"
    assert stack.client.get_registered_model("fleet-ensemble").name == "fleet-ensemble"


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_benchmark(stack):
    params = {
        "address": stack.address,
        "model": "random_forest",
        "n_models": "2",
        "ladder": "n_estimators=5:10",
        "modes": "sequential,ray",
    }
    stack.run("benchmark", {**params, "n_samples": "300", "n_features": "8"})
    (parent,) = stack.runs("benchmark")
    assert parent.info.status == "FINISHED" and "wall_s_ray" in parent.data.metrics


def test_analyze(stack):
    sweeps = ",".join(
        r.data.tags["sweep_id"] for r in stack.runs("sweep")
    )  # all three (by default: the latest per entry point)
    proc = stack.run("analyze", {"k": "2", "output": "reports/one", "sweep": sweeps})
    (analysis,) = stack.runs("analysis")
    n_rows = len(read_results(str(stack.project / "lakehouse" / "model_training_results")))
    assert analysis.data.metrics["n_models"] == n_rows and n_rows in (2, 7), proc.stderr[-2000:]
    champion = stack.client.get_model_version_by_alias(f"{EXPERIMENT}-champion", "champion")
    assert champion.tags["sweep_id"].startswith(("train_cpu-", "train_gpu-"))
    assert any(a.path == "report.html" for a in stack.client.list_artifacts(analysis.info.run_id))
    assert stack.nothing_local()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_no_secret_in_anything_the_five_entry_points_left(stack):
    """Last on the sqlite server, after train_cpu, train_gpu, ensemble, benchmark and analyze ran there."""
    assert {
        r.data.tags["mlfleet.role"]
        for r in stack.client.search_runs([stack.client.get_experiment_by_name(EXPERIMENT).experiment_id])
    } >= {"sweep", "model", "ensemble", "benchmark", "analysis"}
    secrets = {**SECRETS, "tracking URI password": URI_PASSWORD}
    # `mlflow run` itself (MLflow's code, not mlfleet's) prints the link to the run it ended, URI
    # as given: the one pair of lines per command allowed, and left out of the search below
    shown = []
    for printed in stack.printed:
        links = [line for line in printed.splitlines() if URI_PASSWORD in line]
        assert len(links) <= 2 and all(" View run " in line or " View experiment at:" in line for line in links), links
        shown.append("\n".join(line for line in printed.splitlines() if line not in links))
    assert_no_secret_left(stack.root, "\n".join(shown), secrets=secrets)
