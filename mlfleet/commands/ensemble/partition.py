"""Shards of the training split: random, stratified by class, or one per value of a column.

Pure functions over arrays and frames: the same rows and seed always give the same shards,
and every training row lands in exactly one shard. :func:`make_shards` also checks that each
shard can train a member, and says how many partitions the data allows when it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlfleet.errors import MlfleetError

#: the fewest training rows a member may learn from
MIN_SHARD_ROWS = 10
#: the label of a shard of rows whose partition_by value is missing
MISSING = "<missing>"


@dataclass(frozen=True)
class Shard:
    """One member's training rows: positions into the training split, sorted."""

    index: int
    rows: np.ndarray
    label: str  # what the shard is, for runs and rows: "stratified 2/4", "segment='online'"
    value: str = ""  # the partition_by value of its rows (empty for random shards)

    @property
    def size(self) -> int:
        return len(self.rows)


def check_partitions(partitions: int) -> None:
    """Raise MlfleetError unless ``partitions`` is a whole number of at least 1."""
    if isinstance(partitions, bool) or not isinstance(partitions, (int, np.integer)) or partitions < 1:
        raise MlfleetError(f"partitions must be at least 1, but got partitions={partitions}")


def random_shards(n_rows: int, partitions: int, seed: int) -> tuple[np.ndarray, ...]:
    """``partitions`` disjoint random sets of ``range(n_rows)``, sizes differing by at most one."""
    check_partitions(partitions)
    order = np.random.default_rng(seed).permutation(n_rows)
    return tuple(np.sort(part) for part in np.array_split(order, partitions))


def stratified_shards(y: np.ndarray, partitions: int, seed: int) -> tuple[np.ndarray, ...]:
    """Disjoint sets of row positions with each class spread as evenly as possible.

    Rows are shuffled within their class, laid out class after class, and dealt to the
    shards in turn: every shard gets the floor or the ceiling of each class's share, and
    the shards' sizes differ by at most one.
    """
    check_partitions(partitions)
    rng = np.random.default_rng(seed)
    order = (
        np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]) if len(y) else np.array([], int)
    )
    return tuple(np.sort(order[start::partitions]) for start in range(partitions))


def column_shards(values: pd.Series) -> tuple[tuple[str, np.ndarray], ...]:
    """One ``(value, row positions)`` per distinct value of ``values``, in sorted order.

    Missing values form one shard of their own, labelled :data:`MISSING`.
    """
    codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
    groups = [(_show(value), np.flatnonzero(codes == code)) for code, value in enumerate(uniques)]
    if (codes == -1).any():
        groups.append((MISSING, np.flatnonzero(codes == -1)))
    return tuple(groups)


def make_shards(
    X: pd.DataFrame,
    y: np.ndarray,
    task: str,
    *,
    partitions: int,
    partition_by: str = "",
    seed: int = 42,
    classes: Sequence = (),
    min_class_rows: int = 1,
) -> tuple[Shard, ...]:
    """The training rows ``X, y`` cut into shards that can each train a member.

    Without ``partition_by``: ``partitions`` random shards, stratified by class for
    classification. With it: one shard per value of that feature column (``partitions`` is
    not used). ``min_class_rows`` is how many rows of every class each shard needs (2 when
    members tune on a validation part of their shard).

    Raises MlfleetError for partitions below 1, an unknown column, a shard below
    :data:`MIN_SHARD_ROWS` rows, or (classification) a shard short of a class.
    """
    check_partitions(partitions)
    classification = task == "classification"
    if partition_by:
        return _by_column(X, y, partition_by, classification, classes, min_class_rows)
    n = len(y)
    most = n // MIN_SHARD_ROWS
    if partitions > most:
        raise MlfleetError(
            f"partitions={partitions} is more than the training rows allow: {n} training rows make shards of "
            f"{n // partitions}, and each shard needs at least {MIN_SHARD_ROWS} rows; "
            f"use partitions={max(most, 1)} or fewer, or more data"
        )
    if not classification:
        parts = random_shards(n, partitions, seed)
        return tuple(Shard(i, rows, f"random {i + 1}/{partitions}") for i, rows in enumerate(parts))
    counts = np.bincount(y, minlength=len(classes) or 0)
    rare = int(counts.argmin())
    if counts[rare] < partitions * min_class_rows:
        raise MlfleetError(
            f"partitions={partitions} is more than the training rows allow: every shard needs every class "
            f"({min_class_rows} row(s) each at least), "
            f"but class {_label(classes, rare)!r} has {counts[rare]} training rows; "
            f"use partitions={max(counts[rare] // min_class_rows, 1)} or fewer, or more data"
        )
    parts = stratified_shards(y, partitions, seed)
    return tuple(Shard(i, rows, f"stratified {i + 1}/{partitions}") for i, rows in enumerate(parts))


def class_counts(y: np.ndarray, classes: Sequence) -> dict[str, int]:
    """``{label: rows}`` of encoded targets ``y`` for every class, in code order."""
    counts = np.bincount(y, minlength=len(classes))
    return {str(_label(classes, code)): int(count) for code, count in enumerate(counts)}


def _by_column(X, y, column, classification, classes, min_class_rows) -> tuple[Shard, ...]:
    if column not in X.columns:
        shown = ", ".join(map(str, X.columns[:12])) + (", ..." if X.shape[1] > 12 else "")
        raise MlfleetError(
            f"unknown partition_by column {column!r}; the feature columns are: {shown}; "
            "pass one of them or leave partition_by empty"
        )
    shards = []
    for index, (value, rows) in enumerate(column_shards(X[column])):
        label = f"{column}={value!r}"
        if len(rows) < MIN_SHARD_ROWS:
            raise MlfleetError(
                f"partition_by={column!r} makes a shard too small: {label} has {len(rows)} training rows, "
                f"and each shard needs at least {MIN_SHARD_ROWS}; "
                "choose a column with fewer, larger groups or leave partition_by empty"
            )
        if classification:
            counts = np.bincount(y[rows], minlength=len(classes))
            short = int(counts.argmin())
            if counts[short] < min_class_rows:
                raise MlfleetError(
                    f"partition_by={column!r} leaves shard {label} with {counts[short]} training rows of class "
                    f"{_label(classes, short)!r}, and every shard needs every class "
                    f"({min_class_rows} row(s) each at least); "
                    "choose another column or leave partition_by empty"
                )
        shards.append(Shard(index, rows, label, value))
    return tuple(shards)


def _label(classes: Sequence, code: int):
    return classes[code] if code < len(classes) else code


def _show(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else str(value)
    return str(value.item() if hasattr(value, "item") else value)
