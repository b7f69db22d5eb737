"""Tables bigger than one machine: shards planned from metadata, each read only by its own member.

A Parquet file or folder, or a Delta table (a folder or an object-store URI), is planned on the
driver from its metadata alone: the Delta log's active files or the folder's listing, and each
file's footer (row groups, their rows and statistics, the schema). Every process then reads only
what is its own:

- ``read_part(plan, i)``: the training rows of shard ``i`` (a member's task, on a worker);
- ``read_holdout(plan, "val" | "test")``: the validation or test rows (a task that decides or scores);
- ``read_sample(plan, rows)``: a stratified sample of the training rows (a model on a sample).

``table_bytes(plan)`` estimates what the whole table would take in pandas, from the footers and
one batch of its text columns.

Which rows validate and test is decided by a stable hash of each row (of the ``key`` columns the
user names, else of every column), so every process, in any order and on Parquet or Delta alike,
agrees, and no held-out row is ever a member's training row. Rows without a target (or without a
key, when one is named) are left out of every part: they can neither train nor score, and a row
without a key cannot be placed stably.

What each mode costs in I/O (bytes of the columns read; Parquet reads whole column chunks):

- row-group shards (``partition_by=""``): the driver reads two small ranges per file (the
  footer); member ``i`` reads its share of the row groups, about ``1/partitions`` of the table,
  plus at most the two row groups it shares with its neighbours. All members together: one
  table, and at most ``2 * partitions`` row groups more.
- hash-bucket shards (``partition_by=COLUMN``): every member reads every row group, in batches,
  and keeps its bucket: ``partitions`` tables of I/O in all, memory bounded by one batch plus
  the member's own rows.
- the holdouts and a sample: one pass over the table per call, in batches; memory is the rows kept.

A read holds one row group's compressed column chunks and one batch of :data:`BATCH_ROWS`
decoded rows at a time, besides the rows it keeps.

Every byte of a Parquet file goes through one :class:`Reader`, which counts what it read: pass
your own to see it (tests prove with it that planning reads no data pages). Delta's own log is
read by delta-rs and is not counted: it is metadata.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlfleet.data._reader import Reader
from mlfleet.data._rowhash import row_hash
from mlfleet.data._sources import SNIFF_BYTES, _csv_bytes, _size
from mlfleet.errors import MlfleetError, first_line

#: rows decoded at a time while scanning: memory per read is this many rows of the columns read
BATCH_ROWS = 65_536
#: the fewest training rows a shard is planned to hold
MIN_SHARD_ROWS = 10
#: the parts a row can belong to, by the code :func:`row_parts` gives it
PARTS = ("train", "val", "test")
PARQUET_SUFFIXES = (".parquet", ".pq")
_HOLDOUT_SALT = 0x1234_5678_9ABC_DEF1
_BUCKET_SALT = 0x0FED_CBA9_8765_4321
_SAMPLE_SALT = 0x5A4D_1E5A_4D1E_5A4D
#: rows read to measure the in-memory width of text columns (:func:`table_bytes`)
WIDTH_SAMPLE_ROWS = 10_000


class Piece(NamedTuple):
    """Rows ``start:stop`` of row group ``row_group`` of the plan's file number ``file``."""

    file: int
    row_group: int
    start: int
    stop: int


