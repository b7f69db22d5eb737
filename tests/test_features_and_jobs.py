import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

from mlfleet.config import DataConfig
from mlfleet.data import STRATEGIES, build_preprocessor, build_selector, load_dataset
from mlfleet.errors import MlfleetError
from mlfleet.metrics import METRICS, resolve_metric, score_all
from mlfleet.training.jobs import expand_jobs, longest_first


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_fits_into_the_pipeline(strategy, task):
    ds = load_dataset(DataConfig(n_samples=300, n_features=12, task=task))
    front = make_pipeline(build_preprocessor(ds.X), build_selector(strategy, task, 0)).fit(ds.X, ds.y)
    out = front.transform(ds.X)
    assert out.shape[0] == 300 and 1 <= out.shape[1] <= 12
    if strategy in ("kbest", "mutual_info", "l1", "tree"):
        assert out.shape[1] <= 7  # the ranking strategies keep about half


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_fits_three_classes(strategy):
    ds = load_dataset(DataConfig(source="iris"))
    assert ds.n_classes == 3
    front = make_pipeline(build_preprocessor(ds.X), build_selector(strategy, "classification", 0)).fit(ds.X, ds.y)
    assert 1 <= front.transform(ds.X).shape[1] <= 4


def test_kbest_keeps_the_informative_features():
    ds = load_dataset(DataConfig(n_samples=600, n_features=20, task="regression"))
    front = make_pipeline(build_preprocessor(ds.X), build_selector("kbest", "regression", 0)).fit(ds.X, ds.y)
    kept = front[-1].get_support()
    corr = np.abs([np.corrcoef(ds.X[c], ds.y)[0, 1] for c in ds.X.columns])
    assert corr[kept].mean() > 3 * corr[~kept].mean()


def test_unknown_strategy():
    with pytest.raises(MlfleetError, match="unknown feature strategy 'boruta'"):
        build_selector("boruta", "classification", 0)


def test_jobs_are_deterministic_with_ids_strategies_and_capped_resources():
    models = (("logistic", 3), ("random_forest", 8))
    jobs = expand_jobs(models, first_id=90, seed=42, max_cpus=2)
    assert jobs == expand_jobs(models, first_id=90, seed=42, max_cpus=2)
    assert [j.model_id for j in jobs] == list(range(90, 101))
    assert [j.feature_strategy for j in jobs[:8]] == [*STRATEGIES, STRATEGIES[0]]
    assert {j.cpus for j in jobs if j.family == "random_forest"} == {2}
    assert {j.cpus for j in jobs if j.family == "logistic"} == {1}
    assert len({j.seed for j in jobs}) == len(jobs)
    assert {j.cpus for j in expand_jobs(models, first_id=0, seed=0, max_cpus=64)} == {1, 4}


def test_tree_ensembles_get_cores_for_their_rows_times_trees():
    models = (("random_forest", 1), ("xgboost", 1), ("logistic", 1))

    def cpus(rows, max_cpus):
        return [j.cpus for j in expand_jobs(models, first_id=0, seed=0, max_cpus=max_cpus, rows=rows)]

    assert cpus(2_400, 2) == [1, 1, 1]  # the default synthetic set: one core each
    assert cpus(20_000, 64) == [2, 3, 1]  # 150 and 300 trees: 3.0M and 6.0M row-trees
    assert cpus(1_000_000, 64) == [4, 4, 1]  # never past the family's cores
    assert cpus(1_000_000, 2) == [2, 2, 1]  # nor past the largest node
    assert cpus(None, 64) == [4, 4, 1]  # rows not known: the family's cores


