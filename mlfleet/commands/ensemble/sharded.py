"""Tables bigger than one machine: the partition ensemble reads each shard where it is trained.

Which tables (:func:`choose`, the ``sharded`` parameter): a Parquet file or folder or a Delta
table, in a folder or on object storage. ``sharded=on`` always; ``auto`` (the default) when
:data:`~mlfleet.data._sources.MEMORY_MULTIPLE` (3) times the table's estimated size in pandas
(:func:`~mlfleet.data.table_bytes`: the footers and one batch of its text columns) is more than
the memory available (``MLFLEET_MEMORY_BYTES``, else the machine's): exactly the tables the
driver's own read would refuse; ``off`` never. A local CSV that big is refused with the command
that converts it to Parquet without loading it (:func:`~mlfleet.data.check_csv_size`).

What each process reads (:mod:`mlfleet.data._parts` plans and reads, every byte counted):

- the driver: metadata only: the footers (``plan_parts``; a Delta table's log) and one batch of
  the text columns (the size estimate). It reads no row of the table, and holds none;
- one holdout task (:func:`decide`, run from the command's ``check``, with Ray up and before
  anything is written): the validation rows (``read_holdout(plan, "val")``, one pass over the
  table in batches), on which the task, the classes and the column plan are decided, once, for
  every model. It returns those decisions and what it read (:class:`Decided`), no row; its bad
  input (too few validation rows, one class, no usable column) stops the command in one line;
- member ``i``'s task: its shard, ``read_part(plan, i)``: its share of the row groups, or with
  ``partition_by`` the rows whose value of that column hashes to ``i`` (``partitions`` shards);
- the single model's task: a sample of the training rows stratified by class (``read_sample``,
  ``single_rows`` of them, by default as many as one member's shard): so it fits a worker as a
  member does, and the verdict says it learnt from a sample;
- one scoring task, once the members are fitted: the validation and test rows, left in Ray's
  object store for the tasks that score and log the members, the single model and the vote, and
  for the registry's gate. The driver never holds them. It reads the validation rows again
  rather than take them from the holdout task: kept from the start, they would sit in the
  object store through the members' training, the wave whose memory the table's size bounds.

Limits, said out loud: the column roles (an identifier, a constant, levels) come from the
validation rows, not the training rows; a class the validation rows do not have is unknown to
every model, and a training or test row of it is left out (counted on the member's run as
``rows_of_unknown_class``, and in the log); a member whose shard lacks a class fails in one line,
the others still vote. Row-group shards are as mixed as the row groups are: a table written
sorted by its target gives members few classes, and ``partition_by`` on a column such as an id
spreads the rows over the shards by hash instead.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mlfleet.commands.ensemble.partition import MIN_SHARD_ROWS, Shard, class_counts
from mlfleet.config import DataConfig, EnsembleConfig
from mlfleet.data import (
    BUILTINS,
    ColumnPlan,
    Dataset,
    PartPlan,
    Reader,
    Split,
    check_csv_size,
    csv_conversion,
    plan_columns,
    plan_parts,
    read_holdout,
    read_part,
    read_sample,
    split_key,
    table_bytes,
)
from mlfleet.data._dataset import dataset_of, model_rows, target_column
from mlfleet.data._sources import MEMORY_MULTIPLE, _size, available_memory
from mlfleet.data._split import MIN_ROWS
from mlfleet.errors import MlfleetError
from mlfleet.execution import tasks
from mlfleet.locations import SPARK_TABLE, place
from mlfleet.redaction import redact

log = logging.getLogger("mlfleet.ensembles")

#: the rows of a shard's split that stand in for its test rows: ``worker.fit`` scores on them,
#: and that score is not kept (members are scored on the real test rows when they are logged)
STAND_IN_ROWS = 5


@dataclass(frozen=True)
class Sharded:
    """What every task needs to read its rows and make them a model's: small, and the same for all."""

    plan: PartPlan
    target: str  # as the user gave it: a column, or a rule such as quality>=6
    task: str
    classes: tuple
    columns: ColumnPlan  # the roles, decided on the validation rows
    key: str  # the split's key (seed and sizes)
    sample_rows: int  # the single model's training rows
    min_class_rows: int = 1  # rows of every class a member needs (2 when it tunes)

    @property
    def read(self) -> list[str]:
        """The columns a task keeps for its models: the features they use and the target's column."""
        return list(dict.fromkeys([*self.columns.used, target_column(self.target)]))

    @property
    def training_rows(self) -> int:
        """About how many training rows the table has (from its metadata)."""
        plan = self.plan
        return int((plan.total_rows - max(plan.missing_target, 0)) * (1 - plan.test_size - plan.val_size))


