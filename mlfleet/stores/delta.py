"""Results tables in Delta Lake through delta-rs: a local folder or an object-store URI.

Every append carries a Delta application transaction (:meth:`TableSpec.app_id`); a writer
that finds the version it writes already committed skips, so a retried append never
duplicates a row, and a row written again at a later version (a model trained again on
resume) replaces the earlier one in one MERGE commit. A table an earlier mlfleet wrote with
fewer columns is evolved (columns added), never rewritten.

delta-rs reads the credentials of an object store from each process's environment
(``AWS_*``, ``AZURE_*``, ``GOOGLE_*``); ``MLFLEET_STORAGE_OPTIONS`` adds explicit storage
options (JSON or ``key=value,...``). They hold secrets, so they are never logged anywhere.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlfleet import settings
from mlfleet.errors import MlfleetError, first_line
from mlfleet.locations import MOUNT, OBJECT_STORE_SCHEMES, place
from mlfleet.redaction import redact
from mlfleet.stores.rows import TableSpec, records

#: explicit delta-rs storage options for every table mlfleet reads or writes: JSON or key=value,...
STORAGE_OPTIONS_ENV = "MLFLEET_STORAGE_OPTIONS"
#: how often a commit that lost a race to another writer is tried again
COMMIT_ATTEMPTS = 8
#: a sweep writes a file per model; a table holding more is compacted after the sweep (a
#: default sweep of 90 models is; a few small ones in a row are left as they are)
COMPACT_FILES = 32


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
            raise MlfleetError(
                f"{STORAGE_OPTIONS_ENV} is not valid JSON (at character {exc.pos}); use a JSON object or key=value,..."
            ) from None
        if not isinstance(parsed, dict):
            raise MlfleetError(
                f"{STORAGE_OPTIONS_ENV} must be a JSON object or key=value,..., but got a JSON {type(parsed).__name__}"
            )
        return {str(k): json.dumps(v) if isinstance(v, bool) else str(v) for k, v in parsed.items()}
    options = {}
    for number, part in enumerate(text.split(","), start=1):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise MlfleetError(
                f"{STORAGE_OPTIONS_ENV} must be key=value,... or a JSON object, but item {number} is not key=value "
                "(values are not shown)"
            )
        options[key.strip()] = value.strip()
    return options


def storage_options(given: dict[str, str] | None = None) -> dict[str, str] | None:
    """``given``, else the options in ``MLFLEET_STORAGE_OPTIONS``, else None (delta-rs then reads its environment)."""
    if given is not None:
        return given
    return parse_storage_options(settings.get(STORAGE_OPTIONS_ENV)) or None


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


def read_table(uri: str):
    """A whole Delta table as a pandas DataFrame (``data=`` a Delta table)."""
    from deltalake import DeltaTable

    return DeltaTable(place(uri).uri, storage_options=storage_options()).to_pandas()


class DeltaResults:
    """A table of ``spec`` rows at a folder or object-store URI, written and read with delta-rs."""

    def __init__(self, given: str, spec: TableSpec, *, what: str = "", options: dict[str, str] | None = None) -> None:
        self.given = given
        self.spec = spec
        self.place = place(given)
        self.uri = self.place.uri
        self.mount = self.place.kind == MOUNT
        self.is_local = self.place.is_local  # a mount is shared by every node
        self.what = what or f"results={redact(given)}"
        self._options = options

    def sibling(self, spec: TableSpec, *, what: str = "") -> DeltaResults:
        """The table of ``spec`` beside this one (same folder or bucket prefix); ``what`` names it before its place."""
        location = self.place.sibling(spec.name).uri
        return DeltaResults(location, spec, what=f"{what} {redact(location)}" if what else "", options=self._options)

    def missing_text(self) -> str:
        return "not a Delta table (nothing there, or no _delta_log)"

    def __repr__(self) -> str:
        return f"DeltaResults({redact(self.uri)!r}, {self.spec.name})"

    @property
    def options(self) -> dict[str, str] | None:
        return storage_options(self._options)

    def _table(self):
        from deltalake import DeltaTable

        return DeltaTable(self.uri, storage_options=self.options)

    def exists(self) -> bool:
        from deltalake import DeltaTable

        if self.is_local and not Path(self.uri).is_dir():
            return False
        return DeltaTable.is_deltatable(self.uri, self.options)

    def check_writable(self) -> None:
        """Raise MlfleetError unless the table can be written here; writes nothing lasting.

        A local location must be an existing Delta table, an empty or new folder under a
        folder this process can write to. An object-store URI must have a known scheme and
        answer (with the storage options in force); whether it takes writes shows at the
        first write. A table already there must be one of ours.
        """
        self.options  # noqa: B018 - a malformed MLFLEET_STORAGE_OPTIONS stops here, before anything is written
        if self.mount:
            raise MlfleetError(
                f"{self.what} is a Databricks volume or DBFS path, where delta-rs cannot commit (its FUSE mount has no "
                "atomic rename) and no Spark session is active to write it; run where Spark is (a Databricks "
                "notebook or job), or pass the volume's cloud URI (abfss://, s3://, gs://) or a Spark table "
                "catalog.schema.table"
            )
        if not self.is_local:
            self._check_reachable()
        else:
            self._check_folder()
        self.missing_columns()

    def _check_folder(self) -> None:
        path = Path(self.uri)
        if path.exists() and not path.is_dir():
            raise MlfleetError(f"{self.what} is a file, not a table folder; choose a folder path for the Delta table")
        if path.is_dir() and any(path.iterdir()) and not (path / "_delta_log").is_dir():
            raise MlfleetError(
                f"{self.what} is a folder that holds other files but no Delta table; choose an empty or new folder"
            )
        try:
            probe_write(path)
        except OSError as exc:
            raise MlfleetError(
                f"{self.what} cannot be written ({first_line(exc)}); choose a location you can write to"
            ) from None

    def _check_reachable(self) -> None:
        from deltalake import DeltaTable

        scheme = self.uri.split("://", 1)[0].lower()
        if scheme not in OBJECT_STORE_SCHEMES:
            raise MlfleetError(
                f"{self.what} has the unknown scheme {scheme}://; use a folder or an s3://, abfss:// or gs:// URI"
            )
        try:
            DeltaTable.is_deltatable(self.uri, self.options)
        except Exception as exc:
            raise MlfleetError(
                f"{self.what} cannot be reached ({redact(first_line(exc))}); check the URI and the storage options "
                f"(AWS_*, AZURE_*, GOOGLE_* variables or {STORAGE_OPTIONS_ENV})"
            ) from None

    def missing_columns(self) -> list[str]:
        """The columns of the spec's schema the table lacks (``[]`` when there is no table yet); writes nothing.

        Raises MlfleetError when the table is not one of ours (another name and most of our
        columns missing) or holds one of our columns with another type.
        """
        if not self.exists():
            return []
        return self._missing_in(self._table())

    def _missing_in(self, table) -> list[str]:
        """:meth:`missing_columns` of one snapshot of the table (the one an ``ADD COLUMNS`` commits on)."""
        from deltalake import Schema

        current = {f.name: f.type for f in table.schema().fields}
        wanted = Schema.from_arrow(self.spec.schema()).fields
        clashes = [
            f"{f.name} ({_type_name(current[f.name])} where mlfleet writes {_type_name(f.type)})"
            for f in wanted
            if f.name in current and current[f.name] != f.type
        ]
        if clashes:
            raise MlfleetError(
                f"{self.what} is a Delta table whose columns {', '.join(clashes)} differ; use another location"
            )
        missing = [f.name for f in wanted if f.name not in current]
        ours = table.metadata().name == self.spec.name or len(missing) <= len(wanted) // 4
        if missing and not ours:
            shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            raise MlfleetError(
                f"{self.what} is a Delta table without the columns {shown}; use another location "
                f"(the default is lakehouse/{self.spec.name})"
            )
        return missing

    def ensure(self) -> list[str]:
        """Create the table if it does not exist; evolve one of ours. Returns the columns added.

        A table an earlier mlfleet wrote (a column or a few fewer) gets the missing columns
        added, as nullable columns, in one ``ADD COLUMNS`` commit: nothing is rewritten and its
        rows read the new columns as null. Raises MlfleetError for a table that is not ours.
        """
        from deltalake import DeltaTable, Field
        from deltalake.exceptions import DeltaError

        arrow = self.spec.schema()
        if not self.exists():
            if self.is_local:
                Path(self.uri).mkdir(parents=True, exist_ok=True)
            try:
                DeltaTable.create(self.uri, arrow, mode="ignore", name=self.spec.name, storage_options=self.options)
            except DeltaError:
                if not self.exists():  # another sweep may have won the race
                    raise
        problem = ""
        for _ in range(COMMIT_ATTEMPTS):
            # the columns are looked for and added on one snapshot: a sweep that evolved the table
            # since makes this commit conflict (and the next look finds them), never add them twice
            table = self._table()
            missing = self._missing_in(table)
            if not missing:
                return []
            try:
                table.alter.add_columns([Field.from_arrow(arrow.field(column)) for column in missing])
                return missing
            except Exception as exc:  # a concurrent sweep evolved it first (or committed): look again
                problem = first_line(exc)
        raise MlfleetError(f"{self.what}: the columns {', '.join(missing)} could not be added ({problem}); run again")

    def append(self, rows: Sequence, app_id: str = "", *, version: int = 1) -> bool:
        """Write ``rows`` in one commit carrying the transaction ``app_id`` (default: the first row's) at ``version``.

        Skipped when that version (or a later one) is committed. With none committed, a blind
        append (writers of other transactions never conflict with it); with an earlier version
        committed, a MERGE on the spec's key replaces its rows. Of two writers racing with one
        ``app_id``, delta-rs refuses the second commit, and it finds the first's on its next
        look. Returns True when this call wrote the rows.
        """
        import pyarrow as pa
        from deltalake import CommitProperties, Transaction, write_deltalake
        from deltalake.exceptions import CommitFailedError

        app_id = app_id or self.spec.app_id(rows[0])
        data = pa.Table.from_pylist(records(rows), schema=self.spec.schema())
        commit = CommitProperties(app_transactions=[Transaction(app_id=app_id, version=version)])
        for _ in range(COMMIT_ATTEMPTS):
            table = self._table()
            committed = table.transaction_version(app_id)
            if committed is not None and committed >= version:
                return False
            try:
                if committed is None:
                    write_deltalake(table, data, mode="append", schema_mode="merge", commit_properties=commit)
                else:
                    predicate = " AND ".join(f"t.{column} = s.{column}" for column in self.spec.key)
                    merge = table.merge(
                        data, predicate=predicate, source_alias="s", target_alias="t", commit_properties=commit
                    )
                    merge.when_matched_update_all().when_not_matched_insert_all().execute()
                return True
            except CommitFailedError:  # another writer committed first (maybe this very transaction): look again
                continue
        raise MlfleetError(f"{self.what}: the rows of {app_id} could not be committed (the table kept changing)")

    def commit_each(self, rows: Sequence, versions: Sequence[int]) -> list[Exception | None]:
        """Write what can be written: the rows in one commit, or, should that fail, row by row; the error of
        each row that could not be written (None for those written or written before)."""
        try:
            self.commit_batch(rows, versions)
            return [None] * len(rows)
        except Exception:  # a row the batch did commit is skipped below, its transaction being there
            return [_error_of(self.append, [row], version=v) for row, v in zip(rows, versions, strict=True)]

    def commit_batch(self, rows: Sequence, versions: Sequence[int]) -> int:
        """Write each row as its own transaction at its version, in one commit where it can; returns how many.

        The rows whose transaction is not committed yet go in one blind append carrying every
        one of their transactions (a fleet's finished models, batched by the driver). A row
        whose earlier version is committed replaces it through :meth:`append`'s MERGE (a
        model trained again on resume); one whose version is committed is skipped. Should
        another writer commit one of these transactions first, delta-rs refuses the commit
        and the rows are looked at again.
        """
        import pyarrow as pa
        from deltalake import CommitProperties, Transaction, write_deltalake
        from deltalake.exceptions import CommitFailedError

        for _ in range(COMMIT_ATTEMPTS):
            table = self._table()
            fresh, replacing = [], []
            for row, version in zip(rows, versions, strict=True):
                committed = table.transaction_version(self.spec.app_id(row))
                if committed is None:
                    fresh.append((row, version))
                elif committed < version:
                    replacing.append((row, version))
            if not fresh:
                break
            commit = CommitProperties(
                app_transactions=[Transaction(app_id=self.spec.app_id(r), version=v) for r, v in fresh]
            )
            data = pa.Table.from_pylist(records([r for r, _ in fresh]), schema=self.spec.schema())
            try:
                write_deltalake(table, data, mode="append", schema_mode="merge", commit_properties=commit)
                break
            except CommitFailedError:  # another writer committed first: look again
                continue
        else:
            raise MlfleetError(f"{self.what}: {len(rows)} rows could not be committed (the table kept changing)")
        return len(fresh) + sum(self.append([row], version=version) for row, version in replacing)

    def read(self, **equal: Any):
        """The rows as a pandas DataFrame, those where each column of ``equal`` has its value."""
        return self._table().to_pandas(filters=[(column, "=", value) for column, value in equal.items()] or None)

    def check_resumable(self, sweep_id: str) -> None:
        """Nothing to refuse: a sweep's rows and their transactions can be read back."""

    def check_takes(self, command: str) -> None:
        """Nothing to refuse: every command writes its rows through delta-rs."""

    def compact(self) -> str:
        """Merge the table's small files and write a checkpoint, once it holds more than :data:`COMPACT_FILES`.

        Every model's row is a commit of one small file, so a table read after many sweeps
        opens thousands of files and replays as many log entries; after this it opens a few and
        starts from the checkpoint. Rows, their transactions (``resume``) and the history stay.
        A concurrent writer's appends do not conflict with it. Returns what it did ('' for nothing).
        """
        table = self._table()
        if len(table.file_uris()) <= COMPACT_FILES:
            return ""
        done = table.optimize.compact()
        table.create_checkpoint()
        return f"compacted {done['numFilesRemoved']} files into {done['numFilesAdded']}, checkpoint written"

    def snapshot(self, **equal: Any) -> tuple[Any, Callable[[str], int | None]]:
        """The rows (as :meth:`read`) and the version of each transaction, from one read of the table."""
        table = self._table()
        frame = table.to_pandas(filters=[(column, "=", value) for column, value in equal.items()] or None)
        return frame, table.transaction_version


def _type_name(delta_type: Any) -> str:
    return str(getattr(delta_type, "type", delta_type))


def _error_of(write: Callable[..., Any], *args: Any, **kwargs: Any) -> Exception | None:
    try:
        write(*args, **kwargs)
    except Exception as exc:
        return exc
    return None
