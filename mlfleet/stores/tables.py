"""The results-table protocol and the one place a backend is chosen from a location.

``open_results(location, spec)`` returns a :class:`~mlfleet.stores.delta.DeltaResults` for a
folder or an object-store URI, or a :class:`~mlfleet.stores.spark.SparkResults` for a Spark
catalog table (``catalog.schema.table``) or a Databricks mount written through Spark;
everything after works on the object it returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mlfleet.locations import MOUNT, SPARK_TABLE, Place, place
from mlfleet.stores.rows import RESULTS, TableSpec


class ResultsTable(Protocol):
    """What the commands need of a table of rows, whatever stores it."""

    given: str  # the location as the user gave it (messages)
    uri: str  # the location as every process must read it (an absolute path, a URI, a table name)
    place: Place  # what the location is (mlfleet.locations)
    spec: TableSpec
    is_local: bool  # a folder on this machine only: the multi-node guard refuses it
    what: str  # "results=<location>", how messages name it

    def check_writable(self) -> None: ...
    def missing_columns(self) -> list[str]: ...
    def ensure(self) -> list[str]: ...
    def exists(self) -> bool: ...
    def append(self, rows: Sequence, app_id: str = "", *, version: int = 1) -> bool: ...
    def commit_batch(self, rows: Sequence, versions: Sequence[int]) -> int: ...
    def commit_each(self, rows: Sequence, versions: Sequence[int]) -> list[Exception | None]: ...
    def read(self, **equal: Any) -> Any: ...
    def compact(self) -> str: ...
    def check_resumable(self, sweep_id: str) -> None: ...
    def check_takes(self, command: str) -> None: ...
    def snapshot(self, **equal: Any) -> tuple[Any, Callable[[str], int | None]]: ...
    def sibling(self, spec: TableSpec, *, what: str = "") -> ResultsTable: ...
    def missing_text(self) -> str: ...


def open_results(location: str, spec: TableSpec = RESULTS, *, what: str = "") -> ResultsTable:
    """The table of ``spec`` rows at ``location``.

    A Spark table for ``catalog.schema.table``, and for a Databricks volume or DBFS folder
    when Spark is at hand (delta-rs cannot commit there); else Delta through delta-rs.
    Opening reads or writes nothing (the Spark session starts when the table is first used).
    """
    from mlfleet.stores import spark
    from mlfleet.stores.delta import DeltaResults

    where = place(location)
    if where.kind == SPARK_TABLE:
        return spark.SparkResults(location, spec, what=what)
    if where.kind == MOUNT and spark.spark_at_hand():
        return spark.SparkResults(location, spec, what=what, at_path=True)
    return DeltaResults(location, spec, what=what)
