"""The Delta side: one row per model and sweep, appended idempotently through delta-rs.

The row's key is ``(sweep_id, model_id)``. Each append carries a Delta application
transaction ``mlfleet/<sweep_id>/<model_id>`` whose version is the row's generation; a
writer that finds that generation committed skips, so a retried append never duplicates a
row, and a model trained again on resume replaces its earlier row in one MERGE commit.
A table written by an earlier schema is evolved (columns added), never rewritten.

A table is a local folder, an object-store URI (``s3://``, ``abfss://``, ``gs://``), or a Spark
catalog table (``catalog.schema.table``), written through the driver's SparkSession
(:mod:`mlfleet.spark`). delta-rs
reads the credentials of an object store from each process's environment (``AWS_*``,
``AZURE_*``, ``GOOGLE_*``); ``MLFLEET_STORAGE_OPTIONS`` adds explicit delta-rs storage options
(JSON or ``key=value,...``). They hold secrets, so they are never logged anywhere.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from mlfleet.errors import MlfleetError, first_line

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
TABLE_NAME = "model_training_results"
#: how often a commit that lost a race to another writer is tried again
COMMIT_ATTEMPTS = 8


@dataclass(frozen=True)
class ResultRow:
    """What one model of one sweep came to; mirrors its MLflow run (``mlflow_run_id``)."""

    sweep_id: str
    model_id: int
    model_type: str
    family: str
    device: str
    feature_strategy: str
    n_features: int | None
    task: str
    params_json: str
    primary_metric: str
    score: float | None
    accuracy: float | None
    f1: float | None
    roc_auc: float | None
    log_loss: float | None
    rmse: float | None
    mae: float | None
    r2: float | None
    n_trials: int
    tuning_s: float | None
    train_s: float | None
    cpus: float
    gpus: float
    status: str
    error: str
    mlflow_run_id: str
    model_uri: str
    experiment_id: str
    dataset: str
    dataset_digest: str
    started_at: datetime
    finished_at: datetime
    node: str
    entry_point: str

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json or "{}")


def schema():
    """The results table's Arrow schema, in the column order of :class:`ResultRow`."""
    return arrow_schema(ResultRow)


def arrow_schema(row_type) -> Any:
    """The Arrow schema of a row dataclass: ``int``/``float``/``str``/``datetime`` fields, optional or not."""
    import pyarrow as pa

    types = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "datetime": pa.timestamp("us", tz="UTC")}
    columns = []
    for f in fields(row_type):
        base = str(f.type).split("|")[0].strip()
        if base not in types:
            raise TypeError(f"{row_type.__name__}.{f.name}: no Arrow type for {f.type!r}")
        columns.append(pa.field(f.name, types[base]))
    return pa.schema(columns)


#: explicit delta-rs storage options for every table mlfleet reads or writes: JSON or key=value,...
STORAGE_OPTIONS_ENV = "MLFLEET_STORAGE_OPTIONS"
#: URI schemes of the object stores delta-rs writes to
OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "azure", "adl")


def is_local(uri: str) -> bool:
    return ("://" not in uri or uri.startswith("file://")) and not is_spark_table(uri)


def is_spark_table(uri: str) -> bool:
    """Whether ``uri`` names a Spark catalog table (``catalog.schema.table``) rather than a location."""
    from mlfleet import spark

    return spark.is_table_name(uri)


def check_not_spark(uri: str, entry_point: str) -> None:
    """Raise MlfleetError when ``uri`` names a Spark table: ``entry_point`` writes through delta-rs only."""
    if is_spark_table(uri):
        raise MlfleetError(
            f"results={uri} names a Spark table, which {entry_point} does not write (train_cpu, train_gpu and analyze do); "
            "pass a folder or an s3://, abfss://, gs:// URI"
        )


def _spark_table(uri: str):
    from mlfleet import spark

    return spark.Table(uri)


