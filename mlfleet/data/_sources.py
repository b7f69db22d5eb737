"""Where a dataset comes from: built-in names, files (CSV, Parquet), Delta tables and Spark tables."""

from __future__ import annotations

import functools
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mlfleet import settings
from mlfleet.errors import MlfleetError, first_line
from mlfleet.locations import SPARK_TABLE, place

FILE_SUFFIXES = (".csv", ".parquet", ".pq")

#: A sweep's driver holds the rows it read (the dataset), the split's copy of them and, once
#: Ray has it, the object store's copy: about three times the table before any model makes
#: its own. A table that needs more than is available cannot train here, so it is refused
#: before anything starts (what a model adds: docs/performance.md#a-big-table).
MEMORY_MULTIPLE = 3
#: With a sample of the training rows (``sample=ROWS``) the driver holds the table once while it
#: splits it, then only the rows it keeps (validation, test and the sample), twice: a sample that
#: keeps at most half the rows needs twice the table at most (and is checked again once split).
SAMPLED_MULTIPLE = 2
#: overrides the memory that counts as available (bytes): for tests, or to state a limit
MEMORY_ENV = "MLFLEET_MEMORY_BYTES"
#: rows read to measure a Parquet table's bytes per row in pandas (text columns vary in width)
SAMPLE_ROWS = 10_000

log = logging.getLogger(__name__)


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


def _messy(n_samples: int, n_features: int, seed: int) -> pd.DataFrame:
    """A customer table with every column kind a real CSV brings, and a 10:1 class imbalance.

    Identifiers, names and notes (unique per row), dates as text, a 150-level city, rare plan
    levels, yes/no and Y/N columns, missing values, a constant column; the target ``churned``
    (yes/no) depends on age, income, visits, plan, city, activity and the signup month.
    """
    rng = np.random.default_rng(seed)
    n = n_samples
    first = np.array(["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"])
    last = np.array(["Smith", "Okafor", "Garcia", "Novak", "Tanaka", "Muller", "Rossi", "Silva", "Kim", "Haddad"])
    cities = np.array([f"city_{i:03d}" for i in range(150)])
    city_effect = rng.normal(0, 1.0, len(cities))
    plans = np.array(["basic", "plus", "pro", "team", "legacy-a", "legacy-b", "trial-x"])
    plan_p = np.array([0.45, 0.25, 0.15, 0.13, 0.008, 0.007, 0.005])
    plan_effect = np.array([0.8, 0.2, -0.5, -0.8, 1.0, 1.0, 1.5])
    city = rng.integers(0, len(cities), n)
    plan = rng.choice(len(plans), n, p=plan_p)
    age = rng.normal(42, 12, n).clip(18, 90).round()
    income = np.exp(rng.normal(10.5, 0.6, n)).round(2)
    visits = rng.poisson(6, n)
    active = rng.random(n) < 0.7
    signup = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, n), unit="D")
    seen = signup + pd.to_timedelta(rng.integers(0, 400 * 24, n), unit="h")
    logit = (
        -2.7
        + 0.03 * (age - 42)
        - 0.8 * (np.log(income) - 10.5)
        - 0.15 * (visits - 6)
        + plan_effect[plan]
        + city_effect[city]
        - 0.9 * active
        + 0.6 * np.isin(signup.month, (11, 12, 1))
    )
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "customer_id": rng.permutation(n) + 100_000,
            "name": [
                f"{a} {b} {i}" for i, (a, b) in enumerate(zip(rng.choice(first, n), rng.choice(last, n), strict=True))
            ],
            "signup_date": signup.strftime("%Y-%m-%d"),
            "last_seen": seen.strftime("%Y-%m-%d %H:%M"),
            "city": cities[city],
            "plan": plans[plan],
            "is_active": np.where(active, "yes", "no"),
            "newsletter": rng.choice(["Y", "N"], n),
            "age": age,
            "income": income,
            "visits": visits,
            "notes": [f"ticket #{rng.integers(1e6)}: call back" for _ in range(n)],
            "source": "web",
            "churned": np.where(churned, "yes", "no"),
        }
    )
    for column, share in (("age", 0.08), ("income", 0.05), ("newsletter", 0.1), ("plan", 0.02)):
        frame.loc[rng.random(n) < share, column] = np.nan
    return frame.rename(columns={"churned": "target"})


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
    "messy": (_messy, "classification"),
}


