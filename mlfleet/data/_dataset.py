"""A loaded dataset: raw feature rows, an encoded target, its task and a content digest."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mlfleet.config import DataConfig
from mlfleet.data._columns import check_types
from mlfleet.data._sources import BUILTINS, read_source
from mlfleet.errors import MlfleetError
from mlfleet.redaction import redact

#: an integer target with at most this many distinct values is taken for class labels
MAX_AUTO_CLASSES = 20


@dataclass(frozen=True)
class Dataset:
    """Features as raw rows (text and missing values kept), the target and what it means.

    For classification ``y`` holds codes ``0..k-1`` and ``classes[code]`` is the original
    label; models predict codes. For regression ``y`` is float and ``classes`` is empty.
    """

    name: str
    source: str
    X: pd.DataFrame
    y: np.ndarray
    task: str
    target: str
    classes: tuple = ()
    digest: str = ""
    #: columns the user dropped (``drop=``); the split's column plan leaves them out
    drop: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def without_rows(self) -> Dataset:
        """This dataset with its columns and types but none of its feature rows, nor their memory.

        What a driver keeps once the split holds the rows: a 0-row slice (``X.iloc[:0]``) would
        keep every block of the table alive, as a view of it.
        """
        empty = pd.DataFrame({name: pd.array([], dtype=dtype) for name, dtype in self.X.dtypes.items()})
        return replace(self, X=empty)


def load_dataset(config: DataConfig, *, sampled: bool = False) -> Dataset:
    """Load, pick the target, resolve the task and encode class labels.

    ``sampled``: only a sample of the training rows will be kept (a file's memory check asks for less).
    Raises MlfleetError for a missing target column, a target with one class, a text
    target for regression, or a task name that is not known.
    """
    if config.task not in ("auto", "classification", "regression"):
        raise MlfleetError(f"task must be auto, classification or regression, but got task={config.task!r}")
    frame, default_target = read_source(
        config.source,
        task=config.task,
        n_samples=config.n_samples,
        n_features=config.n_features,
        seed=config.seed,
        sampled=sampled,
    )
    return dataset_of(frame, config, default_target)


def dataset_of(frame: pd.DataFrame, config: DataConfig, default_target: str) -> Dataset:
    """The dataset of rows read already (a whole table, or the validation rows of one too big to read whole).

    Picks the target (``config.target``, else ``default_target``), resolves the task from it and
    encodes class labels; raises what :func:`load_dataset` raises.
    """
    if config.task not in ("auto", "classification", "regression"):
        raise MlfleetError(f"task must be auto, classification or regression, but got task={config.task!r}")
    target = config.target or default_target
    frame, target = _apply_target_rule(frame, target)
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) + (", ..." if frame.shape[1] > 12 else "")
        raise MlfleetError(
            f"target column {target!r} is not in data={config.source}; its columns are: {shown}; pass target=COLUMN"
        )
    drop = _dropped(config.drop, frame, target, config.source)
    present = frame[target].notna()
    if not present.any():
        raise MlfleetError(
            f"target column {target!r} of data={config.source} has no values (all {len(frame)} rows are missing); "
            "pass another target=COLUMN"
        )
    frame = frame[present].reset_index(drop=True)
    raw_y = frame[target]
    X = frame.drop(columns=[target])
    # Column types stay as read: a whole-number column without missing values is an integer
    # column in the logged model's signature, so rows read again with pd.read_csv (or from the
    # same Parquet or Delta table) are accepted as they are; a column with gaps reads as double.
    if X.shape[1] == 0:
        raise MlfleetError(f"data={config.source} has no feature columns besides target {target!r}")
    check_types(X.drop(columns=list(drop)))  # a column the user drops need not be readable
    task = detect_task(raw_y, target) if config.task == "auto" else config.task
    if config.task == "auto" and config.source in BUILTINS:
        task = BUILTINS[config.source][1]
    y, classes = _encode_target(raw_y, target, task)
    return Dataset(
        name=_display_name(config.source),
        source=config.source,
        X=X,
        y=y,
        task=task,
        target=target,
        classes=classes,
        digest=_digest(X, y),
        drop=drop,
    )


def target_column(target: str) -> str:
    """The table's column a target names: the column itself, or the one a rule such as ``quality>=6`` reads."""
    match = _RULE.match(target)
    return match.group(1) if match else target


def model_rows(frame: pd.DataFrame, *, target: str, task: str, classes: tuple) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of a table as a dataset of its ``task`` and ``classes`` holds them: ``(all the other columns, y)``.

    ``target`` is a column or a rule such as ``quality>=6``; for classification ``y`` holds the
    codes of ``classes`` and a row of a label not among them gets -1 (the caller decides what
    to do with it); for regression ``y`` is float. Rows without a target are the caller's to leave
    out before (they have none to encode).
    """
    frame, name = _apply_target_rule(frame, target)
    raw = frame[name]
    X = frame.drop(columns=[name])
    if task == "regression":
        return X, raw.to_numpy(dtype=float)
    return X, pd.Index(list(classes)).get_indexer(raw.to_numpy()).astype(np.int64)


def _dropped(text: str, frame: pd.DataFrame, target: str, source: str) -> tuple[str, ...]:
    """The columns of ``drop=a,b``; refuses unknown ones and the target."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in frame.columns]
    if unknown:
        shown = ", ".join(map(str, frame.columns[:12])) + (", ..." if frame.shape[1] > 12 else "")
        raise MlfleetError(f"drop names {', '.join(unknown)}, not columns of data={source}; its columns are: {shown}")
    if target in names:
        raise MlfleetError(f"drop names the target column {target!r}; take it out of drop, or pass another target")
    return names


_RULE = re.compile(r"^\s*(.+?)\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


def _apply_target_rule(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, str]:
    """``target="quality>=6"``: a 0/1 target from a numeric column (which leaves the features)."""
    match = _RULE.match(target)
    if not match or target in frame.columns:
        return frame, target
    column, op, threshold = match.groups()
    if column not in frame.columns:
        return frame, column  # reported as a missing target column by the caller
    values = pd.to_numeric(frame[column], errors="coerce")
    compare = {">=": values.ge, "<=": values.le, ">": values.gt, "<": values.lt}[op]
    frame = frame.drop(columns=[column]).assign(**{target: compare(float(threshold)).astype(int).where(values.notna())})
    return frame, target


def detect_task(y: pd.Series, target: str = "target") -> str:
    """``classification`` for text, boolean or few-valued integer targets, else ``regression``."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.to_numpy(dtype=float)
    whole = np.all(np.isfinite(values)) and np.all(np.equal(np.mod(values, 1), 0))
    if whole and y.nunique() <= MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def _encode_target(raw_y: pd.Series, target: str, task: str) -> tuple[np.ndarray, tuple]:
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(raw_y) or pd.api.types.is_bool_dtype(raw_y):
            examples = ", ".join(repr(v) for v in raw_y.astype(str).unique()[:3])
            raise MlfleetError(
                f"target {target!r} holds text ({examples}) but regression needs numbers; "
                "use task=classification or another target"
            )
        return raw_y.to_numpy(dtype=float), ()
    classes, codes = np.unique(raw_y.to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise MlfleetError(
            f"target {target!r} has a single class ({classes[0]!r}); classification needs at least two, "
            "so check the target column or the data"
        )
    return codes.astype(np.int64), tuple(c.item() if hasattr(c, "item") else c for c in classes)


def _display_name(source: str) -> str:
    """The file or table name, without folders, suffix or query string (a signed URL's is a secret)."""
    if source in BUILTINS:
        return source
    name = Path(source.split("?", 1)[0].rstrip("/")).name
    for suffix in (".csv", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name or redact(source)


def _digest(X: pd.DataFrame, y: np.ndarray) -> str:
    hashed = pd.util.hash_pandas_object(X, index=False).to_numpy()
    h = hashlib.sha256(hashed.tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    h.update(",".join(map(str, X.columns)).encode())
    return h.hexdigest()[:16]
