"""The guard's rule: on more than one node, the stores the tasks write must be shared (pure logic)."""

import pytest

from mlfleet import locations, settings
from mlfleet.errors import MlfleetError
from mlfleet.execution.cluster import Cluster
from mlfleet.execution.guard import SHARED_ENV
from mlfleet.execution.guard import check_shared_stores as check_with
from mlfleet.stores.tables import open_results


def tables(*places: str) -> tuple:
    return tuple(open_results(place) for place in places)


def check_shared_stores(cluster, **stores) -> None:
    """The guard with the settings the command would read now."""
    check_with(cluster, settings.read(), **stores)


def cluster(nodes: int, address: str = "head:6379") -> Cluster:
    return Cluster(address=address, nodes=nodes, total_cpus=4.0 * nodes, max_cpus=4, max_gpus=0.0, started_here=False)


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("sqlite:////tmp/mlflow.db", True),
        ("file:///tmp/mlruns", True),
        ("mlruns", True),
        ("http://mlflow:5000", False),
        ("https://mlflow.example", False),
        ("databricks", False),
        ("postgresql+psycopg2://u@db/mlflow", False),
    ],
)
def test_which_tracking_stores_are_local(uri, local):
    assert locations.store(uri).is_local is local


@pytest.mark.parametrize(
    ("tracking", "results", "message"),
    [
        (
            "sqlite:////tmp/mlflow.db",
            (),
            "MLflow tracks to sqlite:////tmp/mlflow.db on this machine.*MLFLOW_TRACKING_URI to a tracking server",
        ),
        (
            "http://mlflow:5000",
            ("/data/lakehouse/t",),
            r"results=/data/lakehouse/t is a folder on this machine.*s3://, abfss://, gs://",
        ),
        ("http://mlflow:5000", ("file:///data/t",), "results=file:///data/t"),
    ],
)
def test_local_stores_on_several_nodes_are_refused(tracking, results, message, monkeypatch):
    monkeypatch.delenv(SHARED_ENV, raising=False)
    with pytest.raises(MlfleetError, match=message) as caught:
        check_shared_stores(cluster(3), tracking_uri=tracking, tables=tables(*results))
    assert "\n" not in str(caught.value) and f"{SHARED_ENV}=1" in str(caught.value)


@pytest.mark.parametrize(
    ("nodes", "tracking", "results"),
    [
        (1, "sqlite:////tmp/mlflow.db", ("/data/t",)),  # one node sees its own disk
        (4, "http://mlflow:5000", ("s3://bucket/t", "abfss://c@acct.dfs.core.windows.net/t", "gs://b/t")),
        (4, "", ()),  # tasks that write nothing (the benchmark's fits)
    ],
)
def test_shared_or_single_node_stores_pass(nodes, tracking, results, monkeypatch):
    monkeypatch.delenv(SHARED_ENV, raising=False)
    check_shared_stores(cluster(nodes), tracking_uri=tracking, tables=tables(*results))


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_shared_storage_declared_lets_local_paths_through(value, monkeypatch):
    monkeypatch.setenv(SHARED_ENV, value)
    check_shared_stores(cluster(4), tracking_uri="sqlite:////nfs/mlflow.db", tables=tables("/nfs/lakehouse/t"))


def test_shared_storage_other_values_do_not(monkeypatch):
    monkeypatch.setenv(SHARED_ENV, "0")
    with pytest.raises(MlfleetError):
        check_shared_stores(cluster(2), tracking_uri="sqlite:////nfs/mlflow.db")


def test_ray_client_runs_the_tasks_elsewhere_even_on_one_node(monkeypatch):
    monkeypatch.delenv(SHARED_ENV, raising=False)
    with pytest.raises(
        MlfleetError,
        match=r"^the Ray cluster at ray://head:10001 runs the tasks on its own machines \(Ray Client\) but MLflow",
    ):
        check_shared_stores(cluster(1, "ray://head:10001"), tracking_uri="sqlite:////tmp/mlflow.db")
    check_shared_stores(cluster(1, "ray://head:10001"), tracking_uri="http://mlflow:5000", tables=tables("s3://b/t"))
