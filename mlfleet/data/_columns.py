"""Column roles: what each column of the user's table is, decided from its training rows and said out loud.

A fleet that one-hot encodes names and ticket numbers spends its time on noise. Before any
model trains, every feature column gets one role:

- ``numeric``: numbers (imputed with the median, scaled);
- ``boolean``: two-valued text such as yes/no, true/false, Y/N, or a boolean column (0/1);
- ``categorical``: text with at most :data:`MAX_LEVELS` levels (one-hot; levels in under
  :data:`MIN_LEVEL_SHARE` of the training rows share one "infrequent" column);
- ``high_cardinality``: text with more levels, but repeated (target encoding, cross-fitted);
- ``datetime``: dates and times, as text or typed (year, month, day of week, hour);
- ``identifier``: unique or nearly unique per row: text, or integers numbered 1..n or named
  like an id (dropped);
- ``constant``: one value, or none (dropped);
- ``dropped``: named by the user in ``drop``.

Why target encoding for the high-cardinality ones rather than hashing: it gives one column
per level set (k for k classes) whatever the number of levels, it carries the level's
signal instead of spreading it over colliding buckets, and scikit-learn's ``TargetEncoder``
cross-fits it inside ``fit_transform``, so the training rows never see their own target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlfleet.errors import MlfleetError

ROLES = (
    "numeric",
    "boolean",
    "categorical",
    "high_cardinality",
    "datetime",
    "identifier",
    "constant",
    "dropped",
)
DROPPED_ROLES = ("identifier", "constant", "dropped")

#: text with more distinct values than this is target-encoded instead of one-hot encoded
MAX_LEVELS = 20
#: a level seen in under this share of the training rows joins the "infrequent" column
MIN_LEVEL_SHARE = 0.01
#: text whose distinct values are at least this share of its values is an identifier or free text
TEXT_ID_SHARE = 0.5
#: an integer column whose distinct values are at least this share of its values is an identifier
INTEGER_ID_SHARE = 0.99
#: a name that says identifier (with nearly unique integers, however spread)
ID_NAME = re.compile(r"(^|[_\s.])(id|key|uuid|index)$|^unnamed", re.IGNORECASE)
#: below this many values a column is too short to call an identifier
MIN_ID_ROWS = 20
#: a text column whose values parse as dates at least this often is a date column
DATE_SHARE = 0.9
#: a text column whose values parse as numbers this often, but not always, mixes types
NUMBER_SHARE = 0.9
BOOLEAN_PAIRS = ({"yes", "no"}, {"true", "false"}, {"y", "n"}, {"t", "f"})
DATE_PARTS = ("year", "month", "day_of_week", "hour")
#: classification whose smallest class is under this share of the rows is imbalanced
IMBALANCE_SHARE = 0.2
#: the roles the printed plan names column by column, and how
DESCRIBED = (
    ("identifier", "dropped as identifiers"),
    ("constant", "dropped as constant"),
    ("dropped", "dropped by drop="),
    ("high_cardinality", "target-encoded"),
    ("datetime", "dates, as year/month/weekday/hour"),
)


@dataclass(frozen=True)
class ColumnPlan:
    """Each feature column's role, why, and the class shares of the training rows."""

    roles: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    class_shares: dict[str, float] = field(default_factory=dict)

    def columns(self, *roles: str) -> list[str]:
        return [c for c, r in self.roles.items() if r in roles]

    @property
    def used(self) -> list[str]:
        """The columns the models read, in the table's order."""
        return [c for c, r in self.roles.items() if r not in DROPPED_ROLES]

    @property
    def imbalanced(self) -> bool:
        """Classification whose smallest class is under 20% of the training rows."""
        return bool(self.class_shares) and min(self.class_shares.values()) < IMBALANCE_SHARE

    def describe(self) -> str:
        """Lines for the terminal: the counts, then what was dropped, encoded or parsed and why, the classes."""
        counts = ", ".join(f"{role} {len(self.columns(role))}" for role in ROLES[:5] if self.columns(role))
        lines = [f"columns: {len(self.roles)} in, {len(self.used)} used ({counts or 'none'})"]
        for role, verb in DESCRIBED:
            if self.columns(role):
                named = ", ".join(f"{c} ({self.reasons.get(c, role)})" for c in self.columns(role))
                lines.append(f"  {verb}: {named}")
        if self.class_shares:
            shares = ", ".join(f"{label} {share:.0%}" for label, share in self.class_shares.items())
            note = (
                "; the smallest is under 20%, so class_weight=balanced is a tuned choice where the family has it"
                if self.imbalanced
                else ""
            )
            lines.append(f"  classes: {shares}{note}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "columns": [{"name": c, "role": r, "reason": self.reasons.get(c, "")} for c, r in self.roles.items()],
            "used": self.used,
            "drop": list(self.drop),
            "class_shares": self.class_shares,
            "imbalanced": self.imbalanced,
        }

    def summary(self) -> str:
        """A tag-sized line: each role with its columns."""
        parts = [f"{role}={','.join(map(str, self.columns(role)))}" for role in ROLES if self.columns(role)]
        return "; ".join(parts)[:5000]

    def tags(self) -> dict[str, str]:
        """What the parent run records next to the dataset digest (``drop`` is a parameter already)."""
        return {"columns": self.summary()}

    def documents(self) -> dict[str, dict]:
        return {"columns.json": self.to_json()}


