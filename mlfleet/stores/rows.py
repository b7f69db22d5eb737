"""Row schemas: the dataclasses a results table holds, their Arrow schemas, keys and transaction ids.

A table is described once by a :class:`TableSpec` (its name, row type and key); the
backends (:mod:`mlfleet.stores.delta`, :mod:`mlfleet.stores.spark`) write and read any of
them, and every row's append carries a Delta application transaction named after its key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from mlfleet.metrics import task_metrics
from mlfleet.redaction import redact

#: the status of a model a time budget ended before its first trial (neither FINISHED nor FAILED)
SKIPPED = "SKIPPED"
CLASSIFICATION_METRICS = task_metrics("classification")
REGRESSION_METRICS = task_metrics("regression")


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
    #: the primary metric on the validation split at tuning time: what every choice ranks by
    val_score: float | None = None
    #: the original class labels in code order, as JSON (what the logged model predicts); "" for regression
    classes_json: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    @property
    def skipped(self) -> bool:
        """Not trained, by design: a time budget ended before the model's first trial."""
        return self.status == SKIPPED

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json or "{}")


@dataclass(frozen=True)
class TableSpec:
    """A kind of table: its default name, row type and key; ``prefix`` names its transactions.

    The transaction of a row is ``<prefix>/<key values joined by />`` (``mlfleet/<sweep>/<model>``
    for the results table), so a retried or repeated write of a row is recognised.
    """

    name: str
    row_type: type
    key: tuple[str, ...]
    prefix: str = "mlfleet"

    def schema(self):
        return arrow_schema(self.row_type)

    def app_id(self, row: Any) -> str:
        return "/".join([self.prefix, *(str(getattr(row, k)) for k in self.key)])


RESULTS = TableSpec("model_training_results", ResultRow, ("sweep_id", "model_id"))


def transaction_id(sweep_id: str, model_id: int) -> str:
    """The Delta transaction of a results row (its generation is the transaction's version)."""
    return f"{RESULTS.prefix}/{sweep_id}/{model_id}"


def arrow_schema(row_type: type) -> Any:
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


def schema():
    """The results table's Arrow schema, in the column order of :class:`ResultRow`."""
    return RESULTS.schema()


def row_from_record(record: dict[str, Any], row_type: type = ResultRow) -> Any:
    """A row dataclass from a record read back from a table (NaN and NaT as None)."""
    values = {}
    for f in fields(row_type):
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
    return row_type(**values)


def rows_to_frame(rows: list, row_type: type = ResultRow):
    """Rows as a DataFrame with the table's columns (for a run's CSV and the summaries), text redacted."""
    import pandas as pd

    return pd.DataFrame(records(rows), columns=arrow_schema(row_type).names)


def records(rows: list) -> list[dict[str, Any]]:
    """Rows as dicts, every text value through :func:`~mlfleet.redaction.redact`: what any table or file gets.

    A row's ``error`` can repeat a request URL with a password in it (MLflow's own errors
    do), and a dataset's name a signed query string.
    """
    return [{k: redact(v) if isinstance(v, str) else v for k, v in asdict(r).items()} for r in rows]