def read_source(
    source: str, *, task: str, n_samples: int, n_features: int, seed: int, sampled: bool = False
) -> tuple[pd.DataFrame, str]:
    """Load ``source`` as a DataFrame; return it with the name of its default target column.

    ``sampled``: the caller keeps only a sample of the training rows (the memory check asks for less).

    ``synthetic`` follows ``task``: with ``task=regression`` it is the regression variant.
    Raises MlfleetError for an unknown name, a missing file or an unreadable format.
    """
    if source == "synthetic" and task == "regression":
        source = "synthetic_regression"
    if source in BUILTINS:
        if source.startswith("synthetic") or source == "messy":
            if n_samples < 1 or n_features < 2:
                raise MlfleetError(
                    f"synthetic data needs n_samples >= 1 and n_features >= 2, "
                    f"but got n_samples={n_samples}, n_features={n_features}"
                )
        loader, _ = BUILTINS[source]
        return loader(n_samples, n_features, seed), "target"
    frame = _read_file_or_table(source, SAMPLED_MULTIPLE if sampled else MEMORY_MULTIPLE)
    return frame, ("target" if "target" in frame.columns else str(frame.columns[-1]))


def _read_file_or_table(source: str, multiple: float = MEMORY_MULTIPLE) -> pd.DataFrame:
    from mlfleet.stores import spark

    where = place(source)
    if where.kind == SPARK_TABLE:  # catalog.schema.table, through the driver's SparkSession
        return _read(spark.read_data, source, source)
    local = source.removeprefix("file://")
    lowered = source.lower()
    if not where.is_remote:
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
                _check_fits(_parquet_bytes(str(path)), source, multiple)
                return _read(pd.read_parquet, str(path), source)
            raise MlfleetError(f"data={source} is a folder with neither a Delta log (_delta_log/) nor Parquet files")
    if lowered.endswith(".csv"):
        return _read(functools.partial(_read_csv, multiple=multiple), local, source)
    if lowered.endswith((".parquet", ".pq")):
        if not where.is_remote:
            _check_fits(_parquet_bytes(local), source, multiple)
        return _read(pd.read_parquet, local, source)
    if where.is_remote:
        return _read_delta(source)
    raise MlfleetError(f"data={source}: unknown file type; use a .csv or .parquet file or a Delta table folder")


def _read(reader: Callable[[str], pd.DataFrame], location: str, source: str) -> pd.DataFrame:
    try:
        frame = reader(location)
    except MlfleetError:
        raise
    except Exception as exc:
        raise MlfleetError(f"cannot read data={source}: {first_line(exc)}") from None
    if len(frame) == 0:
        raise MlfleetError(
            f"data={source} has no rows (its columns are {', '.join(map(str, frame.columns[:8]))}); "
            "give a file with rows of data"
        )
    if frame.shape[1] < 2:
        raise MlfleetError(
            f"data={source} needs at least two columns (features and a target), but has {frame.shape[1]}; "
            "if it is a CSV, check its separator is a comma"
        )
    return frame


#: tried in order; Latin-1 reads any bytes, so it is the last resort and said out loud
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
SNIFF_BYTES = 1 << 16


def _read_csv(location: str, multiple: float = MEMORY_MULTIPLE) -> pd.DataFrame:
    """A CSV read as UTF-8 (with or without a byte-order mark), else Windows-1252, else Latin-1.

    Local files are looked at first, so that an empty file, binary bytes, JSON and duplicate
    column names get a line of their own instead of a parser's message.
    """
    if place(location).is_remote:
        return pd.read_csv(location)
    with open(location, "rb") as f:
        head = f.read(SNIFF_BYTES)
    _check_text_table(head, location)
    _check_fits(_csv_bytes(head, os.path.getsize(location)), location, multiple)
    for encoding in ENCODINGS:
        try:
            frame = pd.read_csv(location, encoding=encoding)
        except UnicodeDecodeError:
            continue
        if encoding != ENCODINGS[0]:
            log.info("data=%s is not UTF-8; read it as %s", location, encoding)
        _check_header(head.decode(encoding, errors="replace"), location)
        return frame
    raise AssertionError("Latin-1 decodes any bytes")


def _check_text_table(head: bytes, location: str) -> None:
    if not head.strip():
        raise MlfleetError(f"data={location} is empty; give a CSV with a header row and rows of data")
    if b"\x00" in head[:8192]:
        raise MlfleetError(
            f"data={location} is not a text table (it holds binary bytes); give a CSV, a Parquet file or a Delta table"
        )
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first in (b"{", b"["):
        raise MlfleetError(
            f"data={location} looks like JSON, not a table with a header row; "
            "convert it to CSV or Parquet (pandas: pd.read_json(path, lines=True).to_parquet(...))"
        )


def _check_header(text: str, location: str) -> None:
    import csv
    from collections import Counter

    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])
    repeated = {name: n for name, n in Counter(h.strip() for h in header).items() if n > 1}
    if repeated:
        shown = ", ".join(f"{name!r} ({n} times)" for name, n in repeated.items())
        raise MlfleetError(f"data={location} repeats column names: {shown}; give every column its own name")


