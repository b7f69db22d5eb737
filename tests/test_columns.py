"""Column roles on real-shaped tables: what is dropped, how text is encoded, sparse features, imbalance, bad tables."""

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from click.testing import CliRunner
from helpers import assert_nothing_written, load_entrypoint

from mlfleet.config import DataConfig
from mlfleet.data import STRATEGIES, build_preprocessor, load_dataset, plan_columns, split_dataset
from mlfleet.errors import MlfleetError
from mlfleet.training.jobs import ModelJob
from mlfleet.training.tuning import balanced, build_pipeline, fit_front, tune_and_fit
from mlfleet.zoo import family


def messy_split(**config):
    return split_dataset(load_dataset(DataConfig(source="messy", n_samples=1500, **config)), seed=0)


def job(name: str, strategy: str = "all") -> ModelJob:
    return ModelJob(0, name, strategy, 1, 0.0, 0, 1.0)


def test_the_messy_table_gets_every_role_and_says_so():
    split = messy_split()
    plan = split.plan
    assert plan.columns("identifier") == ["customer_id", "name", "notes"]
    assert plan.columns("constant") == ["source"]
    assert plan.columns("high_cardinality") == ["city"]
    assert plan.columns("datetime") == ["signup_date", "last_seen"]
    assert plan.columns("boolean") == ["is_active", "newsletter"]
    assert plan.columns("categorical") == ["plan"]
    assert plan.columns("numeric") == ["age", "income", "visits"]
    assert list(split.X_train.columns) == plan.used  # the model's input: what it reads, nothing more
    text = plan.describe()
    assert "dropped as identifiers: customer_id" in text and "target-encoded: city (150 levels)" in text
    assert "classes: no 9" in text and "class_weight=balanced" in text
    assert plan.imbalanced


def test_identifiers_and_names_are_never_one_hot_encoded_and_features_stay_few():
    split = messy_split()
    prep = build_preprocessor(split.plan).fit(split.X_train, split.y_train)
    names = list(prep.get_feature_names_out())
    assert len(names) <= 30, names
    assert not any(n.startswith(("name", "notes", "customer_id", "source")) for n in names)
    assert "city" in names  # one target-encoded column for 150 levels
    # rare plan levels share one column instead of one each
    plan_columns_out = [n for n in names if n.startswith("plan_")]
    assert "plan_infrequent_sklearn" in plan_columns_out and "plan_trial-x" not in plan_columns_out


def test_drop_removes_columns_and_refuses_the_target_and_unknown_names():
    split = messy_split(drop="age, city")
    assert split.plan.columns("dropped") == ["city", "age"] and "age" not in split.X_train.columns
    assert "dropped by drop=: city (drop=), age (drop=)" in split.plan.describe()
    with pytest.raises(MlfleetError, match="drop names the target column 'target'"):
        load_dataset(DataConfig(source="messy", n_samples=100, drop="target"))
    with pytest.raises(MlfleetError, match="drop names nope, not columns of data=messy"):
        load_dataset(DataConfig(source="messy", n_samples=100, drop="nope"))


def test_an_integer_feature_is_kept_unless_it_numbers_the_rows():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "row": np.arange(n),  # 0..n-1: an identifier
            "order_id": rng.permutation(10**6)[:n],  # spread out, but named like one
            "price_cents": rng.integers(0, 10**7, n),  # unique, spread out: a number
            "rooms": rng.integers(1, 6, n),
        }
    )
    plan = plan_columns(frame)
    assert plan.roles == {"row": "identifier", "order_id": "identifier", "price_cents": "numeric", "rooms": "numeric"}


def test_boolean_text_becomes_one_zero_one_column():
    frame = pd.DataFrame({"member": ["yes", "no", "no", None] * 10, "flag": ["Y", "N"] * 20, "x": np.arange(40.0)})
    plan = plan_columns(frame)
    assert plan.columns("boolean") == ["member", "flag"]
    out = build_preprocessor(plan).fit_transform(frame)
    assert out.shape == (40, 3)  # x, then one column per pair
    assert set(np.unique(out[:, 1])) == {0.0, 1.0} and set(np.unique(out[:, 2])) == {0.0, 1.0}


def test_date_text_becomes_year_month_weekday_hour():
    frame = pd.DataFrame({"when": ["2024-03-01 13:00", "2023-12-25 08:30", None, "2022-07-04 00:15"] * 10})
    plan = plan_columns(frame.assign(x=np.arange(40.0)))
    assert plan.columns("datetime") == ["when"]
    prep = build_preprocessor(plan).fit(frame.assign(x=np.arange(40.0)))
    names = list(prep.get_feature_names_out())
    assert names[1:] == ["when_year", "when_month", "when_day_of_week", "when_hour"]