@dataclass(frozen=True)
class Facts:
    """What a task read of the table and kept for its model (or for scoring)."""

    rows: int  # rows kept
    class_counts: dict[str, int]  # of those rows, by label ({} for regression)
    unknown: int  # rows of a class the validation rows do not have, left out
    digest: str  # the rows kept, in any order: equal for the same rows read from Parquet or Delta
    bytes_read: int
    rows_read: int


@dataclass(frozen=True)
class Decided:
    """What the holdout task decided on the validation rows, and what it read: small, no row of the table."""

    dataset: Dataset  # no rows: the name, the target, the task and classes, the features' columns and types
    columns: ColumnPlan  # the roles, decided on the validation rows
    target: str  # as the user gave it, else the plan's default
    rows_kept: int  # the validation rows
    bytes_read: int
    requests: int
    rows_read: int  # rows decoded (the validation pass decodes every row, in batches)


@dataclass(frozen=True)
class PlanReads:
    """What deciding on a sharded table read: the driver's own reads (metadata: the footers, one batch of the text
    columns) counted by its :class:`~mlfleet.data.Reader`, and the holdout task's pass for the validation rows."""

    bytes_read: int
    requests: int
    rows_read: int
    table_bytes: int  # the table's estimated size in pandas
    file_bytes: int  # the table's files on disk
    holdout_bytes_read: int
    holdout_requests: int
    holdout_rows_read: int
    holdout_rows_kept: int  # the validation rows

    def figures(self) -> dict[str, float]:
        """The parent run's metrics: ``driver_*`` for the driver's reads, ``holdout_*`` for the task's."""
        plain = ("table_bytes", "file_bytes")
        return {k if k in plain or k.startswith("holdout_") else f"driver_{k}": float(v) for k, v in vars(self).items()}


