"""The Spark path: results and data as Spark catalog tables (``catalog.schema.table``).

Where a SparkSession with Delta Lake exists (Databricks, or Spark started with delta-spark's
jars), ``results`` may name a catalog table, and ``data`` may
name a Spark table. mlfleet uses the process's active SparkSession, or starts one with
``SparkSession.builder.getOrCreate()`` (which reads ``spark-defaults.conf``).

Ray workers hold no SparkSession, so on this path they do not write their rows: they return
them, and the driver writes each one as it arrives. A row's append carries Delta's
idempotent-write options ``txnAppId``/``txnVersion`` with the same application id the
delta-rs path uses (``mlfleet/<sweep>/<model>``), so Delta skips a repeated write.

The same writer serves a Databricks volume or DBFS folder (``/Volumes/...``, ``/dbfs/...``,
``dbfs:/...``) when Spark is there: delta-rs cannot commit on those FUSE mounts (no atomic
rename, delta-rs issue 2540), Spark's Delta writer can. The table is then addressed by its
path (``delta.`/Volumes/...```) instead of a catalog name.

Where Spark has no Delta (open-source Spark without delta-spark's jars) the path stops at
start with one line saying so. The test suite runs this code on such a Spark with
``FORMAT = "parquet"`` (tables created ``USING parquet``); Delta's skipping of a repeated
transaction is not exercised by it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlfleet import settings
from mlfleet.errors import MlfleetError, first_line
from mlfleet.locations import place
from mlfleet.stores.rows import TableSpec, records

#: the format of the tables mlfleet creates through Spark; tests on a Spark without Delta use parquet
FORMAT = "delta"
_SPARK_TYPES = {"int64": "BIGINT", "double": "DOUBLE", "string": "STRING", "timestamp[us, tz=UTC]": "TIMESTAMP"}


def spark_at_hand() -> bool:
    """Whether this process can write through Spark without starting a Spark of its own.

    True in a process that has an active SparkSession, and on a Databricks driver
    (``DATABRICKS_RUNTIME_VERSION`` is set there), where ``getOrCreate`` joins the cluster's Spark.
    """
    if settings.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return False
    return SparkSession.getActiveSession() is not None


def spark_path(location: str) -> str:
    """How Spark names a mount: ``/dbfs/x`` is ``dbfs:/x`` to Spark; ``/Volumes/...`` is itself."""
    location = location.removeprefix("file://")
    return "dbfs:/" + location.removeprefix("/dbfs/") if location.startswith("/dbfs/") else location


def fuse_path(location: str) -> Path:
    """The same mount as a folder on this driver: ``dbfs:/x`` is ``/dbfs/x``."""
    location = location.removeprefix("file://")
    return Path("/dbfs/" + location.removeprefix("dbfs:/") if location.startswith("dbfs:/") else location)


def session(what: str):
    """The active SparkSession, else one from ``SparkSession.builder.getOrCreate()``.

    ``what`` is the parameter being served (``results=a.b.c``), for the error when pyspark
    is missing or Spark cannot start.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MlfleetError(
            f"{what} names a Spark table, but pyspark is not installed; run where Spark with Delta runs (Databricks, "
            "or pip install 'mlfleet[spark]'), or pass a folder or an s3:// URI"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    try:
        started = SparkSession.builder.appName("mlfleet").config("spark.ui.enabled", "false").getOrCreate()
    except Exception as exc:
        raise MlfleetError(
            f"{what} names a Spark table, but Spark did not start ({first_line(exc)}); "
            "check JAVA_HOME and Spark's configuration"
        ) from None
    started.sparkContext.setLogLevel("ERROR")
    return started


def ddl(arrow) -> str:
    """A Spark column list (``sweep_id STRING, model_id BIGINT, ...``) for an Arrow schema of ours."""
    return ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in arrow)


def _spark_type(arrow_type) -> str:
    try:
        return _SPARK_TYPES[str(arrow_type)]
    except KeyError:
        raise TypeError(f"no Spark type for the Arrow type {arrow_type}") from None


def has_delta(spark) -> bool:
    """Whether ``spark`` can load Delta tables: a read of a missing path fails for another reason when it can."""
    try:
        spark.read.format("delta").load(str(Path(tempfile.gettempdir()) / "mlfleet-no-such-table")).limit(0).collect()
    except Exception as exc:
        return "DATA_SOURCE_NOT_FOUND" not in str(exc)
    return True