def _parquet_bytes(location: str) -> int:
    """The bytes a local Parquet file or folder will take in pandas, estimated without reading it.

    The rows come from the files' footers and the width of number, date and boolean columns
    from the schema; text (any column of varying width) is measured on its first
    :data:`SAMPLE_ROWS` rows, read alone and converted as ``pd.read_parquet`` converts them.
    The footers' uncompressed sizes are no guide: a dictionary-encoded column is a fraction of
    its width in memory. 0 (nothing to check) when pyarrow cannot open it: reading it says why.
    """
    import pyarrow.dataset

    try:
        data = pyarrow.dataset.dataset(location, format="parquet", partitioning="hive")
        rows = data.count_rows()
        bits = {f.name: _bit_width(f.type) for f in data.schema}
        varying = [name for name, width in bits.items() if width is None]
        head = data.head(SAMPLE_ROWS, columns=varying).to_pandas() if varying and rows else pd.DataFrame()
    except Exception:
        return 0
    per_row = sum(max(1, width // 8) for width in bits.values() if width is not None)
    if len(head):
        per_row += head.memory_usage(deep=True, index=False).sum() / len(head)
    return int(rows * per_row)


def _bit_width(arrow_type) -> int | None:
    try:
        return arrow_type.bit_width
    except ValueError:  # strings, lists, structs: no fixed width
        return None


def _csv_bytes(head: bytes, file_size: int) -> int:
    """The bytes a CSV of ``file_size`` will take in pandas, extrapolated from its first rows (``head``).

    0 (nothing to check) when the head holds no complete row or does not parse by itself (a
    quoted field running past it). The first rows' types stand for the file's: a column with
    text further down takes more memory than estimated.
    """
    complete = head[: head.rfind(b"\n") + 1]
    try:
        sample = pd.read_csv(io.BytesIO(complete), encoding="latin-1")
    except Exception:
        return 0
    if len(sample) == 0:
        return 0
    return int(file_size * sample.memory_usage(deep=True, index=False).sum() / len(complete))


def available_memory() -> int:
    """The memory a table may take here, in bytes: what the kernel says is available.

    ``MemAvailable`` of ``/proc/meminfo``, or the cgroup's limit where that is lower (a
    container's ``/proc/meminfo`` shows the host). The limit itself, not the limit less the
    usage: the usage counts page cache, which the kernel gives back. :data:`MEMORY_ENV`
    (``MLFLEET_MEMORY_BYTES``), when set, replaces both: tests set it, and so can a user whose
    machine shares its memory with more than the kernel can see. 0 where nothing can be read
    (not Linux), or set to 0: then nothing is refused.
    """
    given = settings.get(MEMORY_ENV).strip()
    if given:
        if not given.isdigit():
            raise MlfleetError(
                f"{MEMORY_ENV}={given!r} is not a number of bytes; unset it or give one, e.g. 8000000000"
            )
        return int(given)
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except OSError:
        pass
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # cgroup v2 says "max" for no limit; v1 gives a huge number
            found.append(int(text))
    return min(found, default=0)


def _check_fits(table_bytes: int, source: str, multiple: float = MEMORY_MULTIPLE) -> None:
    """Refuse a table whose ``multiple`` times its size in memory is more than is available."""
    available = available_memory()
    needed = int(multiple * table_bytes)
    if available and needed > available:
        if multiple < MEMORY_MULTIPLE:
            raise MlfleetError(
                f"data={source} takes about {_size(table_bytes)} in memory and a sweep on a sample of it needs "
                f"{multiple:g}x that while it reads and splits it, {_size(needed)}, but {_size(available)} is "
                "available; train the ensemble entry point on it (its members read a Parquet or Delta table's "
                "shards on the workers), or run the driver on a machine with more memory"
            )
        raise MlfleetError(
            f"data={source} takes about {_size(table_bytes)} in memory and a sweep needs {multiple:g}x that, "
            f"{_size(needed)}, but {_size(available)} is available; train on a sample of its training rows "
            f"(sample=ROWS: the table once, {SAMPLED_MULTIPLE}x with the rows kept), or run the driver on a machine "
            "with more memory"
        )


def check_sample_fits(frame: pd.DataFrame, y: np.ndarray, kept_rows: int, source: str) -> None:
    """Once a table (features ``frame``, target ``y``) is split with a sample of its training rows: refuse it
    when the table once and the ``kept_rows`` (validation, test and the sample) twice are more than the
    memory available."""
    available = available_memory()
    if not available or not len(frame):
        return
    table_bytes = int(frame.memory_usage(deep=True, index=False).sum()) + np.asarray(y).nbytes
    needed = table_bytes + 2 * table_bytes * kept_rows // len(frame)
    if needed > available:
        spare = max(0, (available - table_bytes) // 2 * len(frame) // table_bytes)
        raise MlfleetError(
            f"data={source} takes about {_size(table_bytes)} in memory and the {kept_rows} rows a sweep keeps of it "
            f"(validation, test and sample=ROWS training rows) need {_size(needed)} with it, but {_size(available)} "
            f"is available; give a smaller sample (the rows kept must stay under about {spare})"
        )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _read_delta(uri: str) -> pd.DataFrame:
    from mlfleet.stores.delta import read_table

    return _read(read_table, uri, uri)