def test_cores_held_against_cores_used_per_family():
    from types import SimpleNamespace

    from mlfleet.commands.sweep import family_cores, sweep_figures
    from mlfleet.training.outcome import Outcome

    def outcome(fam, cpus, fit_s, cpu_s, task_s, task_cpu_s, ok=True, resumed=False):
        row = SimpleNamespace(
            model_id=len(fam), family=fam, cpus=cpus, tuning_s=fit_s * 0.9, train_s=fit_s * 0.1, ok=ok, skipped=False
        )
        row.score = row.val_score = 0.5 if ok else None
        return Outcome(row, 0.1, cpu_s, 100.0, 100.0 + task_s, resumed=resumed, task_cpu_s=task_cpu_s)

    outcomes = [
        outcome("random_forest", 2, 10.0, 14.0, 12.0, 16.0),  # 1.4 of its 2 cores while fitting
        outcome("random_forest", 1, 10.0, 9.0, 11.0, 10.0),
        outcome("logistic", 1, 2.0, 1.8, 3.0, 2.4),
        outcome("logistic", 1, 50.0, 50.0, 50.0, 50.0, ok=False),  # failed: not counted
        outcome("svm", 1, 50.0, 50.0, 50.0, 50.0, resumed=True),  # finished before this run: no cost of it
    ]
    cores = family_cores(outcomes)
    assert set(cores) == {"logistic", "random_forest"}
    forest = cores["random_forest"]
    assert forest["cores_held"] == pytest.approx(1.5)  # weighted by how long each fitted
    assert forest["cores_used"] == pytest.approx(23.0 / 20.0)
    assert forest["task_cores_used"] == pytest.approx(26.0 / 23.0)
    assert cores["logistic"] == pytest.approx({"cores_held": 1.0, "cores_used": 0.9, "task_cores_used": 0.8})
    figures = sweep_figures(outcomes, wall_s=30.0, cpus=2, metric=resolve_metric("f1", "classification"))
    assert figures["cores_held/random_forest"] == pytest.approx(1.5)  # logged on the parent run
    assert figures["task_cores_used/logistic"] == pytest.approx(0.8)


def test_longest_expected_first():
    jobs = expand_jobs((("naive_bayes", 2), ("svm", 1), ("random_forest", 2)), first_id=0, seed=0, max_cpus=2)
    order = [j.family for j in longest_first(jobs)]
    assert order == ["random_forest", "random_forest", "svm", "naive_bayes", "naive_bayes"]


@pytest.mark.parametrize(
    ("name", "task", "message"),
    [
        (
            "rmse",
            "classification",
            r"metric 'rmse' does not fit a classification task; use one of accuracy, f1, roc_auc, log_loss",
        ),
        ("accuracy", "regression", r"metric 'accuracy' does not fit a regression task; use one of rmse, mae, r2"),
        ("auc", "classification", r"metric 'auc' does not fit"),
    ],
)
def test_metric_must_fit_the_task(name, task, message):
    with pytest.raises(MlfleetError, match=message):
        resolve_metric(name, task)


def test_metric_defaults_and_directions():
    assert resolve_metric("", "classification").name == "f1"
    assert resolve_metric("", "regression").name == "rmse"
    assert METRICS["rmse"].better(1.0, 2.0) and METRICS["r2"].better(0.9, 0.1)


def test_scores():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    s = score_all("classification", y, proba.argmax(1), proba, 2)
    assert s["accuracy"] == 1.0 and s["roc_auc"] == 1.0 and 0 < s["log_loss"] < 1
    r = score_all("regression", np.array([1.0, 2.0]), np.array([1.0, 4.0]), None)
    assert r["mae"] == 1.0 and r["rmse"] == pytest.approx(np.sqrt(2))


def frame_of_every_role(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """12 numeric columns, 3 yes/no columns and 5 text columns, each with missing values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"num_{i}": rng.normal(i, 1 + i, rows) for i in range(12)})
    for i in range(3):
        frame[f"flag_{i}"] = rng.choice(["yes", "no"], rows)
    for i in range(5):
        frame[f"text_{i}"] = rng.choice([f"level_{j}" for j in range(3 + i)], rows)
    for column in frame.columns:
        frame.loc[rng.random(rows) < 0.05, column] = np.nan
    return frame


@pytest.mark.parametrize("float32", [False, True])
def test_columns_prepared_a_few_at_a_time_make_the_features_of_one_part_per_role(float32):
    """A big table's columns are prepared in parts of a few (its peak memory); the features are those of
    one part per role, to the bit, with the same names. A small table keeps one part per role."""
    X = frame_of_every_role()
    y = (X["num_0"].fillna(0) > 0).to_numpy(int)
    parted = build_preprocessor(X, float32=float32, rows=2_000_000).fit(X, y)
    whole = build_preprocessor(X, float32=float32, rows=len(X)).fit(X, y)
    assert [name for name, *_ in whole.transformers] == ["num", "bool", "cat"]
    assert [name for name, *_ in parted.transformers] == ["num", "num_1", "bool", "bool_1", "cat", "cat_1", "cat_2"]
    rows = frame_of_every_role(200, seed=1)
    assert np.array_equal(parted.transform(rows), whole.transform(rows), equal_nan=True)
    assert parted.transform(rows).dtype == (np.float32 if float32 else np.float64)
    assert list(parted.get_feature_names_out()) == list(whole.get_feature_names_out())