class SparkResults:
    """A table of ``spec`` rows written through the driver's SparkSession (the results protocol).

    The table is a catalog table (``catalog.schema.table``) or, with ``at_path``, a folder on a
    Databricks mount addressed by its path. Ray workers hold no SparkSession, so on this path
    the driver writes every row (``rows_by_driver``); Delta's transactions are not readable
    here, so sweeps on it cannot be resumed (``resumable``).
    """

    is_local = False

    def __init__(
        self,
        given: str,
        spec: TableSpec,
        spark: Any = None,
        *,
        fmt: str | None = None,
        what: str = "",
        at_path: bool = False,
    ) -> None:
        self.given = self.name = given
        self.spec = spec
        self.what = what or f"results={given}"
        self._spark = spark
        self.format = fmt or FORMAT
        self.at_path = at_path
        self.place = place(given)
        self.uri = spark_path(given) if at_path else given

    def sibling(self, spec: TableSpec, *, what: str = "") -> SparkResults:
        """The table of ``spec`` beside this one (the same catalog and schema, or folder); ``what`` names it."""
        location = self.place.sibling(spec.name).given
        return SparkResults(location, spec, self._spark, fmt=self.format, what=f"{what} {location}" if what else "",
                            at_path=self.at_path)  # fmt: skip

    def missing_text(self) -> str:
        return "no such Spark table"

    def __repr__(self) -> str:
        return f"SparkResults({self.uri!r}, {self.spec.name})"

    @property
    def spark(self):
        if self._spark is None:
            self._spark = session(self.what)
        return self._spark

    @property
    def quoted(self) -> str:
        """The table in SQL: `catalog`.`schema`.`table`, or format.`path` for a table at a path."""
        if self.at_path:
            return f"{self.format}.`{self.uri}`"
        return ".".join(f"`{part}`" for part in self.name.split("."))

    def _frame(self):
        return self.spark.read.format(self.format).load(self.uri) if self.at_path else self.spark.table(self.name)

    def exists(self) -> bool:
        if not self.at_path:
            return self.spark.catalog.tableExists(self.name)
        folder = fuse_path(self.given)
        if self.format == "delta":
            return (folder / "_delta_log").is_dir()
        return folder.is_dir() and any(folder.glob("*.parquet"))

    def provider(self) -> str:
        """The table's format (``delta``, ``parquet``, ...), lower case."""
        if self.at_path:
            return self.format if self.exists() else ""
        for row in self.spark.sql(f"DESCRIBE TABLE EXTENDED {self.quoted}").collect():
            if row[0] == "Provider":
                return str(row[1]).strip().lower()
        return ""

    def check_writable(self) -> None:
        """Raise MlfleetError unless rows can go to this table; writes nothing.

        The format must load (Delta missing is the common case off Databricks), the schema
        must exist, and a table already there must be ours, in the format we write.
        """
        if self.format == "delta" and not has_delta(self.spark):
            raise MlfleetError(
                f"{self.what}: this Spark has no Delta Lake (data source 'delta' not found); run on Databricks or "
                "start Spark with delta-spark (spark.jars.packages io.delta:delta-spark_2.13, spark.sql.extensions "
                "io.delta.sql.DeltaSparkSessionExtension), or pass a folder or an s3:// URI"
            )
        if self.at_path:
            self._check_folder()
            self.missing_columns()
            return
        namespace = self.name.rsplit(".", 1)[0]
        if not self.spark.catalog.databaseExists(namespace):
            raise MlfleetError(
                f"{self.what}: the schema {namespace} does not exist; create it (CREATE SCHEMA {namespace}) "
                "or name another table"
            )
        self.missing_columns()

    def _check_folder(self) -> None:
        folder = fuse_path(self.given)
        if folder.exists() and not folder.is_dir():
            raise MlfleetError(f"{self.what} is a file, not a table folder; choose a folder path for the Delta table")
        if folder.is_dir() and not self.exists() and any(folder.iterdir()):
            raise MlfleetError(
                f"{self.what} is a folder that holds other files but no {self.format} table; "
                "choose an empty or new folder"
            )

    def missing_columns(self) -> list[str]:
        """The columns of the spec the table lacks (``[]`` when there is no table); MlfleetError when it is not ours."""
        if not self.exists():
            return []
        provider = self.provider()
        if provider and provider != self.format:
            raise MlfleetError(
                f"{self.what} is a {provider} table; mlfleet writes {self.format} tables: name a new table or a "
                f"{self.format} one"
            )
        current = {f.name: f.dataType.simpleString().upper() for f in self._frame().schema.fields}
        wanted = {f.name: _spark_type(f.type) for f in self.spec.schema()}
        clashes = [
            f"{n} ({current[n]} where mlfleet writes {t})"
            for n, t in wanted.items()
            if n in current and current[n] != t
        ]
        if clashes:
            raise MlfleetError(f"{self.what} is a table whose columns {', '.join(clashes)} differ; name another table")
        missing = [n for n in wanted if n not in current]
        named_ours = self.name.rstrip("/").rsplit("/" if self.at_path else ".", 1)[-1] == self.spec.name
        if missing and not (named_ours or len(missing) <= len(wanted) // 4):
            shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            raise MlfleetError(f"{self.what} is a table without the columns {shown}; name another table")
        return missing

    def ensure(self) -> list[str]:
        """Create the table if it does not exist; add the columns a table of ours lacks. Returns those added."""
        arrow = self.spec.schema()
        self.check_writable()
        if not self.at_path:
            self.spark.sql(f"CREATE TABLE IF NOT EXISTS {self.quoted} ({ddl(arrow)}) USING {self.format}")
        elif not self.exists():  # a table at a path is created by its first write, here one of no rows
            self.spark.createDataFrame([], ddl(arrow)).write.format(self.format).mode("append").save(self.uri)
        missing = self.missing_columns()
        if missing:
            added = ddl([arrow.field(n) for n in missing])
            self.spark.sql(f"ALTER TABLE {self.quoted} ADD COLUMNS ({added})")
        return missing

    def append(self, rows, app_id: str = "", *, version: int = 1) -> bool:
        """Append ``rows`` in one write carrying Delta's ``txnAppId``/``txnVersion``.

        Delta skips a write whose transaction version it has committed, so a repeated append
        leaves one copy. Replacing rows (a later version) is the delta-rs path's MERGE; here
        it is refused. Returns True (Spark does not say whether Delta skipped).
        """
        if version != 1:
            raise MlfleetError(
                f"{self.what}: replacing rows (resume) needs a results folder or URI; the Spark path only appends"
            )
        arrow = self.spec.schema()
        app_id = app_id or self.spec.app_id(rows[0])
        frame = self.spark.createDataFrame(
            [tuple(row.get(n) for n in arrow.names) for row in records(rows)], ddl(arrow)
        )
        writer = frame.write.format(self.format).mode("append")  # by column name, into the table's own order
        if self.format == "delta":
            writer = writer.option("txnAppId", app_id).option("txnVersion", version)
        if self.at_path:
            writer.save(self.uri)
        else:
            writer.saveAsTable(self.name)
        return True

    def commit_each(self, rows, versions) -> list[Exception | None]:
        """Each row in a write of its own; the error of each row that could not be written (None when written)."""
        errors: list[Exception | None] = []
        for row, version in zip(rows, versions, strict=True):
            try:
                self.append([row], version=version)
                errors.append(None)
            except Exception as exc:
                errors.append(exc)
        return errors

    def commit_batch(self, rows, versions) -> int:
        """Each row in a write of its own at its version (one Spark write carries one transaction)."""
        for row, version in zip(rows, versions, strict=True):
            self.append([row], version=version)
        return len(rows)

    def read(self, **equal: Any):
        """The table as a pandas DataFrame, rows where each column of ``equal`` has its value; timestamps in UTC."""
        frame = self._frame()
        for column, value in equal.items():
            frame = frame.where(frame[column] == value)
        return to_pandas(frame, self.spark)

    def compact(self) -> str:
        """Nothing: Spark's Delta compacts where it is configured to (Databricks' auto-compaction)."""
        return ""

    def check_takes(self, command: str) -> None:
        """Raise MlfleetError for a command other than the fleet's and analyze's: only they write through Spark."""
        if command in ("train_cpu", "train_gpu", "analyze"):
            return
        noun = "a Databricks mount written through Spark" if self.at_path else "a Spark table"
        raise MlfleetError(
            f"{self.what} names {noun}, which {command} does not write (train_cpu, train_gpu and analyze do); "
            "pass a folder or an s3://, abfss://, gs:// URI"
        )

    def check_resumable(self, sweep_id: str) -> None:
        raise MlfleetError(
            f"resume={sweep_id}: resuming reads the table's Delta transactions through delta-rs, which a Spark table "
            f"({self.name}) does not offer; start a new sweep, or use a results folder or URI for sweeps you may resume"
        )

    def snapshot(self, **equal: Any):
        self.check_resumable("")


def to_pandas(frame, spark):
    """``frame.toPandas()`` with timestamps as UTC (Spark gives them naive, in the session's time zone)."""
    import pandas as pd

    out = frame.toPandas()
    zone = spark.conf.get("spark.sql.session.timeZone")
    for column, kind in frame.dtypes:
        if kind == "timestamp" and column in out:
            out[column] = pd.to_datetime(out[column]).dt.tz_localize(zone).dt.tz_convert("UTC")
    return out


def read_data(name: str):
    """A Spark table as a pandas DataFrame (``data=catalog.schema.table``)."""
    spark = session(f"data={name}")
    if not spark.catalog.tableExists(name):
        raise MlfleetError(
            f"data={name}: no such Spark table; check the name (catalog.schema.table) or pass a file path"
        )
    return to_pandas(spark.table(name), spark)
