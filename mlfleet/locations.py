"""What a location is, decided once: every place that branches on a URI or path asks here.

Two kinds of location reach mlfleet:

* a **table or data location** (``results=``, ``data=``): a folder on this machine, an object
  store URI (``s3://``, ``abfss://``, ``gs://``...), a Databricks FUSE mount (``/Volumes/...``,
  ``/dbfs/...``, ``dbfs:/...``: shared by every node, but delta-rs cannot commit there), or a
  Spark catalog table (``catalog.schema.table``);
* a **tracking or registry URI**: a sqlite file or a folder on this machine, a tracking server
  (``http(s)://``), a database (``postgresql://``...), Databricks (``databricks``,
  ``databricks://PROFILE``) or Unity Catalog's registry (``databricks-uc``).

:func:`place` and :func:`store` classify them; nothing else parses a scheme.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: URI schemes of the object stores delta-rs reads and writes
OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "azure", "adl")
#: Databricks' FUSE mounts of shared storage
MOUNTS = ("/Volumes/", "/dbfs/")
#: ``catalog.schema.table``: three plain identifiers (Unity Catalog, or ``spark_catalog.default.t``)
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")

FOLDER, OBJECT_STORE, MOUNT, SPARK_TABLE = "folder", "object_store", "mount", "spark_table"


@dataclass(frozen=True)
class Place:
    """A table or data location: its ``kind`` and the form every process must use (``uri``)."""

    given: str
    kind: str
    uri: str

    @property
    def is_local(self) -> bool:
        """A folder on this machine only (another node cannot see it)."""
        return self.kind == FOLDER

    @property
    def is_remote(self) -> bool:
        """Read over the network: an object store (or another URI scheme)."""
        return self.kind == OBJECT_STORE

    def sibling(self, name: str) -> Place:
        """The location of table ``name`` beside this one: same folder, bucket prefix or catalog schema."""
        if self.kind == SPARK_TABLE:
            return place(self.uri.rsplit(".", 1)[0] + "." + name)
        if self.kind in (FOLDER, MOUNT) and "://" not in self.uri and not self.uri.startswith("dbfs:/"):
            return place(str(Path(self.uri).parent / name))
        return place(self.uri.rstrip("/").rsplit("/", 1)[0] + "/" + name)


def place(text: str) -> Place:
    """Classify a table or data location. A relative folder is made absolute (workers may run elsewhere)."""
    if TABLE_NAME.match(text) and not Path(text).exists():
        return Place(text, SPARK_TABLE, text)
    path = text.removeprefix("file://")
    if text.startswith("dbfs:/") or any(path.startswith(prefix) for prefix in MOUNTS):
        return Place(text, MOUNT, text)
    if "://" in text and not text.startswith("file://"):
        return Place(text, OBJECT_STORE, text)
    return Place(text, FOLDER, str(Path(path).expanduser().resolve()))


SQLITE, FILE, SERVER, DATABASE, DATABRICKS, UNITY_CATALOG = (
    "sqlite",
    "file",
    "server",
    "database",
    "databricks",
    "unity_catalog",
)
#: tracking and registry URIs without ``://`` that name a service, not a folder
SERVICES = {"databricks": DATABRICKS, "databricks-uc": UNITY_CATALOG, "uc": UNITY_CATALOG}
DATABASES = ("postgresql", "mysql", "mssql")


@dataclass(frozen=True)
class Store:
    """A tracking or registry URI: its ``kind`` and the form every process must use (``uri``)."""

    given: str
    kind: str
    uri: str

    @property
    def is_local(self) -> bool:
        """On this machine's disk (a sqlite file or a folder): the other nodes of a cluster cannot see it."""
        return self.kind in (SQLITE, FILE)

    @property
    def is_databricks(self) -> bool:
        return self.kind == DATABRICKS

    @property
    def is_unity_catalog(self) -> bool:
        """Unity Catalog's registry, whose model names are ``catalog.schema.model``."""
        return self.kind == UNITY_CATALOG

    @property
    def profile(self) -> str:
        """The Databricks profile a ``databricks://PROFILE`` URI names ('' without one)."""
        return self.uri.partition("://")[2] if self.kind == DATABRICKS else ""


def store(uri: str) -> Store:
    """Classify a tracking or registry URI; a relative sqlite path or a bare folder is made absolute.

    A relative ``sqlite:///mlflow.db`` means different files to processes with another working
    directory; everything that is not on this disk reaches MLflow untouched.
    """
    scheme = uri.split(":", 1)[0]
    if scheme in SERVICES:
        return Store(uri, SERVICES[scheme], uri)
    if uri.startswith("sqlite:///"):
        absolute = uri if uri.startswith("sqlite:////") else "sqlite:///" + str(Path(uri[10:]).resolve())
        return Store(uri, SQLITE, absolute)
    if uri.startswith(("http://", "https://")):
        return Store(uri, SERVER, uri)
    if scheme.split("+", 1)[0] in DATABASES:
        return Store(uri, DATABASE, uri)
    if uri.startswith("file:"):
        return Store(uri, FILE, uri)
    if "://" in uri:
        return Store(uri, SERVER, uri)
    return Store(uri, FILE, Path(uri).expanduser().resolve().as_uri())
