"""Where a dataset comes from: built-in names, files (CSV, Parquet), Delta tables and Spark tables."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mlfleet.errors import MlfleetError, first_line

FILE_SUFFIXES = (".csv", ".parquet", ".pq")


def _synthetic_classification(n_samples: int, n_features: int, seed: int) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    n_informative, n_redundant = _informative_split(n_features)
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=n_redundant,
        n_classes=2,
        flip_y=0.03,
        class_sep=0.8,
        random_state=seed,
    )
    return _frame(X, y)


def _synthetic_regression(n_samples: int, n_features: int, seed: int) -> pd.DataFrame:
    # make_regression has no redundant features; build them as noisy mixes of the
    # informative ones so that feature selection has something to find.
    rng = np.random.default_rng(seed)
    n_informative, n_redundant = _informative_split(n_features)
    informative = rng.normal(size=(n_samples, n_informative))
    coef = rng.uniform(1.0, 10.0, size=n_informative) * rng.choice([-1, 1], size=n_informative)
    y = informative @ coef + 0.5 * informative[:, 0] * informative[:, -1] + rng.normal(scale=2.0, size=n_samples)
    redundant = informative @ rng.normal(size=(n_informative, n_redundant)) + rng.normal(
        scale=0.1, size=(n_samples, n_redundant)
    )
    noise = rng.normal(size=(n_samples, n_features - n_informative - n_redundant))
    X = np.hstack([informative, redundant, noise])[:, rng.permutation(n_features)]
    return _frame(X, y)


def _informative_split(n_features: int) -> tuple[int, int]:
    n_informative = max(2, n_features // 4)
    n_redundant = max(0, min(n_features - n_informative, n_features // 5))
    return n_informative, n_redundant


def _frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    width = len(str(X.shape[1] - 1))
    frame = pd.DataFrame(X, columns=[f"f{i:0{width}d}" for i in range(X.shape[1])])
    frame["target"] = y
    return frame


def _sklearn_bundled(loader_name: str) -> Callable[[int, int, int], pd.DataFrame]:
    def load(n_samples: int, n_features: int, seed: int) -> pd.DataFrame:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
        frame = bunch.frame.copy()
        return frame.rename(columns={bunch.target.name: "target"})

    return load


def _california_housing(n_samples: int, n_features: int, seed: int) -> pd.DataFrame:
    from sklearn.datasets import fetch_california_housing

    try:
        bunch = fetch_california_housing(as_frame=True)
    except Exception as exc:  # URLError, HTTPError, socket errors: all mean "not reachable"
        raise MlfleetError(
            "data=california_housing needs the internet or scikit-learn's cache (~/scikit_learn_data) "
            f"and neither is available ({type(exc).__name__}); pass the CSV instead: "
            "data=path/to/california-housing.csv target=median_house_value"
        ) from None
    return bunch.frame.rename(columns={bunch.target.name: "target"})


#: name -> (loader(n_samples, n_features, seed), task the set is made for)
BUILTINS: dict[str, tuple[Callable[[int, int, int], pd.DataFrame], str]] = {
    "synthetic": (_synthetic_classification, "classification"),
    "synthetic_regression": (_synthetic_regression, "regression"),
    "diabetes": (_sklearn_bundled("load_diabetes"), "regression"),
    "breast_cancer": (_sklearn_bundled("load_breast_cancer"), "classification"),
    "wine": (_sklearn_bundled("load_wine"), "classification"),
    "iris": (_sklearn_bundled("load_iris"), "classification"),
    "california_housing": (_california_housing, "regression"),
}


def read_source(source: str, *, task: str, n_samples: int, n_features: int, seed: int) -> tuple[pd.DataFrame, str]:
    """Load ``source`` as a DataFrame; return it with the name of its default target column.

    ``synthetic`` follows ``task``: with ``task=regression`` it is the regression variant.
    Raises MlfleetError for an unknown name, a missing file or an unreadable format.
    """
    if source == "synthetic" and task == "regression":
        source = "synthetic_regression"
    if source in BUILTINS:
        if source.startswith("synthetic"):
            if n_samples < 1 or n_features < 2:
                raise MlfleetError(
                    f"synthetic data needs n_samples >= 1 and n_features >= 2, "
                    f"but got n_samples={n_samples}, n_features={n_features}"
                )
        loader, _ = BUILTINS[source]
        return loader(n_samples, n_features, seed), "target"
    frame = _read_file_or_table(source)
    return frame, ("target" if "target" in frame.columns else str(frame.columns[-1]))


def _is_remote(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def _read_file_or_table(source: str) -> pd.DataFrame:
    from mlfleet.stores import spark

    if spark.is_table_name(source):  # catalog.schema.table, through the driver's SparkSession
        return _read(spark.read_data, source, source)
    local = source.removeprefix("file://")
    lowered = source.lower()
    if not _is_remote(source):
        path = Path(local)
        if not path.exists():
            if os.sep not in source and not lowered.endswith(FILE_SUFFIXES):
                raise MlfleetError(
                    f"unknown data {source!r}: not a built-in dataset and no such file; "
                    f"use one of {', '.join(BUILTINS)} or a path to a CSV, Parquet file or Delta table "
                    "(or a Spark table, catalog.schema.table)"
                )
            raise MlfleetError(
                f"data file not found: {source}; check the path (relative paths start at the current directory)"
            )
        if path.is_dir():
            if (path / "_delta_log").is_dir():
                return _read_delta(str(path))
            if any(path.glob("*.parquet")):
                return _read(pd.read_parquet, str(path), source)
            raise MlfleetError(f"data={source} is a folder with neither a Delta log (_delta_log/) nor Parquet files")
    if lowered.endswith(".csv"):
        return _read(pd.read_csv, local, source)
    if lowered.endswith((".parquet", ".pq")):
        return _read(pd.read_parquet, local, source)
    if _is_remote(source):
        return _read_delta(source)
    raise MlfleetError(f"data={source}: unknown file type; use a .csv or .parquet file or a Delta table folder")


def _read(reader: Callable[[str], pd.DataFrame], location: str, source: str) -> pd.DataFrame:
    try:
        frame = reader(location)
    except MlfleetError:
        raise
    except Exception as exc:
        raise MlfleetError(f"cannot read data={source}: {first_line(exc)}") from None
    if frame.empty or frame.shape[1] < 2:
        raise MlfleetError(
            f"data={source} needs rows and at least two columns (features and a target), but has shape {frame.shape}"
        )
    return frame


def _read_delta(uri: str) -> pd.DataFrame:
    from mlfleet.stores.delta import read_table

    return _read(read_table, uri, uri)
