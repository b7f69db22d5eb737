"""The train/validation/test split: deterministic from the seed, stratified for classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlfleet.data._columns import ColumnPlan, plan_columns
from mlfleet.data._dataset import Dataset
from mlfleet.data._sources import check_sample_fits
from mlfleet.errors import MlfleetError

MIN_ROWS = 10
#: the seed that halves the test rows into the gate's and the report's (see :meth:`Split.test_halves`)
HALVES_SEED = 0


def split_key(*, test_size: float, val_size: float, seed: int) -> str:
    """What decides, given the data (its digest), which rows train, validate and test: ``seed=42,test_size=0.2,...``.

    Two models compare only when both the digest and this key are equal: otherwise one may
    have trained on rows the other is tested on.
    """
    return f"seed={seed},test_size={test_size:g},val_size={val_size:g}"


@dataclass(frozen=True)
class Split:
    """Three disjoint parts of a dataset, as raw feature rows and encoded targets.

    The rows hold the columns the plan uses (identifiers, constants and ``drop`` left out),
    so a logged model's signature asks for those and ignores the rest. Training and
    validation rows are held as one frame, training first (``X_fit``, what the chosen
    parameters are refitted on), and ``X_train``/``X_val`` are views of it: a refit does not
    copy the rows again, and the split goes into Ray's object store as the rows once.
    Build one with :meth:`of`.
    """

    X_fit: pd.DataFrame
    y_fit: np.ndarray
    n_train: int
    X_test: pd.DataFrame
    y_test: np.ndarray
    task: str
    n_classes: int = 0
    classes: tuple = ()  # the original label of each code (classification)
    columns: ColumnPlan | None = None  # the roles, decided from the training rows
    key: str = ""  # :func:`split_key` of the parameters that made it
    #: with a sample of the training rows (``train_rows``): how many training rows it was drawn from; else 0
    train_pool: int = 0

    @classmethod
    def of(cls, X_train, y_train, X_val, y_val, X_test, y_test, task: str, n_classes: int = 0, **rest) -> Split:
        """The split of these parts (the training and validation rows are copied into one frame)."""
        X_fit = pd.concat([X_train, X_val], ignore_index=True)
        y_fit = np.concatenate([np.asarray(y_train), np.asarray(y_val)])
        return cls(
            X_fit, y_fit, len(X_train), X_test.reset_index(drop=True), np.asarray(y_test), task, n_classes, **rest
        )

    def with_parts(self, **parts) -> Split:
        """This split with some of ``X_train``, ``y_train``, ``X_val``, ``y_val`` replaced."""
        names = ("X_train", "y_train", "X_val", "y_val")
        kept = {name: parts.pop(name, getattr(self, name)) for name in names}
        if parts:
            raise TypeError(f"with_parts() takes {', '.join(names)}, not {', '.join(parts)}")
        return Split.of(
            **kept,
            X_test=self.X_test,
            y_test=self.y_test,
            task=self.task,
            n_classes=self.n_classes,
            classes=self.classes,
            columns=self.columns,
            key=self.key,
        )

    @property
    def X_train(self) -> pd.DataFrame:
        return self.X_fit.iloc[: self.n_train]

    @property
    def y_train(self) -> np.ndarray:
        return self.y_fit[: self.n_train]

    @property
    def X_val(self) -> pd.DataFrame:
        return self.X_fit.iloc[self.n_train :].reset_index(drop=True)

    @property
    def y_val(self) -> np.ndarray:
        return self.y_fit[self.n_train :]

    def test_halves(self) -> tuple[np.ndarray, np.ndarray]:
        """The test rows in two fixed halves, ``(gate, report)``: positions into ``X_test``.

        The promotion gate compares two models on the first half; what the analysis reports of
        the model it chose is measured on the second, rows that nothing chose on. Stratified by
        class where every class has two test rows; the same split always gives the same halves.
        """
        from sklearn.model_selection import train_test_split

        index = np.arange(len(self.y_test))
        if len(index) < 2:
            return index, index[:0]
        counts = np.bincount(self.y_test) if self.task == "classification" else np.array([])
        stratify = self.y_test if len(counts) and counts[counts > 0].min() >= 2 else None
        gate, report = train_test_split(index, test_size=0.5, random_state=HALVES_SEED, stratify=stratify)
        return np.sort(gate), np.sort(report)

    @property
    def plan(self) -> ColumnPlan:
        """The column plan (planned from the training rows when the split was built without one)."""
        return self.columns if self.columns is not None else plan_columns(self.X_train)


def split_dataset(
    dataset: Dataset, *, test_size: float = 0.2, val_size: float = 0.2, seed: int = 42, train_rows: int = 0
) -> Split:
    """Split into train, validation and test; ``test_size``/``val_size`` are shares of all rows.

    ``train_rows`` above 0 keeps a sample of that many training rows (stratified by class, drawn
    with the seed; see :func:`sample_rows`); the validation and test rows are the ones the whole
    table gives, so the scores compare with a sweep on every row (the split's key is the same).
    Raises MlfleetError when the sizes are out of range, the rows are too few for every part
    (and, for classification, every class in every part), or ``train_rows`` cannot be drawn.
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
    pool = len(train)
    if train_rows:
        train = sample_rows(train, y if classification else None, train_rows, seed=seed, source=dataset.source)
        check_sample_fits(X, y, len(train) + len(val) + len(test), dataset.source)
    plan = plan_columns(X.iloc[train], drop=dataset.drop, y=y[train], classes=dataset.classes)
    if not plan.used:
        raise MlfleetError(
            f"data={dataset.source} has no usable feature columns: "
            + "; ".join(f"{c} is {r} ({plan.reasons.get(c, '')})" for c, r in plan.roles.items())
        )
    X = X[plan.used]
    fit = np.concatenate([train, val])
    return Split(
        X_fit=X.iloc[fit].reset_index(drop=True),
        y_fit=y[fit],
        n_train=len(train),
        X_test=X.iloc[test].reset_index(drop=True),
        y_test=y[test],
        task=dataset.task,
        n_classes=dataset.n_classes,
        classes=dataset.classes,
        columns=plan,
        key=split_key(test_size=test_size, val_size=val_size, seed=seed),
        train_pool=pool if train_rows else 0,
    )


def sample_rows(index: np.ndarray, y: np.ndarray | None, rows: int, *, seed: int, source: str = "") -> np.ndarray:
    """``rows`` of the positions ``index``, drawn with ``seed``, in their order in ``index``.

    With ``y`` (class codes of every row) the sample is stratified: each class gets its share of
    ``rows`` (largest remainders) and at least one row. Raises MlfleetError, naming ``sample``,
    when ``rows`` is below 0, above ``len(index)``, or fewer than the classes.
    """
    if rows < 0 or rows > len(index):
        raise MlfleetError(
            f"sample must be between 0 (every training row) and the {len(index)} training rows of data={source}, "
            f"but got sample={rows}; give a number of training rows up to {len(index)}, or 0 for all of them"
        )
    rng = np.random.default_rng(seed)
    if y is None:
        return index[np.sort(rng.choice(len(index), rows, replace=False))] if rows < len(index) else index
    codes = y[index]
    present, inverse = np.unique(codes, return_inverse=True)
    if rows < len(present):
        raise MlfleetError(
            f"sample={rows} training rows cannot hold each of the {len(present)} classes of data={source}; "
            f"give sample={len(present)} or more, or 0 for every training row"
        )
    if rows == len(index):
        return index
    counts = np.bincount(inverse)
    exact = rows * counts / counts.sum()
    quotas = np.maximum(np.floor(exact).astype(int), 1)
    while quotas.sum() > rows:  # the classes raised to one row are paid for by the others
        above = np.flatnonzero(quotas > 1)
        quotas[above[np.argmax((quotas - exact)[above])]] -= 1
    while quotas.sum() < rows:
        spare = np.flatnonzero(quotas < counts)
        quotas[spare[np.argmax((exact - quotas)[spare])]] += 1
    chosen = [rng.choice(np.flatnonzero(inverse == k), q, replace=False) for k, q in enumerate(quotas)]
    return index[np.sort(np.concatenate(chosen))]
