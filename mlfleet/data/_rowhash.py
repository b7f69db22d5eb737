"""Stable row hashes: the same value gives the same uint64 in every process, batch, file and writer.

Not Python's ``hash`` (salted per process) and not ``pandas.util.hash_pandas_object`` over a
frame (a value's hash there depends on the dtype pandas picked for the batch it came in: an
integer column with a gap in one batch reads as float). Values are hashed by their Arrow type
family instead; text with pandas' siphash under a fixed key.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: siphash key for text values (pandas' hash); fixed, so that every process and version agrees
_HASH_KEY = "mlfleet:rowhash1"
_NULL_HASH = np.uint64(0x5BD1E9955BD1E995)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _column_hash(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A uint64 per value that depends on the value alone: not on the batch, the file or how it was written.

    Integers (any width) and booleans hash as int64, floats as float64 (-0.0 as 0.0), times as
    int64 microseconds, text and bytes with pandas' siphash under a fixed key; anything else by
    its text. Missing values (and NaN) share one hash.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind, valid = column.type, np.asarray(column.is_valid())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        bits = pc.cast(column, pa.int64(), safe=False).fill_null(0).to_numpy().view(np.uint64)
    elif pa.types.is_floating(kind):
        values = pc.cast(column, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False) + 0.0  # -0.0 -> 0.0
        valid &= ~np.isnan(values)
        bits = np.where(valid, values, 0.0).view(np.uint64)
    elif pa.types.is_temporal(kind):
        bits = _temporal_bits(column).fill_null(0).to_numpy().view(np.uint64)
    else:
        if not _is_text(kind):
            try:
                column = pc.cast(column, pa.large_string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.large_string())
        values = column.to_numpy(zero_copy_only=False).astype(object)
        values[~valid] = ""
        bits = pd.util.hash_array(values, hash_key=_HASH_KEY, categorize=False)
    return np.where(valid, _mix(bits ^ np.uint64(0x2545F4914F6CDD1D)), _NULL_HASH)


def _temporal_bits(column: pa.Array) -> pa.Array:
    """Times as int64: timestamps and dates in microseconds since the epoch (whatever their unit), others as stored."""
    kind = column.type
    if pa.types.is_date(kind):
        column = pc.cast(column, pa.timestamp("us"))
    elif pa.types.is_timestamp(kind):
        column = pc.cast(column, pa.timestamp("us", kind.tz), safe=False)
    else:  # times and durations keep their unit (a column's type is the same in every file)
        column = column.view(pa.int64() if kind.bit_width == 64 else pa.int32())
    return pc.cast(column, pa.int64())


def _is_text(kind: pa.DataType) -> bool:
    return any(
        check(kind)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_string_view,
            pa.types.is_binary,
            pa.types.is_large_binary,
            pa.types.is_binary_view,
        )
    )


def row_hash(batch: pa.RecordBatch | pa.Table, columns: Sequence[str], *, salt: int = 0) -> np.ndarray:
    """One uint64 per row from the values of ``columns`` (in that order) and ``salt``: the same in every process."""
    h = np.full(batch.num_rows, np.uint64(salt & 0xFFFF_FFFF_FFFF_FFFF), dtype=np.uint64)
    for name in columns:
        h = _mix(h * np.uint64(0x100000001B3) + _column_hash(batch.column(name)))
    return h
