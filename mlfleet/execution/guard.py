"""The guard at start: on a multi-node Ray cluster, every store the workers write must be shared.

A local sqlite or file tracking store and a local results folder live on the driver's disk;
a task on another node would write its own copy there (or fail), and the sweep would come
back with runs and rows scattered over machines. So a run that joins a cluster of more than
one node, or any cluster through Ray Client (``ray://``: the driver is outside it), stops
before any run or table is created, saying what to use instead.

Where every node mounts the same path (NFS, a cluster file system), set
``MLFLEET_SHARED_STORAGE=1`` and local paths are accepted as they are.
"""

from __future__ import annotations

from typing import Protocol

from mlfleet.errors import MlfleetError
from mlfleet.locations import store
from mlfleet.redaction import redact
from mlfleet.settings import Settings

#: set to 1 (or true/yes) when local paths name the same shared storage on every node
SHARED_ENV = "MLFLEET_SHARED_STORAGE"


class _Cluster(Protocol):  # what the guard reads of mlfleet.execution.cluster.Cluster
    address: str
    nodes: int


class _Table(Protocol):  # what the guard reads of a results table
    what: str  # "results=<location as given>", how messages name it
    is_local: bool


def check_shared_stores(
    cluster: _Cluster, settings: Settings, *, tracking_uri: str = "", tables: tuple[_Table, ...] = ()
) -> None:
    """Raise MlfleetError when the tasks of ``cluster`` would write to a store on this machine only.

    ``tracking_uri`` and ``tables`` are the stores that the Ray tasks themselves write (an
    empty ``tracking_uri``: the tasks log nothing). A one-node cluster joined directly (the
    driver is on its node), or ``MLFLEET_SHARED_STORAGE=1``, accepts anything.
    """
    if settings.shared_storage:
        return
    if cluster.address.startswith("ray://"):
        where = f"the Ray cluster at {cluster.address} runs the tasks on its own machines (Ray Client)"
    elif cluster.nodes > 1:
        where = f"the Ray cluster has {cluster.nodes} nodes"
    else:
        return
    if tracking_uri and store(tracking_uri).is_local:
        raise MlfleetError(
            f"{where} but MLflow tracks to {redact(tracking_uri)} on this machine, which the other nodes "
            "cannot see; set MLFLOW_TRACKING_URI to a tracking server (http://host:5000, `mlflow server`), "
            f"or {SHARED_ENV}=1 if every node mounts that path"
        )
    for table in tables:
        if table.is_local:
            raise MlfleetError(
                f"{where} but {table.what} is a folder on this machine, which the other nodes "
                "cannot see; use shared storage (s3://, abfss://, gs://) for results, "
                f"or {SHARED_ENV}=1 if every node mounts that path"
            )