@dataclass(frozen=True)
class PartPlan:
    """Where a table's files are and which rows each member reads: metadata only, small and picklable.

    ``shards[i]`` lists member ``i``'s pieces of row groups (empty with ``partition_by``, where
    member ``i`` keeps the rows whose value of that column hashes to ``i``). Build with
    :func:`plan_parts`.
    """

    location: str  # the folder the files are in: an absolute path or an object-store URI
    format: str  # "parquet" or "delta"
    files: tuple[str, ...]  # paths relative to ``location``
    file_bytes: tuple[int, ...]
    row_groups: tuple[tuple[int, ...], ...]  # rows of each row group, per file
    schema: tuple[tuple[str, str], ...]  # (column, arrow type)
    total_rows: int
    target: str
    partitions: int
    partition_by: str
    key: tuple[str, ...]  # the columns the held-out rows are hashed on; empty: every column
    test_size: float
    val_size: float
    seed: int
    shards: tuple[tuple[Piece, ...], ...]
    missing_target: int = -1  # rows without a target, from the footers' statistics; -1: not recorded
    version: int = -1  # the Delta table's version planned (its files are read whatever comes later)
    storage_options: tuple[tuple[str, str], ...] | None = field(default=None, repr=False, compare=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.schema)

    @property
    def hashed(self) -> tuple[str, ...]:
        """The columns a row's part is decided by: the key, else every column (features and target)."""
        return self.key or tuple(sorted(self.columns))

    def shard_rows(self, index: int) -> int:
        """The rows shard ``index`` reads (training rows and the held-out rows among them); -1 for hash buckets."""
        return sum(p.stop - p.start for p in self.shards[index]) if self.shards else -1

    def describe(self) -> str:
        """One line for the log: what was planned, and how."""
        groups = sum(map(len, self.row_groups))
        how = (
            f"by hash of {self.partition_by} (every member scans the table)"
            if self.partition_by
            else f"by row groups, {self.total_rows // self.partitions:,} rows each"
        )
        hashed = ",".join(self.key) if self.key else "every column"
        return (
            f"{self.format} {self.location}: {len(self.files)} files, {groups} row groups, {self.total_rows:,} rows; "
            f"{self.partitions} shards {how}; val {self.val_size:g} and test {self.test_size:g} by hash of {hashed} "
            f"(seed {self.seed})"
        )


def plan_parts(
    location: str,
    *,
    target: str,
    partitions: int,
    partition_by: str = "",
    key: str | Sequence[str] = "",
    test_size: float = 0.2,
    val_size: float = 0.2,
    seed: int = 42,
    storage_options: dict[str, str] | None = None,
    reader: Reader | None = None,
) -> PartPlan:
    """Plan ``partitions`` shards of a Parquet file or folder or a Delta table from its metadata alone.

    ``target`` empty means the column ``target`` if there is one, else the last column. Without
    ``partition_by`` the row groups, ordered by a hash of the seed and each row group's
    footer statistics (its rows and every column's nulls, minimum and maximum, so the order
    does not depend on file names), are laid end to end and cut into ``partitions`` runs of
    rows that differ by at most one row. With ``partition_by=COLUMN`` shard ``i`` is the rows
    whose value of that column hashes to ``i`` modulo ``partitions`` (a missing value hashes
    like any other). ``key`` names the columns (``"a,b"``) the held-out rows are hashed on;
    empty: every column, which makes every read decode every column (the hash needs them all);
    with a key, ``read_part(..., columns=...)`` decodes only those and the key. Reads two small
    ranges per file and, for Delta, the log, through ``reader`` (by default a new
    :class:`Reader` with ``storage_options``, which the plan keeps for the members, out of its repr).

    Raises MlfleetError for partitions below 1, sizes out of range, a location that is neither
    Parquet nor Delta, an unreadable footer, files that disagree on their columns, a missing
    target, key or partition_by column, too few rows for the shards, and Delta tables this
    reader cannot read yet (partitioned, column mapping, deletion vectors).
    """
    _check_numbers(partitions, test_size, val_size)
    reader = reader or Reader(storage_options)
    kind, root, listed, version = _locate(location, reader)
    footers = []
    for path, _ in listed:
        try:
            footers.append(reader.footer(root, path))
        except Exception as exc:
            raise MlfleetError(
                f"data={location}: cannot read the Parquet footer of {path} ({first_line(exc)})"
            ) from None
    schema = _schema(footers, [p for p, _ in listed], location)
    names = [n for n, _ in schema]
    target = target or ("target" if "target" in names else names[-1])  # as the driver's own read picks it
    keys = tuple(dict.fromkeys(k.strip() for k in (key.split(",") if isinstance(key, str) else key) if k.strip()))
    _check_columns(names, target, keys, partition_by, location)
    row_groups = tuple(tuple(md.row_group(r).num_rows for r in range(md.num_row_groups)) for md in footers)
    total = sum(map(sum, row_groups))
    if total == 0:
        raise MlfleetError(f"data={location} has no rows; give a table with rows of data")
    training = total * (1 - test_size - val_size) / partitions
    if not partition_by and training < MIN_SHARD_ROWS:
        raise MlfleetError(
            f"partitions={partitions} is more than data={location} allows: {total} rows leave about {training:.0f} "
            f"training rows per shard, and each shard needs at least {MIN_SHARD_ROWS}; use fewer partitions"
        )
    shards = () if partition_by else _cut(_ordered_groups(footers, seed), partitions)
    return PartPlan(
        location=root,
        format=kind,
        files=tuple(p for p, _ in listed),
        file_bytes=tuple(s for _, s in listed),
        row_groups=row_groups,
        schema=schema,
        total_rows=total,
        target=target,
        partitions=partitions,
        partition_by=partition_by,
        key=keys,
        test_size=test_size,
        val_size=val_size,
        seed=seed,
        shards=shards,
        missing_target=_nulls(footers, target),
        version=version,
        storage_options=tuple(sorted(storage_options.items())) if storage_options is not None else None,
    )


