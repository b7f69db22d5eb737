"""The benchmark: ladders and presets, the identical-scores check, bad inputs, and `mlflow run` end to end."""

import json
import os
import statistics
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from helpers import assert_nothing_written, load_entrypoint, mlflow_run, project_copy, read_results

from mlfleet.commands.speedup import BENCHMARKS, PRESETS, apply_preset, expand_ladder
from mlfleet.commands.speedup.modes import Fitted
from mlfleet.commands.speedup.run import _check_identical
from mlfleet.config import BenchmarkConfig, DataConfig
from mlfleet.errors import MlfleetError


def test_ladder_steps_evenly_and_keeps_whole_numbers_whole():
    config = BenchmarkConfig(
        model="gradient_boosting", n_models=20, ladder="n_estimators=50:240,learning_rate=0.05:0.145,max_depth=2:4"
    )
    specs = expand_ladder(config, "regression")
    assert [s.params["n_estimators"] for s in specs] == list(range(50, 250, 10))
    assert specs[0].params["learning_rate"] == 0.05 and specs[-1].params["learning_rate"] == 0.145
    assert {s.params["max_depth"] for s in specs} == {2, 3, 4}
    assert len({s.seed for s in specs}) == 20


def test_presets_reproduce_the_labs():
    rf30 = apply_preset(
        BenchmarkConfig(preset="california_rf30", data=DataConfig(source="housing.csv", target="median_house_value"))
    )
    specs = expand_ladder(rf30, "regression")
    assert len(specs) == 30 and specs[0].params == {"max_depth": 20, "min_samples_split": 5, "n_estimators": 50}
    assert specs[-1].params["n_estimators"] == 340 and rf30.data.source == "housing.csv"
    wine = apply_preset(BenchmarkConfig(preset="wine_rf10", data=DataConfig(source="winequality-red.csv")))
    assert (
        wine.data.target == "quality>=6"
        and [s.params["n_estimators"] for s in expand_ladder(wine, "classification")][-1] == 230
    )
    gb = apply_preset(BenchmarkConfig(preset="diabetes_gb20"))
    assert gb.data.source == "diabetes" and gb.model == "gradient_boosting" and gb.n_models == 20
    assert set(PRESETS) == {"california_rf30", "wine_rf10", "diabetes_gb20"}


def test_different_scores_fail_loudly():
    a = Fitted(0, {"rmse": 1.0}, 0, 1, "w")
    _check_identical({"sequential": [a], "ray": [Fitted(0, {"rmse": 1.0}, 0, 1, "x")]})
    with pytest.raises(MlfleetError, match="model 0 scored .* in mode ray but .* in mode sequential"):
        _check_identical({"sequential": [a], "ray": [Fitted(0, {"rmse": 1.5}, 0, 1, "x")]})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "imagenet"], "unknown preset 'imagenet'; known presets: california_rf30"),
        (["--preset", "wine_rf10"], "preset wine_rf10 needs its data: pass data=path/to/winequality-red.csv"),
        (["--model", "catboost"], "unknown model family 'catboost'"),
        (["--n_models", "0"], "n_models must be at least 1, but got n_models=0"),
        (["--ladder", "n_trees=50:100"], "'n_trees' is not a parameter of RandomForestClassifier"),
        (["--ladder", "n_estimators=a:b"], "ladder ends must be numbers"),
        (["--params", "max_depth"], "params entries are name=value"),
        (["--modes", "sequential,dask"], "modes must be among sequential, ray, joblib"),
        (["--repeats", "0"], "repeats must be at least 1"),
    ],
)
def test_bad_input(tmp_path, args, message):
    result = CliRunner().invoke(load_entrypoint("benchmark"), [*args, "--n_samples", "200"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert_nothing_written(tmp_path)


@pytest.mark.e2e
def test_benchmark_end_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    project = project_copy(tmp_path)
    proc = mlflow_run(
        project, "benchmark", {"n_models": "4", "ladder": "n_estimators=10:40", "n_samples": "400", "repeats": "2"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "of the ceiling" in proc.stderr
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parent = next(r for r in runs if r.data.tags.get("mlfleet.role") == "benchmark")
    modes = {r.data.tags["mode"]: r for r in runs if r.data.tags.get("mlfleet.role") == "benchmark_mode"}
    assert set(modes) == {"sequential", "ray", "joblib"}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in modes.values())
    m = parent.data.metrics
    # the sequential mode fits one model after another: the last repeat's wall holds its every model's
    # seconds (the metric is the median over repeats, which a noisy machine can put below any one of them)
    sequential_s = [x.value for x in client.get_metric_history(modes["sequential"].info.run_id, "model_s")]
    walls = json.loads(Path(client.download_artifacts(parent.info.run_id, "figures.json", str(tmp_path))).read_text())
    assert len(sequential_s) == 4 and walls["walls"]["sequential"][-1] >= 0.99 * sum(sequential_s)
    assert m["wall_s_sequential"] == statistics.median(walls["walls"]["sequential"])
    # a measured ceiling: above no speedup, and no faster than the machine's cores allow
    assert (
        0.5 < m["work_ceiling_speedup"] <= os.cpu_count() * 1.1 and 0.5 < m["ceiling_speedup"] <= os.cpu_count() * 1.1
    )
    assert {"wall_s_ray", "speedup_ray", "efficiency_joblib", "best_accuracy"} <= set(m)
    assert parent.data.params["cpu_count"] and "scikit-learn" in parent.data.params["versions_json"]
    assert len(client.get_metric_history(modes["ray"].info.run_id, "model_s")) == 4
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert artifacts == {
        "columns.json",
        "figures.json",
        "wall_time_per_mode.png",
        "timeline.png",
        "metric_vs_n_estimators.png",
    }
    rows = read_results(str(project / "lakehouse" / "benchmark_results"), spec=BENCHMARKS)
    assert sorted(rows["mode"]) == ["joblib", "ray", "sequential"]
    assert set(rows["mlflow_run_id"]) == {r.info.run_id for r in modes.values()}
    assert (rows["repeats"] == 2).all() and (rows["n_models"] == 4).all()
    assert (rows["work_ceiling_speedup"] == m["work_ceiling_speedup"]).all()