def choose(config: EnsembleConfig, reader: Reader) -> PartPlan | None:
    """The plan of a table the ensemble reads on its workers (see the module's docstring), or None: the driver reads it.

    Raises MlfleetError for ``sharded=on`` on data that is no Parquet or Delta table (or that
    cannot be planned), and for a local CSV too big for the driver (with the command that converts it).
    """
    data = config.data
    if config.sharded == "off":
        return None
    if not _is_table(data.source):
        if config.sharded == "on":
            lowered = data.source.lower()
            how = f"; convert it first: {csv_conversion(data.source)[0]}" if lowered.endswith(".csv") else ""
            raise MlfleetError(
                f"sharded=on reads a Parquet file or folder or a Delta table on the workers, but got "
                f"data={redact(data.source)}{how}"
            )
        if _is_local_csv(data.source):
            available = available_memory()
            check_csv_size(data.source, available // MEMORY_MULTIPLE if available else 0)
        return None
    try:
        plan = _plan(config, reader)
    except MlfleetError:
        if config.sharded == "on":
            raise
        return None  # the driver's own read says what is wrong with it, as for any table
    if config.sharded == "on":
        return plan
    available, size = available_memory(), table_bytes(plan, reader=reader)
    if not available or MEMORY_MULTIPLE * size <= available:
        return None
    log.info(
        f"data={redact(data.source)} takes about {_size(size)} in memory, and {MEMORY_MULTIPLE}x that is more than the "
        f"{_size(available)} available: its shards are read on the workers (sharded=auto; sharded=off reads it here)"
    )
    return plan


def _plan(config: EnsembleConfig, reader: Reader) -> PartPlan:
    data = config.data
    return plan_parts(
        data.source,
        target=target_column(data.target),
        partitions=config.partitions,
        partition_by=config.partition_by,
        test_size=data.test_size,
        val_size=data.val_size,
        seed=data.seed,
        reader=reader,
    )


def _is_table(source: str) -> bool:
    """Whether ``source`` may be a Parquet or Delta table: not a built-in name, a Spark table or a CSV."""
    csv = source.split("?", 1)[0].lower().endswith(".csv")
    return not (source in BUILTINS or place(source).kind == SPARK_TABLE or csv)


def _is_local_csv(source: str) -> bool:
    return source.lower().endswith(".csv") and not place(source).is_remote


def prepare(
    config: EnsembleConfig, plan: PartPlan, reader: Reader
) -> tuple[Dataset, Split, Sharded, tuple[Shard, ...], PlanReads]:
    """What every model is given, decided on the validation rows by one Ray task (:func:`decide`; Ray is up): the
    dataset (no rows), a split that holds none but knows the task, classes, column plan and key, what the tasks
    read, the members' shards (labels only: their rows are the members' to read), and what was read.

    The driver reads metadata only (through ``reader``: the footers, one batch of the text columns for the size
    estimate) and gets back the task's decisions and counters, never a row. Raises MlfleetError for what
    :func:`decide` raises; writes nothing.
    """
    data = config.data
    decided = _decided(data, plan)
    held, columns = decided.dataset, decided.columns
    size = table_bytes(plan, reader=reader)
    read = PlanReads(
        reader.bytes_read, reader.requests, reader.rows_read, size, sum(plan.file_bytes), decided.bytes_read,
        decided.requests, decided.rows_read, decided.rows_kept,
    )  # fmt: skip
    key = split_key(test_size=data.test_size, val_size=data.val_size, seed=data.seed)
    none = held.X
    split = Split(none, held.y, 0, none, held.y, held.task, held.n_classes, held.classes, columns, key)
    source = Sharded(
        plan, decided.target, held.task, held.classes, columns, key, sample_rows=0,
        min_class_rows=2 if config.n_trials > 0 else 1,
    )  # fmt: skip
    source = replace(source, sample_rows=config.single_rows or math.ceil(source.training_rows / plan.partitions))
    log.info(
        f"{plan.describe()}; the driver read {_size(read.bytes_read)} of {_size(read.file_bytes)} on disk (metadata); "
        f"a worker read {_size(read.holdout_bytes_read)} for the {read.holdout_rows_kept:,} validation rows and "
        "decided the columns and classes on them"
    )
    return held, split, source, shard_labels(source), read


def _decided(data: DataConfig, plan: PartPlan) -> Decided:
    """:func:`decide` in a Ray task; what it raised (an MlfleetError for bad input) is raised here."""
    (done,) = tasks.gather([tasks.submit(decide, data, plan, name="holdout-rows")])
    if done.error is not None:
        raise done.error
    return done.value


def decide(data: DataConfig, plan: PartPlan) -> Decided:
    """In a Ray task: the validation rows read (``read_holdout(plan, "val")``, one pass over the table in batches)
    and the task, classes and column plan decided on them, once, for every model; returns no row of them.

    Raises MlfleetError for too few validation rows, a target of one class, no usable column and
    what :func:`~mlfleet.data.load_dataset` refuses of the rows.
    """
    reader = _reader(plan)
    val = read_holdout(plan, "val", reader=reader)
    if len(val) < MIN_ROWS:
        raise MlfleetError(
            f"data={redact(data.source)} leaves {len(val)} validation rows and the ensemble decides the columns and "
            f"classes on them, which needs at least {MIN_ROWS}; use more data or a larger val_size"
        )
    target = data.target or plan.target
    held = dataset_of(val, replace(data, target=target), plan.target)
    rows, cells = len(val), val.size
    del val
    columns = plan_columns(held.X, drop=held.drop, y=held.y, classes=held.classes)
    if not columns.used:
        raise MlfleetError(
            f"data={redact(data.source)} has no usable feature columns: "
            + "; ".join(f"{c} is {r} ({columns.reasons.get(c, '')})" for c, r in columns.roles.items())
        )
    dataset = replace(held, X=held.X.iloc[:0][columns.used], y=held.y[:0], digest=plan_digest(plan))
    del held
    tasks.give_back_memory(cells)  # the worker goes on to other tasks: the validation rows' heap goes back
    return Decided(dataset, columns, target, rows, reader.bytes_read, reader.requests, reader.rows_read)


def shard_labels(source: Sharded) -> tuple[Shard, ...]:
    """The members' shards as the driver knows them: an index and a label, no rows (the member reads them)."""
    plan, none = source.plan, np.zeros(0, dtype=np.int64)
    how = f"{plan.partition_by} hash" if plan.partition_by else "row groups"
    return tuple(Shard(i, none, f"{how} {i + 1}/{plan.partitions}") for i in range(plan.partitions))


def plan_digest(plan: PartPlan) -> str:
    """The table's identity from its metadata: files, sizes, row groups, schema, Delta version (no row read)."""
    what = (plan.format, plan.files, plan.file_bytes, plan.row_groups, plan.schema, plan.version, plan.target)
    return hashlib.sha256(repr(what).encode()).hexdigest()[:16]


# -- in the Ray tasks ------------------------------------------------------------------------------------------


def training_split(source: Sharded, index: int) -> tuple[Split, Facts]:
    """The training rows of member ``index`` (``read_part``), or for a negative index the single model's sample
    (``read_sample``), as a split ready for :func:`~mlfleet.training.worker.fit`; and what was read.

    Its test rows are :data:`STAND_IN_ROWS` of its own (the fit's test score is not kept). Raises
    MlfleetError for a shard under :data:`~mlfleet.commands.ensemble.partition.MIN_SHARD_ROWS` rows or
    short of a class.
    """
    reader = _reader(source.plan)
    if index >= 0:
        frame = read_part(source.plan, index, columns=source.read, reader=reader)
    else:
        stratify = source.task == "classification"
        frame = read_sample(source.plan, source.sample_rows, stratify=stratify, columns=source.read, reader=reader)
    X, y, facts = _model_rows(frame, source, reader)
    del frame
    what = f"shard {index + 1}/{source.plan.partitions}" if index >= 0 else "the single model's sample"
    _check_rows(y, source, what)
    split = Split(
        X, y, len(y), X.iloc[:STAND_IN_ROWS], y[:STAND_IN_ROWS], source.task, len(source.classes), source.classes,
        source.columns, source.key,
    )  # fmt: skip
    return split, facts


def scoring_split(source: Sharded) -> tuple[Split, Facts]:
    """The validation and test rows as a split of no training rows (what models are scored and logged with)."""
    reader = _reader(source.plan)
    parts = []
    for which in ("val", "test"):
        X, y, facts = _model_rows(read_holdout(source.plan, which, columns=source.read, reader=reader), source, reader)
        parts.append((X, y, facts))
    (X_val, y_val, val), (X_test, y_test, test) = parts
    if test.unknown:
        log.warning(f"{test.unknown} test rows are of a class the validation rows do not have: left out of scoring")
    split = Split(
        X_val, y_val, 0, X_test, y_test, source.task, len(source.classes), source.classes, source.columns, source.key
    )
    facts = Facts(
        val.rows + test.rows, test.class_counts, test.unknown, test.digest, reader.bytes_read, reader.rows_read
    )
    return split, facts


def _reader(plan: PartPlan) -> Reader:
    return Reader(dict(plan.storage_options) if plan.storage_options is not None else None)


def _model_rows(frame: pd.DataFrame, source: Sharded, reader: Reader) -> tuple[pd.DataFrame, np.ndarray, Facts]:
    """Rows read as the models take them: the used feature columns, the target encoded as the driver decided."""
    X, y = model_rows(frame, target=source.target, task=source.task, classes=source.classes)
    unknown = 0
    if source.task == "classification":
        known = y >= 0
        unknown = int((~known).sum())
        if unknown:
            X, y = X[known], y[known]
    X = X[list(source.columns.used)].reset_index(drop=True)
    counts = class_counts(y, source.classes) if source.task == "classification" else {}
    facts = Facts(len(y), counts, unknown, rows_digest(X, y), reader.bytes_read, reader.rows_read)
    return X, y, facts


def rows_digest(X: pd.DataFrame, y: np.ndarray) -> str:
    """A digest of the rows ``X, y`` as a set: the same rows in any order give the same digest."""
    h = pd.util.hash_pandas_object(X, index=False).to_numpy() if len(X.columns) else np.zeros(len(y), np.uint64)
    h = h ^ pd.util.hash_array(np.asarray(y)) * np.uint64(0x9E3779B97F4A7C15)
    return hashlib.sha256(np.sort(h).tobytes()).hexdigest()[:16]


def _check_rows(y: np.ndarray, source: Sharded, what: str) -> None:
    if len(y) < MIN_SHARD_ROWS:
        raise MlfleetError(
            f"{what} holds {len(y)} training rows, and a model needs at least {MIN_SHARD_ROWS}; "
            "use fewer partitions or a larger single_rows"
        )
    if source.task != "classification":
        return
    counts = np.bincount(y, minlength=len(source.classes))
    short = int(counts.argmin())
    if counts[short] < source.min_class_rows:
        raise MlfleetError(
            f"{what} holds {counts[short]} training rows of class {source.classes[short]!r}, and every model needs "
            f"every class ({source.min_class_rows} row(s) each at least); use fewer partitions, or partition_by a "
            "column such as an id, which spreads the classes over the shards"
        )