def _check_numbers(partitions, test_size: float, val_size: float) -> None:
    if isinstance(partitions, bool) or not isinstance(partitions, (int, np.integer)) or partitions < 1:
        raise MlfleetError(f"partitions must be at least 1, but got partitions={partitions}")
    if not (0 < test_size < 1 and 0 < val_size < 1 and test_size + val_size < 1):
        raise MlfleetError(
            f"test_size and val_size must be between 0 and 1 and sum below 1, "
            f"but got test_size={test_size}, val_size={val_size}"
        )


def _locate(location: str, reader: Reader) -> tuple[str, str, list[tuple[str, int]], int]:
    """``(format, root, [(file, bytes)], delta version)`` of a location; metadata only."""
    from mlfleet.locations import place

    where = place(location)
    remote, uri = where.is_remote, where.uri
    if not remote:
        path = Path(uri)
        if not path.exists():
            raise MlfleetError(
                f"data file not found: {location}; check the path (relative paths start at the current directory)"
            )
        if path.is_dir() and (path / "_delta_log").is_dir():
            return _delta_files(uri, location, reader)
        if path.is_file() and not path.name.lower().endswith(PARQUET_SUFFIXES):
            raise _not_table(location)
    elif _is_delta(uri, reader.storage_options):
        return _delta_files(uri, location, reader)
    if uri.lower().endswith(PARQUET_SUFFIXES) and (remote or Path(uri).is_file()):
        root, name = uri.rstrip("/").rsplit("/", 1)
        listed = _listed(reader, root, location, [name])
        if not listed:
            raise _not_table(location)
        return "parquet", root, listed, -1
    parquet = sorted(
        (p, s)
        for p, s in _listed(reader, uri, location)
        if p.lower().endswith(PARQUET_SUFFIXES) and not any(part[:1] in ("_", ".") for part in p.split("/"))
    )
    if not parquet:
        raise _not_table(location)
    hive = sorted({part for p, _ in parquet for part in p.split("/")[:-1] if "=" in part})
    if hive:
        raise MlfleetError(
            f"data={location} is a folder partitioned by {hive[0]}/...; the sharded reader does not read values from "
            "folder names yet: write the table without partition folders, or as a Delta table without partitions"
        )
    return "parquet", uri.rstrip("/"), parquet, -1


def _is_delta(uri: str, options) -> bool:
    from deltalake import DeltaTable

    try:
        return DeltaTable.is_deltatable(uri, options)
    except Exception:
        return False