def parse_storage_options(text: str) -> dict[str, str]:
    """delta-rs storage options from ``{"key": "value"}`` or ``key=value,key=value``.

    Raises MlfleetError for text of neither form; the message never shows a value (they are
    credentials).
    """
    text = text.strip()
    if not text:
        return {}
    if text.startswith(("{", "[", '"')):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MlfleetError(f"{STORAGE_OPTIONS_ENV} is not valid JSON (at character {exc.pos}); use a JSON object or key=value,...") from None
        if not isinstance(parsed, dict):
            raise MlfleetError(f"{STORAGE_OPTIONS_ENV} must be a JSON object or key=value,..., but got a JSON {type(parsed).__name__}")
        return {str(k): json.dumps(v) if isinstance(v, bool) else str(v) for k, v in parsed.items()}
    options = {}
    for number, part in enumerate(text.split(","), start=1):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise MlfleetError(
                f"{STORAGE_OPTIONS_ENV} must be key=value,... or a JSON object, but item {number} is not key=value (values are not shown)"
            )
        options[key.strip()] = value.strip()
    return options


def resolve_storage_options(given: dict[str, str] | None = None) -> dict[str, str] | None:
    """``given``, else the options in ``MLFLEET_STORAGE_OPTIONS``, else None (delta-rs then reads its environment)."""
    if given is not None:
        return given
    return parse_storage_options(os.environ.get(STORAGE_OPTIONS_ENV, "")) or None


def resolve_location(uri: str) -> str:
    """An absolute path for a local table (workers may run elsewhere), other URIs unchanged."""
    return str(Path(uri.removeprefix("file://")).resolve()) if is_local(uri) else uri


def check_writable(uri: str, *, arrow: Any = None, name: str = TABLE_NAME) -> None:
    """Raise MlfleetError unless a Delta table can be written at ``uri``; writes nothing lasting.

    A Spark table needs a SparkSession with Delta and, if it exists, to be ours. A local location must be an existing Delta table, an empty or new folder under a
    folder this process can write to. An object-store URI must have a known scheme and answer
    (with the storage options in force); whether it takes writes shows at the first write.
    """
    resolve_storage_options()  # a malformed MLFLEET_STORAGE_OPTIONS stops here, before anything is written
    if is_spark_table(uri):
        _spark_table(uri).check_writable(arrow if arrow is not None else schema(), name)
        return
    if not is_local(uri):
        check_reachable(uri)
        return
    path = Path(resolve_location(uri))
    if path.exists() and not path.is_dir():
        raise MlfleetError(f"results={uri} is a file, not a table folder; choose a folder path for the Delta table")
    if path.is_dir() and any(path.iterdir()) and not (path / "_delta_log").is_dir():
        raise MlfleetError(f"results={uri} is a folder that holds other files but no Delta table; choose an empty or new folder")
    try:
        probe_write(path)
    except OSError as exc:
        raise MlfleetError(f"results={uri} cannot be written ({first_line(exc)}); choose a location you can write to") from None


def check_reachable(uri: str, storage_options: dict[str, str] | None = None) -> None:
    """Raise MlfleetError unless ``uri`` is an object-store URI delta-rs can look into; writes nothing."""
    from deltalake import DeltaTable

    scheme = uri.split("://", 1)[0].lower()
    if scheme not in OBJECT_STORE_SCHEMES:
        raise MlfleetError(f"results={uri} has the unknown scheme {scheme}://; use a folder or an s3://, abfss:// or gs:// URI")
    try:
        DeltaTable.is_deltatable(uri, resolve_storage_options(storage_options))
    except Exception as exc:
        raise MlfleetError(
            f"results={uri} cannot be reached ({first_line(exc)}); check the URI and the storage options "
            f"(AWS_*, AZURE_*, GOOGLE_* variables or {STORAGE_OPTIONS_ENV})"
        ) from None


