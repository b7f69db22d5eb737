import numpy as np
import pandas as pd
import pytest
from deltalake import write_deltalake

from mlfleet.config import DataConfig
from mlfleet.data import build_preprocessor, detect_task, load_dataset, split_dataset
from mlfleet.errors import MlfleetError


@pytest.mark.parametrize(
    ("source", "task", "n_classes"),
    [
        ("synthetic", "classification", 2),
        ("diabetes", "regression", 0),
        ("breast_cancer", "classification", 2),
        ("wine", "classification", 3),
    ],
)
def test_builtin_sets_load_with_their_task(source, task, n_classes):
    ds = load_dataset(DataConfig(source=source, n_samples=200))
    assert ds.task == task
    assert ds.n_classes == n_classes
    assert len(ds.X) == len(ds.y) > 100
    assert ds.target not in ds.X.columns


def test_synthetic_has_informative_redundant_and_noise_features_and_follows_task():
    clf = load_dataset(DataConfig(n_samples=500, n_features=20))
    reg = load_dataset(DataConfig(n_samples=500, n_features=20, task="regression"))
    assert clf.X.shape == reg.X.shape == (500, 20)
    assert reg.task == "regression" and reg.y.dtype == float
    # noise features barely correlate with the target; informative ones do
    corr = np.abs([np.corrcoef(reg.X[c], reg.y)[0, 1] for c in reg.X.columns])
    assert (corr < 0.1).sum() >= 5 and (corr > 0.2).sum() >= 3


def test_synthetic_is_deterministic_from_seed():
    a, b = load_dataset(DataConfig(seed=1, n_samples=100)), load_dataset(DataConfig(seed=1, n_samples=100))
    c = load_dataset(DataConfig(seed=2, n_samples=100))
    assert a.digest == b.digest != c.digest


def test_csv_with_text_and_missing_values(mixed_csv):
    ds = load_dataset(DataConfig(source=str(mixed_csv), target="churn"))
    assert ds.task == "classification"
    assert ds.classes == ("no", "yes")
    assert set(np.unique(ds.y)) == {0, 1}
    assert ds.X["segment"].isna().any() and ds.X["income"].isna().any()
    prep = build_preprocessor(ds.X).fit(ds.X)
    out = prep.transform(ds.X)
    assert not np.isnan(out).any() and out.shape[1] == 3 + 3  # three numbers, three one-hot segments


def test_default_target_is_the_last_column(mixed_csv):
    assert load_dataset(DataConfig(source=str(mixed_csv))).target == "churn"


def test_parquet_and_delta_sources_read_the_same_rows(tmp_path, mixed_csv):
    frame = pd.read_csv(mixed_csv)
    frame.to_parquet(tmp_path / "c.parquet")
    write_deltalake(str(tmp_path / "delta"), frame)
    from_csv = load_dataset(DataConfig(source=str(mixed_csv), target="churn"))
    for source in (tmp_path / "c.parquet", tmp_path / "delta"):
        ds = load_dataset(DataConfig(source=str(source), target="churn"))
        assert ds.digest == from_csv.digest


def test_task_detection():
    assert detect_task(pd.Series(["a", "b"])) == "classification"
    assert detect_task(pd.Series([0, 1, 2, 1])) == "classification"
    assert detect_task(pd.Series([True, False])) == "classification"
    assert detect_task(pd.Series(np.linspace(0, 1, 50))) == "regression"
    assert detect_task(pd.Series(np.arange(100))) == "regression"


def test_task_can_be_forced(mixed_csv):
    ds = load_dataset(DataConfig(source=str(mixed_csv), target="visits", task="regression"))
    assert ds.task == "regression"
    assert load_dataset(DataConfig(source=str(mixed_csv), target="visits")).task == "classification"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DataConfig(source="nonsense"), r"unknown data 'nonsense': not a built-in dataset"),
        (DataConfig(source="missing/file.csv"), r"data file not found: missing/file.csv"),
        (DataConfig(source="missing.parquet"), r"data file not found"),
        (
            DataConfig(source="synthetic", target="label"),
            r"target column 'label' is not in data=synthetic; its columns are: f00",
        ),
    ],
)
def test_bad_sources_name_the_problem(config, message):
    with pytest.raises(MlfleetError, match=message):
        load_dataset(config)