def _delta_files(uri: str, location: str, reader: Reader) -> tuple[str, str, list[tuple[str, int]], int]:
    from deltalake import DeltaTable

    try:
        table = DeltaTable(uri, storage_options=reader.storage_options)
    except Exception as exc:
        raise MlfleetError(f"cannot read the Delta table data={location}: {first_line(exc)}") from None
    metadata, features = table.metadata(), set(table.protocol().reader_features or ())
    if metadata.partition_columns:
        raise MlfleetError(
            f"data={location} is a Delta table partitioned by {', '.join(metadata.partition_columns)}; the sharded "
            "reader does not read partition values yet: rewrite it without partition_by, or train from a copy"
        )
    mapping = metadata.configuration.get("delta.columnMapping.mode", "none")
    if "columnMapping" in features and mapping != "none":
        raise MlfleetError(
            f"data={location} uses Delta column mapping (mode {mapping}); the sharded reader reads file columns by "
            "name and cannot read it yet: rewrite the table without column mapping"
        )
    if "deletionVectors" in features and _has_deletion_vectors(table):
        raise MlfleetError(
            f"data={location} has deleted rows kept as deletion vectors, which the sharded reader does not apply; "
            "purge them first (Databricks: REORG TABLE ... APPLY (PURGE)) or rewrite the table"
        )
    actions = pa.table(table.get_add_actions(flatten=True))
    paths = [unquote(p) for p in actions.column("path").to_pylist()]
    if any("://" in p or p.startswith("/") for p in paths):
        raise MlfleetError(
            f"data={location} is a Delta table with files outside its folder (a shallow clone); copy it first"
        )
    files = sorted(zip(paths, actions.column("size_bytes").to_pylist(), strict=True))
    return "delta", uri.rstrip("/"), files, table.version()


def _has_deletion_vectors(table) -> bool:
    batches = pa.RecordBatchReader.from_stream(table.deletion_vectors())
    return any(batch.num_rows for batch in batches)


def _not_table(location: str) -> MlfleetError:
    hint = " (a CSV: convert it to Parquet first, see check_csv_size)" if location.lower().endswith(".csv") else ""
    return MlfleetError(
        f"data={location} is neither a Parquet file or folder nor a Delta table{hint}; "
        "give a .parquet file, a folder of them, or a Delta table folder or URI"
    )


def _listed(reader: Reader, root: str, location: str, names: Sequence[str] = ()) -> list[tuple[str, int]]:
    try:
        return reader.list_files(root, names)
    except Exception as exc:
        raise MlfleetError(f"data={location} cannot be listed ({first_line(exc)})") from None


def _schema(footers, paths: list[str], location: str) -> tuple[tuple[str, str], ...]:
    schemas = [tuple((f.name, str(f.type)) for f in md.schema.to_arrow_schema()) for md in footers]
    for path, schema in zip(paths, schemas, strict=True):
        if schema != schemas[0]:
            differ = sorted(set(schema) ^ set(schemas[0]))[0]
            raise MlfleetError(
                f"data={location}: {path} has other columns than {paths[0]} ({differ[0]}: {differ[1]}); "
                "the sharded reader needs every file to hold the same columns: rewrite the table in one schema"
            )
    return schemas[0]


def _check_columns(names: list[str], target: str, keys: tuple[str, ...], partition_by: str, location: str) -> None:
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    if target not in names:
        raise MlfleetError(
            f"target column {target!r} is not in data={location}; its columns are: {shown}; pass target=COLUMN"
        )
    unknown = [k for k in keys if k not in names]
    if unknown:
        raise MlfleetError(f"key names {', '.join(unknown)}, not columns of data={location}; its columns are: {shown}")
    if partition_by and (partition_by not in names or partition_by == target):
        what = "the target" if partition_by == target else "not a column"
        raise MlfleetError(
            f"unknown partition_by column {partition_by!r} ({what}); the feature columns are: "
            f"{', '.join(n for n in names[:12] if n != target)}; pass one of them or leave partition_by empty"
        )


def _nulls(footers, column: str) -> int:
    """Rows with no ``column`` by the footers' statistics; -1 when a row group has none."""
    total = 0
    for md in footers:
        index = md.schema.names.index(column)
        for r in range(md.num_row_groups):
            stats = md.row_group(r).column(index).statistics
            if stats is None or not stats.has_null_count:
                return -1
            total += stats.null_count
    return total


def _ordered_groups(footers, seed: int) -> list[tuple[int, int, int]]:
    """``(file, row group, rows)`` of every row group, in an order of the seed and their statistics."""
    found = []
    for f, md in enumerate(footers):
        for r in range(md.num_row_groups):
            group = md.row_group(r)
            stats = [group.num_rows]
            for c in range(group.num_columns):
                s = group.column(c).statistics
                has = s is not None and s.has_min_max
                stats.append(
                    (group.column(c).path_in_schema, s.null_count if s else None, *((s.min, s.max) if has else ()))
                )
            digest = hashlib.sha256(f"{seed}|{stats!r}".encode()).hexdigest()
            found.append((digest, f, r, group.num_rows))
    return [(f, r, rows) for _, f, r, rows in sorted(found)]


