"""A multi-node Ray cluster on one machine (a head and a worker node, one CPU each, started and
stopped here): the fleet spreads over both nodes logging to a tracking server and writing its
rows to S3 (moto), and the guard stops local stores at start unless declared shared."""

import json

import mlflow
import pytest
from helpers import project_copy, read_results
from servers import SECRET, mlflow_server, ray_cluster, run_entry, s3_server

from mlfleet.config import DataConfig
from mlfleet.data import load_dataset
from mlfleet.execution.guard import SHARED_ENV
from mlfleet.stores.delta import STORAGE_OPTIONS_ENV, DeltaResults
from mlfleet.stores.rows import RESULTS

pytestmark = pytest.mark.e2e
TABLE = "lakehouse/model_training_results"
SMALL = {"n_trials": "2", "n_samples": "300", "n_features": "8"}


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster((1, 1)) as two_nodes:
        yield two_nodes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    with mlflow_server(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as uri:
        yield uri


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    return project_copy(tmp_path)


@pytest.fixture(scope="module")
def s3():
    with s3_server() as options:
        yield options


def test_the_fleet_spreads_over_the_nodes_into_a_tracking_server_and_s3(cluster, server, s3, project, monkeypatch):
    # the nodes were started without the storage options: they reach the workers with the job
    env = {"MLFLOW_TRACKING_URI": server, STORAGE_OPTIONS_ENV: json.dumps(s3)}
    params = {
        "address": cluster.address,
        "models": "logistic:2,naive_bayes:2,random_forest:1",
        "results": "s3://lake/fleet",
        "experiment": "spread",
    }
    proc = run_entry(project, "train_cpu", {**params, **SMALL}, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Ray {cluster.address} with 2 node(s), 2 CPUs" in proc.stderr
    table = DeltaResults("s3://lake/fleet", RESULTS, options=s3).read()
    assert len(table) == 5 and (table["status"] == "FINISHED").all()
    assert table["node"].nunique() == 2  # models ran on both nodes
    assert (table["cpus"] == 1).all()  # one CPU each (a small forest), and no node has more
    client = mlflow.MlflowClient(server)
    for row in table.itertuples():
        run = client.get_run(row.mlflow_run_id)
        assert run.info.status == "FINISHED" and run.data.tags["node"] == row.node
        assert SECRET not in json.dumps({**run.data.params, **run.data.tags})
    assert (
        not (project / "mlflow.db").exists()
        and not (project / "mlruns").exists()
        and not (project / "lakehouse").exists()
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)  # the model's artifacts come back through the server
    X = load_dataset(DataConfig(n_samples=300, n_features=8)).X.head(4)
    assert len(mlflow.pyfunc.load_model(table["model_uri"][0]).predict(X)) == 4


def test_declared_shared_storage_lets_local_stores_through(cluster, project):
    # on one machine every node sees the same disk, as every node sees an NFS mount on a real cluster
    proc = run_entry(
        project, "train_cpu", {"address": cluster.address, "models": "naive_bayes:2", **SMALL}, env={SHARED_ENV: "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = read_results(str(project / TABLE))
    assert len(table) == 2 and (table["status"] == "FINISHED").all()
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert {client.get_run(r).info.status for r in table["mlflow_run_id"]} == {"FINISHED"}


@pytest.mark.parametrize(
    ("entry_point", "env", "message"),
    [
        ("train_cpu", {}, "error: the Ray cluster has 2 nodes but MLflow tracks to sqlite:///"),
        ("train_cpu", {"MLFLOW_TRACKING_URI": "<server>"}, "error: the Ray cluster has 2 nodes but results="),
        ("ensemble", {}, "error: the Ray cluster has 2 nodes but MLflow tracks to sqlite:///"),
    ],
)
def test_local_stores_on_a_multi_node_cluster_stop_at_start(cluster, server, project, entry_point, env, message):
    env = {
        key: server if value == "<server>" else value for key, value in env.items()
    }  # a tracking server that answers
    params = {"address": cluster.address, "n_samples": "300"}
    if entry_point == "train_cpu":
        params["models"] = "naive_bayes:1"
    proc = run_entry(project, entry_point, params, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(message) and SHARED_ENV in last
    assert (
        not (project / "lakehouse").exists()
        and not (project / "mlflow.db").exists()
        and not (project / "mlruns").exists()
    )