def probe_write(path: Path) -> None:
    """Raise OSError unless a folder could be created at ``path``; leaves nothing behind.

    Tries a temporary file in the nearest existing ancestor (as root, permission bits alone
    say little, so this writes for real).
    """
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(f"{ancestor} is a file")
    with tempfile.TemporaryFile(dir=ancestor):
        pass


def ensure_table(uri: str, storage_options: dict[str, str] | None = None, *, arrow: Any = None, name: str = TABLE_NAME) -> list[str]:
    """Create the table (by default the results table) if it does not exist; evolve one of ours.

    A table this kind of command wrote with an earlier schema (a column or a few fewer) gets
    the missing columns added, as nullable columns, in one ``ADD COLUMNS`` commit: nothing is
    rewritten and its rows read the new columns as null. Returns the names of the columns
    added (empty when none). Raises MlfleetError for a table that is not ours.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    arrow = arrow if arrow is not None else schema()
    if is_spark_table(uri):
        return _spark_table(uri).ensure(arrow, name)
    storage_options = resolve_storage_options(storage_options)
    location = resolve_location(uri)
    if not DeltaTable.is_deltatable(location, storage_options):
        if is_local(location):
            Path(location).mkdir(parents=True, exist_ok=True)
        try:
            DeltaTable.create(location, arrow, mode="ignore", name=name, storage_options=storage_options)
        except DeltaError:
            if not DeltaTable.is_deltatable(location, storage_options):  # another sweep may have won the race
                raise
    from deltalake import Field

    problem = ""
    for _ in range(COMMIT_ATTEMPTS):
        missing = check_table(uri, storage_options, arrow=arrow, name=name)
        if not missing:
            return []
        table = DeltaTable(location, storage_options=storage_options)
        try:
            table.alter.add_columns([Field.from_arrow(arrow.field(column)) for column in missing])
            return missing
        except Exception as exc:  # a concurrent sweep evolved it first (or committed): look again
            problem = first_line(exc)
    raise MlfleetError(f"results={uri}: the columns {', '.join(missing)} could not be added ({problem}); run again")


def check_table(uri: str, storage_options: dict[str, str] | None = None, *, arrow: Any = None, name: str = TABLE_NAME) -> list[str]:
    """The columns ``arrow`` has that the table at ``uri`` lacks; writes nothing.

    Raises MlfleetError when the table is not one of ours (another name and most of our
    columns missing) or holds one of our columns with another type. No table yet: ``[]``.
    """
    from deltalake import DeltaTable, Schema

    arrow = arrow if arrow is not None else schema()
    if is_spark_table(uri):
        return _spark_table(uri).missing_columns(arrow, name)
    location = resolve_location(uri)
    if is_local(location) and not Path(location).is_dir():
        return []
    storage_options = resolve_storage_options(storage_options)
    if not DeltaTable.is_deltatable(location, storage_options):
        return []
    table = DeltaTable(location, storage_options=storage_options)
    current = {f.name: f.type for f in table.schema().fields}
    wanted = Schema.from_arrow(arrow).fields
    clashes = [
        f"{f.name} ({_type_name(current[f.name])} where mlfleet writes {_type_name(f.type)})"
        for f in wanted
        if f.name in current and current[f.name] != f.type
    ]
    if clashes:
        raise MlfleetError(f"results={uri} is a Delta table whose columns {', '.join(clashes)} differ; use another location")
    missing = [f.name for f in wanted if f.name not in current]
    ours = table.metadata().name == name or len(missing) <= len(wanted) // 4
    if missing and not ours:
        shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
        raise MlfleetError(f"results={uri} is a Delta table without the columns {shown}; use another location (the default is lakehouse/{name})")
    return missing


def _type_name(delta_type: Any) -> str:
    return str(getattr(delta_type, "type", delta_type))


def transaction_id(sweep_id: str, model_id: int) -> str:
    return f"mlfleet/{sweep_id}/{model_id}"


def append_row(uri: str, row: ResultRow, storage_options: dict[str, str] | None = None, *, attempt: int = 1) -> bool:
    """Write ``row`` as generation ``attempt`` of its ``(sweep_id, model_id)``; at most one row per key.

    The commit carries the Delta transaction ``mlfleet/<sweep>/<model>`` at version
    ``attempt``. A generation already committed is skipped (a retried write never
    duplicates); an earlier one's row (a model that failed, trained again on resume) is
    replaced in one MERGE commit. Returns True when this call wrote the row.
    """
    return append_once(
        uri, [row], schema(), transaction_id(row.sweep_id, row.model_id), storage_options, version=attempt, key=("sweep_id", "model_id")
    )


def append_once(
    uri: str, rows: list, arrow: Any, app_id: str, storage_options: dict[str, str] | None = None, *, version: int = 1, key: tuple[str, ...] = ()
) -> bool:
    """Write dataclass ``rows`` in one commit carrying the transaction ``app_id`` at ``version``.

    Skipped when that version (or a later one) is committed. With none committed, a blind
    append (writers of other transactions never conflict with it); with an earlier version
    committed, a MERGE on the ``key`` columns replaces its rows. Of two writers racing with
    one ``app_id``, delta-rs refuses the second commit, and it finds the first's on its next
    look. Returns True when this call wrote the rows.
    """
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
    from deltalake.exceptions import CommitFailedError

    if is_spark_table(uri):
        return _spark_table(uri).append([asdict(r) for r in rows], arrow, app_id, version)
    data = pa.Table.from_pylist([asdict(r) for r in rows], schema=arrow)
    commit = CommitProperties(app_transactions=[Transaction(app_id=app_id, version=version)])
    storage_options = resolve_storage_options(storage_options)
    for _ in range(COMMIT_ATTEMPTS):
        table = DeltaTable(resolve_location(uri), storage_options=storage_options)
        committed = table.transaction_version(app_id)
        if committed is not None and committed >= version:
            return False
        try:
            if committed is None:
                write_deltalake(table, data, mode="append", schema_mode="merge", commit_properties=commit)
            else:
                predicate = " AND ".join(f"t.{column} = s.{column}" for column in key)
                merge = table.merge(data, predicate=predicate, source_alias="s", target_alias="t", commit_properties=commit)
                merge.when_matched_update_all().when_not_matched_insert_all().execute()
            return True
        except CommitFailedError:  # another writer committed first (maybe this very transaction): look again
            continue
    raise MlfleetError(f"results={uri}: the rows of {app_id} could not be committed (the table kept changing)")


def read_results(uri: str, sweep_id: str | None = None, storage_options: dict[str, str] | None = None):
    """The table's rows as a pandas DataFrame, optionally of one sweep."""
    from deltalake import DeltaTable

    if is_spark_table(uri):
        return _spark_table(uri).read(**({"sweep_id": sweep_id} if sweep_id is not None else {}))
    table = DeltaTable(resolve_location(uri), storage_options=resolve_storage_options(storage_options))
    frame = table.to_pandas()
    if sweep_id is not None:
        frame = frame[frame["sweep_id"] == sweep_id].reset_index(drop=True)
    return frame


def row_from_record(record: dict[str, Any]) -> ResultRow:
    """A :class:`ResultRow` from a row read back from the table (NaN and NaT as None)."""
    values = {}
    for f in fields(ResultRow):
        value = record.get(f.name)
        if value is None or (isinstance(value, float) and value != value) or str(value) == "NaT":
            value = None
        elif str(f.type).startswith("int"):
            value = int(value)
        elif str(f.type).startswith("float"):
            value = float(value)
        elif str(f.type).startswith("datetime"):
            value = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
        values[f.name] = value
    return ResultRow(**values)


def rows_to_frame(rows: list[ResultRow]):
    """Rows as a DataFrame with the table's columns (for the sweep's CSV and summaries)."""
    import pandas as pd

    return pd.DataFrame([asdict(r) for r in rows], columns=schema().names)