def test_one_class_target_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": range(30), "y": ["same"] * 30}).to_csv(path, index=False)
    with pytest.raises(MlfleetError, match=r"single class \('same'\)"):
        load_dataset(DataConfig(source=str(path), target="y"))


def test_text_target_for_regression_is_refused(mixed_csv):
    with pytest.raises(
        MlfleetError, match=r"target 'churn' holds text .* regression needs numbers; use task=classification"
    ):
        load_dataset(DataConfig(source=str(mixed_csv), target="churn", task="regression"))


def test_california_housing_offline_says_to_pass_a_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "empty_cache"))
    try:
        load_dataset(DataConfig(source="california_housing"))
    except MlfleetError as exc:
        assert "data=path/to/california-housing.csv" in str(exc)
        assert "\n" not in str(exc)
    else:
        pytest.skip("this machine reached the internet: the fetcher worked")


def test_split_is_disjoint_deterministic_and_stratified():
    ds = load_dataset(DataConfig(source="wine"))
    a = split_dataset(ds, seed=3)
    b = split_dataset(ds, seed=3)
    assert a.X_train.equals(b.X_train) and np.array_equal(a.y_test, b.y_test)
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == len(ds.y)
    rows = [tuple(r) for part in (a.X_train, a.X_val, a.X_test) for r in part.itertuples(index=False)]
    assert len(set(rows)) == len(rows)
    share = np.bincount(ds.y) / len(ds.y)
    for y in (a.y_train, a.y_val, a.y_test):
        assert np.allclose(np.bincount(y, minlength=3) / len(y), share, atol=0.06)
    assert not split_dataset(ds, seed=4).X_train.equals(a.X_train)


@pytest.mark.parametrize("rows", [5, 9])
def test_too_few_rows_to_split(tmp_path, rows):
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"x": range(rows), "y": np.linspace(0, 1, rows)}).to_csv(path, index=False)
    ds = load_dataset(DataConfig(source=str(path)))
    with pytest.raises(MlfleetError, match=rf"too few rows to split: .* has {rows} rows, need at least 10"):
        split_dataset(ds)


def test_a_class_too_rare_to_split(tmp_path):
    path = tmp_path / "rare.csv"
    pd.DataFrame({"x": range(40), "y": ["a"] * 38 + ["b"] * 2}).to_csv(path, index=False)
    with pytest.raises(MlfleetError, match=r"class 'b' of target 'y' has 2 row\(s\)"):
        split_dataset(load_dataset(DataConfig(source=str(path))))


def test_a_dataset_without_rows_keeps_its_columns_and_none_of_their_memory():
    """What the sweep's driver keeps of the rows it read once the split holds them (issue 32): a 0-row
    slice would be a view that keeps every block of the table alive."""
    import gc
    import tracemalloc

    from mlfleet.data import Dataset

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(50_000, 8)), columns=[f"x{i}" for i in range(8)])
    frame["city"] = rng.choice(["Lyon", "Oslo"], len(frame))
    frame["n"] = rng.integers(0, 9, len(frame))
    tracemalloc.start()
    try:
        dataset = Dataset("t", "t.parquet", frame.copy(), np.zeros(len(frame)), "regression", "y")
        held = tracemalloc.get_traced_memory()[0]
        empty = dataset.without_rows()
        sliced = dataset.X.iloc[:0]
        del dataset
        gc.collect()
        with_slice = tracemalloc.get_traced_memory()[0]
        del sliced
        gc.collect()
        left = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held > 3_000_000 and with_slice > held * 0.6  # the slice kept the numbers' block
    assert left < 500_000, left  # the target (400 kB) stays: the sweep counts its rows
    assert list(empty.X.columns) == list(frame.columns) and list(empty.X.dtypes) == list(frame.dtypes)
    assert len(empty.X) == 0
