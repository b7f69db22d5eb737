"""The train/validation/test split: deterministic from the seed, stratified for classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlfleet.data._columns import ColumnPlan, plan_columns
from mlfleet.data._dataset import Dataset
from mlfleet.errors import MlfleetError

MIN_ROWS = 10


@dataclass(frozen=True)
class Split:
    """Three disjoint parts of a dataset, as raw feature rows and encoded targets.

    The rows hold the columns the plan uses (identifiers, constants and ``drop`` left out),
    so a logged model's signature asks for those and ignores the rest.
    """

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    task: str
    n_classes: int = 0
    classes: tuple = ()  # the original label of each code (classification)
    columns: ColumnPlan | None = None  # the roles, decided from the training rows

    @property
    def plan(self) -> ColumnPlan:
        """The column plan (planned from the training rows when the split was built without one)."""
        return self.columns if self.columns is not None else plan_columns(self.X_train)

    @property
    def X_fit(self) -> pd.DataFrame:
        """Train and validation together: what the chosen parameters are refitted on."""
        return pd.concat([self.X_train, self.X_val], ignore_index=True)

    @property
    def y_fit(self) -> np.ndarray:
        return np.concatenate([self.y_train, self.y_val])


def split_dataset(dataset: Dataset, *, test_size: float = 0.2, val_size: float = 0.2, seed: int = 42) -> Split:
    """Split into train, validation and test; ``test_size``/``val_size`` are shares of all rows.

    Raises MlfleetError when the sizes are out of range or the rows are too few for every
    part (and, for classification, every class in every part).
    """
    from sklearn.model_selection import train_test_split

    if not (0 < test_size < 1 and 0 < val_size < 1 and test_size + val_size < 1):
        raise MlfleetError(
            f"test_size and val_size must be between 0 and 1 and sum below 1, "
            f"but got test_size={test_size}, val_size={val_size}"
        )
    n = len(dataset.y)
    classification = dataset.task == "classification"
    if n < MIN_ROWS:
        raise MlfleetError(
            f"too few rows to split: data={dataset.source} has {n} rows, need at least {MIN_ROWS}; use more data"
        )
    if classification:
        counts = np.bincount(dataset.y, minlength=dataset.n_classes)
        if counts.min() < 3:
            rare = dataset.classes[int(counts.argmin())]
            raise MlfleetError(
                f"too few rows to split: class {rare!r} of target {dataset.target!r} has {counts.min()} row(s) "
                "and every class needs at least 3 (train, validation, test); use more data or drop that class"
            )
    index = np.arange(n)
    try:
        rest, test = train_test_split(
            index, test_size=test_size, random_state=seed, stratify=dataset.y if classification else None
        )
        train, val = train_test_split(
            rest,
            test_size=val_size / (1 - test_size),
            random_state=seed,
            stratify=dataset.y[rest] if classification else None,
        )
    except ValueError as exc:
        raise MlfleetError(f"too few rows to split data={dataset.source} ({n} rows): {exc}; use more data") from None
    X, y = dataset.X, dataset.y
    plan = plan_columns(X.iloc[train], drop=dataset.drop, y=y[train], classes=dataset.classes)
    if not plan.used:
        raise MlfleetError(
            f"data={dataset.source} has no usable feature columns: "
            + "; ".join(f"{c} is {r} ({plan.reasons.get(c, '')})" for c, r in plan.roles.items())
        )
    X = X[plan.used]
    return Split(
        X_train=X.iloc[train].reset_index(drop=True),
        y_train=y[train],
        X_val=X.iloc[val].reset_index(drop=True),
        y_val=y[val],
        X_test=X.iloc[test].reset_index(drop=True),
        y_test=y[test],
        task=dataset.task,
        n_classes=dataset.n_classes,
        classes=dataset.classes,
        columns=plan,
    )