def _cut(groups: list[tuple[int, int, int]], partitions: int) -> tuple[tuple[Piece, ...], ...]:
    """The row groups laid end to end, cut into ``partitions`` runs whose sizes differ by at most one row."""
    total = sum(rows for *_, rows in groups)
    bounds = [total * i // partitions for i in range(partitions + 1)]
    shards: list[list[Piece]] = [[] for _ in range(partitions)]
    offset = 0
    for f, r, rows in groups:
        for i in range(partitions):
            start, stop = max(bounds[i], offset), min(bounds[i + 1], offset + rows)
            if start < stop:
                shards[i].append(Piece(f, r, start - offset, stop - offset))
        offset += rows
    return tuple(tuple(s) for s in shards)


# -- the rows' hashes ----------------------------------------------------------------------------------------


def row_parts(batch: pa.RecordBatch | pa.Table, plan: PartPlan) -> np.ndarray:
    """Each row's part, as an index into :data:`PARTS`: 0 train, 1 val, 2 test; -1 left out.

    The row hash, mapped to [0, 1), below ``test_size`` tests, below ``test_size + val_size``
    validates, and trains otherwise. A row without a target or a key is left out (-1).
    """
    u = _unit(row_hash(batch, plan.hashed, salt=_HOLDOUT_SALT ^ (plan.seed * 0x9E3779B97F4A7C15)))
    parts = np.where(u < plan.test_size, 2, np.where(u < plan.test_size + plan.val_size, 1, 0)).astype(np.int8)
    for name in (plan.target, *plan.key):
        parts[~np.asarray(batch.column(name).is_valid())] = -1
    return parts


def row_buckets(batch: pa.RecordBatch | pa.Table, plan: PartPlan) -> np.ndarray:
    """The shard of each row by its ``partition_by`` value: ``hash(value) % partitions`` (not seeded)."""
    return (row_hash(batch, [plan.partition_by], salt=_BUCKET_SALT) % np.uint64(plan.partitions)).astype(np.int64)


# -- reading ---------------------------------------------------------------------------------------------------


def read_part(plan: PartPlan, index: int, *, columns: Sequence[str] | None = None, reader: Reader | None = None):
    """The training rows of shard ``index`` as a DataFrame (all columns, or ``columns``), index 0..n-1.

    Reads only that shard's pieces of row groups, or, with ``partition_by``, every row group in
    batches, keeping its hash bucket. Raises MlfleetError for an index out of range or an
    unknown column.
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < plan.partitions:
        raise MlfleetError(f"shard index must be 0 to {plan.partitions - 1}, but got index={index}")
    if plan.partition_by:
        pieces = _all_pieces(plan)

        def keep(batch):
            return (row_parts(batch, plan) == 0) & (row_buckets(batch, plan) == index)
    else:
        pieces = list(plan.shards[index])

        def keep(batch):
            return row_parts(batch, plan) == 0

    return _scan(plan, pieces, columns, keep, reader, extra=(plan.partition_by,) if plan.partition_by else ())


def read_holdout(plan: PartPlan, which: str, *, columns: Sequence[str] | None = None, reader: Reader | None = None):
    """The validation (``"val"``) or test (``"test"``) rows as a DataFrame, read in batches over the whole table.

    Memory is those rows and one batch, not the table. Raises MlfleetError for another ``which``.
    """
    if which not in PARTS[1:]:
        raise MlfleetError(f"which must be val or test, but got which={which!r}")
    code = PARTS.index(which)
    return _scan(plan, _all_pieces(plan), columns, lambda batch: row_parts(batch, plan) == code, reader)


def read_sample(
    plan: PartPlan,
    rows: int,
    *,
    stratify: bool = True,
    columns: Sequence[str] | None = None,
    reader: Reader | None = None,
) -> pd.DataFrame:
    """About ``rows`` of the training rows (never a validation or test row), the same in every process.

    Each training row gets a draw from a hash of its values (of the key, else of every column)
    and the seed; the rows with the smallest draws are kept, ``stratify``: within each value of
    the target, every value getting its share of ``rows`` (largest remainders). One pass over
    the table in batches, keeping about 1.2 x ``rows`` candidates: memory is those and one batch.
    The rows come in the order of their draws, so a Parquet folder and a Delta table of the same
    rows give the same frame. All the training rows when there are fewer than ``rows``.
    """
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise MlfleetError(f"a sample must have at least 1 row, but got rows={rows}")
    wanted = list(columns) if columns is not None else list(plan.columns)
    read = wanted + ([plan.target] if stratify and plan.target not in wanted else [])
    training = max(1.0, (plan.total_rows - max(plan.missing_target, 0)) * (1 - plan.test_size - plan.val_size))
    share = min(1.0, (1.2 * rows + 100) / training)
    draws: list[np.ndarray] = []
    counts: dict = {}  # every training row's target value, counted: the shares to stratify by

    def keep(batch):
        drawn = _unit(row_hash(batch, plan.hashed, salt=_SAMPLE_SALT ^ (plan.seed * 0x9E3779B97F4A7C15)))
        training = row_parts(batch, plan) == 0
        if stratify:
            values = pc.value_counts(batch.column(plan.target).filter(pa.array(training)))
            for value, n in zip(values.field("values").to_pylist(), values.field("counts").to_pylist(), strict=True):
                counts[value] = counts.get(value, 0) + n
        mask = training & (drawn < share)
        draws.append(drawn[mask])
        return mask

    frame = _scan(plan, _all_pieces(plan), read, keep, reader)
    drawn = np.concatenate(draws) if draws else np.zeros(0)
    if stratify and len(frame) > rows:
        codes, values = pd.factorize(frame[plan.target], use_na_sentinel=True)
        quotas = _quotas(rows, np.array([counts[v] for v in values], dtype=float), np.bincount(codes))
        chosen = np.concatenate(
            [group[np.argsort(drawn[group], kind="stable")[:q]] for group, q in _groups_of(codes, quotas)]
        )
    else:
        chosen = np.argsort(drawn, kind="stable")[:rows]
    chosen = chosen[np.argsort(drawn[chosen], kind="stable")]
    return frame.iloc[chosen][wanted].reset_index(drop=True)


def _quotas(rows: int, counts: np.ndarray, available: np.ndarray) -> np.ndarray:
    """``rows`` dealt over the classes by their ``counts`` (largest remainders), none above what is ``available``."""
    exact = rows * counts / counts.sum()
    quotas = np.minimum(np.floor(exact).astype(int), available)
    while quotas.sum() < min(rows, available.sum()):
        spare = np.flatnonzero(quotas < available)
        quotas[spare[np.argmax((exact - quotas)[spare])]] += 1
    return quotas


def _groups_of(codes: np.ndarray, quotas: np.ndarray):
    for code, quota in enumerate(quotas):
        yield np.flatnonzero(codes == code), int(quota)


def _unit(h: np.ndarray) -> np.ndarray:
    """uint64 hashes as draws in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def table_bytes(plan: PartPlan, *, reader: Reader | None = None) -> int:
    """The bytes the table will take in pandas, estimated from its metadata and one batch of its text columns.

    Numbers, dates and booleans by their width in the schema; a column of varying width (text,
    bytes, lists) measured on the first :data:`WIDTH_SAMPLE_ROWS` rows of the first row group,
    read alone and converted as the readers convert it. The footers' uncompressed sizes are no
    guide: a dictionary-encoded column is a fraction of its width in memory.
    """
    options = dict(plan.storage_options) if plan.storage_options is not None else None
    reader = reader or Reader(options)
    metadata = reader.footer(plan.location, plan.files[0])
    schema = metadata.schema.to_arrow_schema()
    per_row, varying = 0.0, []
    for f in schema:
        try:
            per_row += max(1, f.type.bit_width // 8)
        except ValueError:  # strings, lists, structs: no fixed width
            varying.append(f.name)
    if varying and metadata.num_row_groups:
        with reader.open(plan.location, plan.files[0]) as handle:
            parquet = pq.ParquetFile(handle, metadata=metadata, pre_buffer=False)
            batch = next(parquet.iter_batches(WIDTH_SAMPLE_ROWS, row_groups=[0], columns=varying), None)
        if batch is not None and batch.num_rows:
            head = batch.to_pandas()
            per_row += head.memory_usage(deep=True, index=False).sum() / len(head)
    return int(plan.total_rows * per_row)


def _all_pieces(plan: PartPlan) -> list[Piece]:
    return [Piece(f, r, 0, rows) for f, groups in enumerate(plan.row_groups) for r, rows in enumerate(groups)]


def _scan(plan: PartPlan, pieces, columns, keep, reader: Reader | None, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    wanted = list(columns) if columns is not None else list(plan.columns)
    unknown = [c for c in wanted if c not in plan.columns]
    if unknown:
        raise MlfleetError(
            f"columns {', '.join(unknown)} are not in data={plan.location}; its columns are: {', '.join(plan.columns)}"
        )
    needed = list(dict.fromkeys([*wanted, plan.target, *plan.hashed, *extra]))
    options = dict(plan.storage_options) if plan.storage_options is not None else None
    reader = reader or Reader(options)
    kept: list[pa.RecordBatch] = []
    schema = None
    for f in sorted({p.file for p in pieces}):
        path = plan.files[f]
        metadata = reader.footer(plan.location, path)
        schema = metadata.schema.to_arrow_schema()
        with reader.open(plan.location, path) as handle:
            parquet = pq.ParquetFile(handle, metadata=metadata, pre_buffer=False)
            for piece in (p for p in pieces if p.file == f):
                offset = 0
                for batch in parquet.iter_batches(BATCH_ROWS, row_groups=[piece.row_group], columns=needed):
                    lo, hi = max(piece.start - offset, 0), min(piece.stop - offset, batch.num_rows)
                    offset += batch.num_rows
                    if lo >= hi:
                        continue
                    batch = batch.slice(lo, hi - lo)
                    reader.rows_read += batch.num_rows
                    kept.append(batch.filter(pa.array(keep(batch))).select(wanted))
    if schema is None:  # no pieces at all: the columns still have their types
        schema = reader.footer(plan.location, plan.files[0]).schema.to_arrow_schema()
    table = pa.Table.from_batches(kept) if kept else schema.empty_table().select(wanted)
    del kept
    # Column by column, each freed once converted: the rows are held once more at most by a column, not twice.
    return table.to_pandas(split_blocks=True, self_destruct=True).reset_index(drop=True)


# -- CSV -------------------------------------------------------------------------------------------------------


def check_csv_size(path: str, limit_bytes: int) -> int:
    """The bytes a local CSV will take in pandas (estimated from its first rows); refuses one over ``limit_bytes``.

    Raises MlfleetError, naming a conversion to Parquet that streams the file (pyarrow reads it
    block by block, never whole), when the estimate is more than ``limit_bytes``; 0 means no
    limit. Writes nothing. 0 (nothing to check) for a remote CSV or one whose head does not parse.
    """
    if "://" in path and not path.startswith("file://"):
        return 0
    local = path.removeprefix("file://")
    try:
        with open(local, "rb") as f:
            head = f.read(SNIFF_BYTES)
        size = Path(local).stat().st_size
    except OSError as exc:
        raise MlfleetError(f"cannot read data={path}: {first_line(exc)}") from None
    estimate = _csv_bytes(head, size)
    if limit_bytes and estimate > limit_bytes:
        command, out = csv_conversion(path)
        raise MlfleetError(
            f"data={path} takes about {_size(estimate)} in memory, more than the {_size(limit_bytes)} the driver may "
            f"hold; convert it to Parquet without loading it whole: {command} and pass data={out}, "
            "or give a Parquet folder or a Delta table"
        )
    return estimate


def csv_conversion(path: str) -> tuple[str, str]:
    """``(command, folder)``: a shell command that converts a local CSV to a Parquet folder without loading it
    whole (pyarrow streams it block by block), and the folder it writes."""
    local = path.removeprefix("file://")
    out = str(Path(local).with_suffix("")) + "_parquet"
    code = (
        f'import pyarrow.dataset as ds; ds.write_dataset(ds.dataset({json.dumps(local)}, format="csv"), '
        f'{json.dumps(out)}, format="parquet", min_rows_per_group=100_000)'
    )
    return f"python -c {shlex.quote(code)}", out