def plan_columns(
    X: pd.DataFrame, *, drop: tuple[str, ...] = (), y: np.ndarray | None = None, classes: tuple = ()
) -> ColumnPlan:
    """The role of every column of ``X`` (the training rows), with the user's ``drop``.

    ``y`` and ``classes`` (classification) give the class shares. Raises MlfleetError for a
    column that mixes numbers and text that cannot be read as either.
    """
    roles: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for name in X.columns:
        if name in drop:
            roles[name], reasons[name] = "dropped", "drop="
            continue
        roles[name], reasons[name] = _role(X[name], str(name))
    shares = {}
    if y is not None and classes:
        counts = np.bincount(np.asarray(y), minlength=len(classes))
        shares = {str(label): float(n) / max(1, len(y)) for label, n in zip(classes, counts, strict=True)}
    return ColumnPlan(roles, reasons, tuple(drop), shares)


def _role(column: pd.Series, name: str) -> tuple[str, str]:
    values = column.dropna()
    n, distinct = len(values), int(values.nunique())
    if distinct <= 1:
        return "constant", "no values" if n == 0 else f"always {values.iloc[0]!r}"
    if pd.api.types.is_bool_dtype(column):
        return "boolean", "true/false"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime", "a date column"
    if pd.api.types.is_numeric_dtype(column):
        if pd.api.types.is_integer_dtype(column) and n >= MIN_ID_ROWS and distinct >= INTEGER_ID_SHARE * n:
            numbered = int(values.max()) - int(values.min()) < 2 * n  # 1..n, or a block of ids
            if numbered or ID_NAME.search(name):
                return "identifier", f"{distinct} distinct integers in {n} rows"
        return "numeric", ""
    text = values.astype(str).str.strip()
    if distinct == 2 and set(text.str.lower().unique()) in BOOLEAN_PAIRS:
        return "boolean", "/".join(sorted(text.unique()))
    if _looks_like_dates(text):
        return "datetime", "dates as text"
    if n >= MIN_ID_ROWS and distinct >= TEXT_ID_SHARE * n:
        return "identifier", f"{distinct} distinct values in {n} rows"
    if distinct > MAX_LEVELS:
        return "high_cardinality", f"{distinct} levels"
    return "categorical", f"{distinct} levels"


def check_types(X: pd.DataFrame) -> None:
    """Refuse a column that mixes value types, or is mostly numbers with some text, over all the rows.

    A model could read such a column neither as numbers nor as levels; the rows that break
    it may be anywhere in the file, so every row is looked at, not only the training ones.
    """
    for name in X.columns:
        column = X[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)):
            _check_mixed(column.dropna(), str(name))


def _check_mixed(values: pd.Series, name: str) -> None:
    if values.dtype == object and values.map(type).nunique() > 1:  # (a text dtype holds text only)
        kinds = ", ".join(sorted({type(v).__name__ for v in values}))
        raise MlfleetError(f"column {name!r} mixes value types ({kinds}); store it as one type, or pass drop={name}")
    numbers = pd.to_numeric(values, errors="coerce")
    parsed = float(numbers.notna().mean())
    if NUMBER_SHARE <= parsed < 1.0:
        text = values[numbers.isna()].astype(str)
        examples = ", ".join(repr(v) for v in text.unique()[:3])
        raise MlfleetError(
            f"column {name!r} is numbers in {parsed:.0%} of its rows but text in {len(text)} ({examples}); "
            f"mark those as missing (empty cells), or pass drop={name}"
        )


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.iloc[:200]
    if not sample.str.contains(r"\d", regex=True).all() or not sample.str.contains(r"[-/:]", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return float(parsed.notna().mean()) >= DATE_SHARE
