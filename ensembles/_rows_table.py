"""The ``ensemble_results`` Delta table: one row per member, one for the ensemble, one for the single model.

The key is ``(ensemble_id, kind, member)``; ``kind`` is ``member``, ``ensemble`` or
``single`` and ``member`` is the member's index (-1 for the other two). The metric columns
have the names and meanings of the fleet's ``model_training_results`` table, so one
analysis reads both. An ensemble's rows go in one commit carrying a Delta application
transaction per row, ``ensembles/<ensemble_id>/<kind>/<member>``; rows whose transaction is
already committed are skipped, so writing them again leaves one copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from mlfleet import results
from mlfleet.results import resolve_location, resolve_storage_options

KINDS = ("member", "ensemble", "single")
TABLE_NAME = "ensemble_results"


@dataclass(frozen=True)
class EnsembleRow:
    """A member, the ensemble or the single all-data model of one ensemble run."""

    ensemble_id: str
    kind: str
    member: int
    family: str
    model_type: str
    task: str
    partitioning: str  # random | stratified | by_column
    shard: str  # "stratified 2/4", "segment='online'", "all training rows", "vote of 4 members"
    shard_rows: int  # training rows the model learnt from (the ensemble: its members' together)
    class_counts_json: str  # {"no": 120, "yes": 118} of those rows; "{}" for regression
    voting: str  # the ensemble's: soft | hard | mean
    weight: float | None  # a member's weight in the vote
    n_members: int | None  # members in the vote (the ensemble's row)
    params_json: str
    primary_metric: str
    score: float | None  # test score on primary_metric
    val_score: float | None  # validation score on primary_metric (what weights=validation uses)
    accuracy: float | None
    f1: float | None
    roc_auc: float | None
    log_loss: float | None
    rmse: float | None
    mae: float | None
    r2: float | None
    n_trials: int
    train_s: float | None  # seconds of fitting (the ensemble: its members' together)
    wall_s: float | None  # wall time of the training wave (the ensemble: members in parallel)
    cpu_s: float | None  # CPU seconds of fitting
    cpus: float
    status: str
    error: str
    mlflow_run_id: str
    parent_run_id: str
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


def schema():
    """The table's Arrow schema, in the column order of :class:`EnsembleRow`."""
    return results.arrow_schema(EnsembleRow)


def ensure_table(uri: str, storage_options: dict[str, str] | None = None) -> None:
    """Create the table if it does not exist; raise MlfleetError for one that lacks our columns."""
    check_columns(uri, storage_options)
    results.ensure_table(uri, storage_options, arrow=schema(), name=TABLE_NAME)


def check_columns(uri: str, storage_options: dict[str, str] | None = None) -> None:
    """Raise MlfleetError when ``uri`` is an existing Delta table that is not an ensemble table; write nothing.

    A location that holds no table yet passes, and so does an ensemble table written by an
    earlier schema: :func:`ensure_table` creates the one and evolves the other.
    """
    results.check_table(uri, storage_options, arrow=schema(), name=TABLE_NAME)


def transaction_id(row: EnsembleRow) -> str:
    return f"ensembles/{row.ensemble_id}/{row.kind}/{row.member}"


def append_rows(uri: str, rows: list[EnsembleRow], storage_options: dict[str, str] | None = None) -> int:
    """Append the ``rows`` not committed before, in one commit; return how many were written."""
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

    table = DeltaTable(resolve_location(uri), storage_options=resolve_storage_options(storage_options))
    new = [row for row in rows if table.transaction_version(transaction_id(row)) is None]
    if not new:
        return 0
    write_deltalake(
        table,
        pa.Table.from_pylist([asdict(row) for row in new], schema=schema()),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id=transaction_id(r), version=1) for r in new]),
    )
    return len(new)


def read_rows(uri: str, ensemble_id: str | None = None, storage_options: dict[str, str] | None = None):
    """The table as a pandas DataFrame, optionally of one ensemble."""
    from deltalake import DeltaTable

    frame = DeltaTable(resolve_location(uri), storage_options=resolve_storage_options(storage_options)).to_pandas()
    if ensemble_id is not None:
        frame = frame[frame["ensemble_id"] == ensemble_id].reset_index(drop=True)
    return frame


def rows_to_frame(rows: list[EnsembleRow]):
    """Rows as a DataFrame with the table's columns (for the parent run's CSV)."""
    import pandas as pd

    return pd.DataFrame([asdict(r) for r in rows], columns=schema().names)