def test_target_encoding_is_cross_fitted_so_a_column_without_signal_stays_at_chance():
    rng = np.random.default_rng(1)
    n = 3000
    codes = np.array([f"code{i}" for i in range(600)])
    frame = pd.DataFrame({"code": rng.choice(codes, n), "noise": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    frame.to_csv("codes.csv", index=False)
    split = split_dataset(load_dataset(DataConfig(source="codes.csv", target="y")), seed=0)
    assert split.plan.columns("high_cardinality") == ["code"]
    Xt_train, _ = fit_front(job("logistic"), split, 1)
    column = list(build_preprocessor(split.plan).fit(split.X_train, split.y_train).get_feature_names_out()).index(
        "code"
    )
    crossed = abs(np.corrcoef(Xt_train[:, column], split.y_train)[0, 1])
    leaked_front = build_pipeline(job("logistic"), split, {}, 1)[:-1].fit(split.X_train, split.y_train)
    leaked = abs(np.corrcoef(leaked_front.transform(split.X_train)[:, column], split.y_train)[0, 1])
    assert crossed < 0.1 < 0.3 < leaked  # fit-then-transform would hand the model its own target
    from mlfleet.metrics import resolve_metric

    tuned = tune_and_fit(job("logistic"), split, resolve_metric("accuracy", "classification"), 4)
    assert tuned.best_val_score < 0.56  # chance is 0.5


def wide_categorical_split():
    rng = np.random.default_rng(2)
    n = 600
    frame = pd.DataFrame({f"c{i}": rng.choice([f"l{j}" for j in range(15)], n) for i in range(8)})
    frame["x"] = rng.normal(size=n)
    frame["y"] = (frame["x"] + (frame["c0"] == "l1") > 0.3).astype(int)
    frame.to_csv("wide.csv", index=False)
    return split_dataset(load_dataset(DataConfig(source="wide.csv", target="y")), seed=0)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_features_stay_sparse_for_families_that_read_sparse_and_every_strategy_works(strategy):
    split = wide_categorical_split()
    Xt_linear, _ = fit_front(job("logistic", strategy), split, 1)
    Xt_bayes, _ = fit_front(job("naive_bayes", strategy), split, 1)
    dense_strategy = strategy in ("pca", "mutual_info")
    assert scipy.sparse.issparse(Xt_linear) is not dense_strategy
    assert not scipy.sparse.issparse(Xt_bayes)
    pipeline = build_pipeline(job("logistic", strategy), split, {}, 1).fit(split.X_fit, split.y_fit)
    assert pipeline.score(split.X_test, split.y_test) > 0.6


def test_imbalanced_classes_make_class_weight_a_tuned_choice():
    from mlfleet.metrics import resolve_metric

    split = messy_split()
    f1 = resolve_metric("f1", "classification")
    tuned = tune_and_fit(job("logistic"), split, f1, 3)
    assert tuned.best_params["class_weight"] in ("none", "balanced")
    negatives, positives = np.bincount(split.y_train)
    xgb = balanced(family("xgboost"), {"class_weight": "balanced", "max_depth": 3}, split)
    assert xgb == {"scale_pos_weight": negatives / positives, "max_depth": 3}
    assert balanced(family("logistic"), {"class_weight": "none", "C": 1.0}, split) == {"C": 1.0}
    even = split_dataset(load_dataset(DataConfig(source="synthetic", n_samples=300)), seed=0)
    assert "class_weight" not in tune_and_fit(job("logistic"), even, f1, 2).best_params


def test_a_latin1_file_is_read_and_says_how(tmp_path, caplog):
    frame = pd.DataFrame({"city": ["Genève", "Zürich", "Málaga"] * 10, "x": np.arange(30.0), "y": [0, 1] * 15})
    frame.to_csv("latin.csv", index=False, encoding="latin-1")
    with caplog.at_level(logging.INFO, logger="mlfleet"):
        dataset = load_dataset(DataConfig(source="latin.csv", target="y"))
    assert set(dataset.X["city"]) == {"Genève", "Zürich", "Málaga"}
    assert "data=latin.csv is not UTF-8; read it as cp1252" in caplog.text


BAD_TABLES = {
    "empty.csv": b"",
    "header_only.csv": b"a,b,y\n",
    "dupes.csv": b"a,a,y\n" + b"".join(b"%d,%d,%d\n" % (i, i, i % 2) for i in range(40)),
    "no_target.csv": b"a,y\n" + b"".join(b"%d,\n" % i for i in range(40)),
    "one_row_class.csv": b"a,y\n" + b"".join(b"%d.5,%s\n" % (i, b"b" if i == 0 else b"a") for i in range(40)),
    "mixed.csv": b"amount,y\n"
    + b"".join(b"%s,%d\n" % (b"n/a?" if i % 19 == 0 else b"%d.5" % i, i % 2) for i in range(60)),
    "binary.csv": bytes(range(256)) * 4,
    "lines.csv": b"".join(b'{"a": %d, "y": %d}\n' % (i, i % 2) for i in range(40)),
}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.csv", "data=empty.csv is empty; give a CSV with a header row"),
        ("header_only.csv", "data=header_only.csv has no rows (its columns are a, b, y)"),
        ("dupes.csv", "data=dupes.csv repeats column names: 'a' (2 times)"),
        ("no_target.csv", "target column 'y' of data=no_target.csv has no values (all 40 rows are missing)"),
        ("one_row_class.csv", "class 'b' of target 'y' has 1 row(s) and every class needs at least 3"),
        ("mixed.csv", "column 'amount' is numbers in 93% of its rows but text in 4 ('n/a?')"),
        ("binary.csv", "data=binary.csv is not a text table (it holds binary bytes)"),
        ("lines.csv", "data=lines.csv looks like JSON, not a table with a header row"),
    ],
)
def test_a_bad_table_is_one_line_exit_2_and_nothing_written(tmp_path, name, message):
    (tmp_path / name).write_bytes(BAD_TABLES[name])
    result = CliRunner().invoke(load_entrypoint("train_cpu"), ["--data", name, "--target", "y"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert_nothing_written(tmp_path)


def test_a_mixed_column_the_user_drops_is_not_in_the_way(tmp_path):
    (tmp_path / "mixed.csv").write_bytes(BAD_TABLES["mixed.csv"])
    frame = pd.read_csv(tmp_path / "mixed.csv").assign(x=np.arange(60.0))
    frame.to_csv(tmp_path / "mixed_x.csv", index=False)
    with pytest.raises(MlfleetError, match="column 'amount' is numbers"):
        load_dataset(DataConfig(source="mixed_x.csv", target="y"))
    dataset = load_dataset(DataConfig(source="mixed_x.csv", target="y", drop="amount"))
    assert dataset.drop == ("amount",) and split_dataset(dataset, seed=0).plan.used == ["x"]


def test_a_table_too_big_for_the_memory_is_refused_in_one_line_before_anything_is_written(tmp_path, monkeypatch):
    frame = pd.DataFrame({"x": np.arange(2000.0), "city": ["Lyon", "Oslo"] * 1000, "y": [0, 1] * 1000})
    frame.to_parquet(tmp_path / "big.parquet", index=False)
    monkeypatch.setenv("MLFLEET_MEMORY_BYTES", "20000")  # the table takes 56,000 bytes
    result = CliRunner().invoke(load_entrypoint("train_cpu"), ["--data", "big.parquet", "--target", "y"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: data=big.parquet takes about 54.7 KiB in memory and a sweep needs 3x that, 164.1 KiB, "
        "but 19.5 KiB is available; train on a sample of its training rows (sample=ROWS: the table once, 2x with "
        "the rows kept), or run the driver on a machine with more memory"
    ], result.stderr
    assert_nothing_written(tmp_path)


def test_a_table_that_fits_is_read_and_its_size_was_estimated_closely(tmp_path, monkeypatch):
    from mlfleet.data._sources import MEMORY_MULTIPLE, SNIFF_BYTES, _csv_bytes, _parquet_bytes

    rng = np.random.default_rng(0)
    n = 30_000  # more than the sampled rows, so that the estimate extrapolates
    frame = pd.DataFrame(
        {"x": rng.normal(size=n), "n": rng.integers(0, 9, n), "city": rng.choice(["Lyon", "Oslo", "Porto"], n)}
    ).assign(y=rng.integers(0, 2, n))
    frame.to_parquet("t.parquet", index=False)
    frame.to_csv("t.csv", index=False)
    in_memory = pd.read_parquet("t.parquet").memory_usage(deep=True, index=False).sum()
    assert _parquet_bytes("t.parquet") == pytest.approx(in_memory, rel=0.02)
    with open("t.csv", "rb") as f:
        assert _csv_bytes(f.read(SNIFF_BYTES), (tmp_path / "t.csv").stat().st_size) == pytest.approx(in_memory, rel=0.1)
    monkeypatch.setenv("MLFLEET_MEMORY_BYTES", str(MEMORY_MULTIPLE * in_memory + 1000))
    for name in ("t.parquet", "t.csv"):
        assert len(load_dataset(DataConfig(source=name, target="y")).y) == n
    monkeypatch.setenv("MLFLEET_MEMORY_BYTES", str(in_memory))
    with pytest.raises(MlfleetError, match="data=t.csv takes about .* but .* is available"):
        load_dataset(DataConfig(source="t.csv", target="y"))
