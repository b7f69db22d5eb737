"""The Delta side: one row per model and sweep, appended idempotently through delta-rs.

The row's key is ``(sweep_id, model_id)``. Each append carries a Delta application
transaction ``mlfleet/<sweep_id>/<model_id>``; a writer that finds the transaction already
committed skips, so a retried append never duplicates a row.

A table is a local folder or an object-store URI (``s3://``, ``abfss://``, ``gs://``). delta-rs
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
    return "://" not in uri or uri.startswith("file://")


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


def check_writable(uri: str) -> None:
    """Raise MlfleetError unless a Delta table can be written at ``uri``; writes nothing lasting.

    A local location must be an existing Delta table, an empty or new folder under a
    folder this process can write to. An object-store URI must have a known scheme and answer
    (with the storage options in force); whether it takes writes shows at the first write.
    """
    resolve_storage_options()  # a malformed MLFLEET_STORAGE_OPTIONS stops here, before anything is written
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


def ensure_table(uri: str, storage_options: dict[str, str] | None = None, *, arrow: Any = None, name: str = "model_training_results") -> None:
    """Create the table (by default the results table) if it does not exist; check the columns of one that does."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    arrow = arrow if arrow is not None else schema()
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
    existing = set(DeltaTable(location, storage_options=storage_options).schema().to_arrow().names)
    missing = [column for column in arrow.names if column not in existing]
    if missing:
        raise MlfleetError(f"results={uri} is a Delta table without the columns {', '.join(missing)}; use another location")


def transaction_id(sweep_id: str, model_id: int) -> str:
    return f"mlfleet/{sweep_id}/{model_id}"


def append_row(uri: str, row: ResultRow, storage_options: dict[str, str] | None = None) -> bool:
    """Append ``row`` unless its ``(sweep_id, model_id)`` was committed before.

    Returns True when this call wrote the row, False when it was already there.
    """
    return append_once(uri, [row], schema(), transaction_id(row.sweep_id, row.model_id), storage_options)


def append_once(uri: str, rows: list, arrow: Any, app_id: str, storage_options: dict[str, str] | None = None) -> bool:
    """Append dataclass ``rows`` in one commit carrying the transaction ``app_id``, unless it is committed.

    Returns True when this call wrote them, False when ``app_id`` was already in the table.
    """
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

    table = DeltaTable(resolve_location(uri), storage_options=resolve_storage_options(storage_options))
    if table.transaction_version(app_id) is not None:
        return False
    write_deltalake(
        table,
        pa.Table.from_pylist([asdict(r) for r in rows], schema=arrow),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id=app_id, version=1)]),
    )
    return True


def read_results(uri: str, sweep_id: str | None = None, storage_options: dict[str, str] | None = None):
    """The table's rows as a pandas DataFrame, optionally of one sweep."""
    from deltalake import DeltaTable

    table = DeltaTable(resolve_location(uri), storage_options=resolve_storage_options(storage_options))
    frame = table.to_pandas()
    if sweep_id is not None:
        frame = frame[frame["sweep_id"] == sweep_id].reset_index(drop=True)
    return frame


def rows_to_frame(rows: list[ResultRow]):
    """Rows as a DataFrame with the table's columns (for the sweep's CSV and summaries)."""
    import pandas as pd

    return pd.DataFrame([asdict(r) for r in rows], columns=schema().names)

