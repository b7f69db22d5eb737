"""A time budget: the rounds of successive halving (pure bookkeeping), and sweeps that end at their budget."""

import io
import math
import time

import mlflow
import pytest
from helpers import read_results

from mlfleet.commands.budget import Rounds, round_trials
from mlfleet.commands.sweep import run_sweep
from mlfleet.config import PORTFOLIO, DataConfig, FleetConfig, parse_models
from mlfleet.training.jobs import ModelJob
from mlfleet.zoo import cpu_families


class FakeTuning:
    """What Rounds reads of a study: its trials and best value."""

    def __init__(self, n: int, best: float) -> None:
        self.trials, self.best_value = [object()] * n, best


def jobs(n: int) -> tuple[ModelJob, ...]:
    return tuple(ModelJob(i, "logistic", "all", 1, 0.0, i, 1.0 + i) for i in range(n))


@pytest.mark.unit
def test_rounds_double_and_the_defaults_come_first():
    assert [round_trials(level) for level in range(5)] == [1, 1, 2, 4, 8]
    rounds = Rounds(jobs(3), n_trials=10, greater_is_better=True)
    firsts = [rounds.next() for _ in range(3)]
    assert [r.level for r in firsts] == [0, 0, 0] and [r.job.model_id for r in firsts] == [2, 1, 0]  # longest first
    assert rounds.next() is None  # every model's first round is running: nothing else may start


@pytest.mark.unit
def test_the_better_half_goes_on_and_the_rest_keep_what_they_have():
    rounds = Rounds(jobs(4), n_trials=10, greater_is_better=True)
    for _ in range(4):
        rounds.next()
    for model_id, score in [(0, 0.70), (1, 0.90), (2, 0.80), (3, 0.60)]:
        rounds.done(model_id, FakeTuning(1, score))
    promoted = [rounds.next(), rounds.next()]
    assert [(r.job.model_id, r.level) for r in promoted] == [(1, 1), (2, 1)]  # the better half of round 0
    assert rounds.next() is None  # 0 and 3 are in the worse half; rounds still run
    rounds.done(1, FakeTuning(2, 0.95))
    nxt = rounds.next()
    assert (nxt.job.model_id, nxt.level) == (1, 2)  # the better half of round 1 so far: model 1 alone
    assert rounds.trials(2, 1) == 2


@pytest.mark.unit
def test_with_no_model_promotable_the_best_still_open_gets_the_time_and_lower_is_better_counts():
    rounds = Rounds(jobs(2), n_trials=3, greater_is_better=False)  # rmse
    rounds.next(), rounds.next()
    rounds.done(0, FakeTuning(1, 5.0))
    rounds.done(1, FakeTuning(1, 3.0))
    assert rounds.next().job.model_id == 1  # lower is better: model 1 is the better half
    rounds.done(1, FakeTuning(3, 2.0))  # its trials are spent: closed
    assert rounds.trials(1, 0) == 1 and rounds.next().job.model_id == 0  # then the best still open
    rounds.close(0)
    assert rounds.next() is None


@pytest.mark.unit
def test_portfolio_is_a_named_fleet_of_strong_families_on_every_feature():
    from mlfleet.config import fleet_strategies

    assert parse_models("portfolio", cpu_families()) == PORTFOLIO
    assert fleet_strategies(PORTFOLIO) == ("all",) and fleet_strategies(parse_models("svm:2", cpu_families())) is None
    assert {"lightgbm", "xgboost", "hist_gradient_boosting", "extra_trees"} <= {name for name, _ in PORTFOLIO}


def test_a_time_budget_ends_a_sweep_of_slow_models_within_the_budget_and_one_refit(ray_local, tmp_path):
    """Slow models (forests on 8,000 rows, 60 trials each): tuning stops where the budget leaves room for the
    refits; every model is refitted, logged and FINISHED, and the sweep exits 0."""
    budget = 20.0
    config = FleetConfig(
        data=DataConfig(n_samples=8000),
        models=(("random_forest", 2), ("extra_trees", 1)),
        n_trials=60,
        time_budget=budget,
        results=str(tmp_path / "results"),
        experiment="budget",
    )
    t0 = time.perf_counter()
    report = run_sweep(config, stream=io.StringIO())
    wall = time.perf_counter() - t0
    assert report.exit_code == 0 and report.failed == 0 and report.skipped == 0
    rows = read_results(str(tmp_path / "results"))
    assert len(rows) == 3 and (rows["status"] == "FINISHED").all()
    refit_s = float(rows["train_s"].max())
    assert report.figures["wall_s"] <= budget + refit_s + 10.0, (report.figures["wall_s"], refit_s)
    assert rows["n_trials"].eq(60).all()  # the most a model may have; the budget decided how many it got
    runs = mlflow.MlflowClient().search_runs([report.experiment_id], "tags.`mlfleet.role` = 'model'")
    trials = {int(r.data.tags["model_id"]): len(mlflow.MlflowClient().get_metric_history(r.info.run_id, "val_f1"))
              for r in runs}  # fmt: skip
    assert all(n >= 1 for n in trials.values()) and sum(trials.values()) < 180  # the budget cut the search short
    assert {int(r.data.tags["model_id"]): int(r.data.metrics["n_trials_run"]) for r in runs} == trials
    assert all(r.info.status == "FINISHED" for r in runs) and len(runs) == 3
    print(f"budget {budget} s: wall {wall:.1f} s, longest refit {refit_s:.1f} s, trials {trials}")


def test_a_budget_that_ends_before_a_models_first_trial_says_so_and_exits_0(ray_local, tmp_path):
    # a budget of 1 ms ends before any Ray task can start its defaults: only the cheapest model's run anyway
    config = FleetConfig(
        data=DataConfig(n_samples=500),
        models=(("svm", 3),),
        n_trials=5,
        time_budget=0.001,
        results=str(tmp_path / "results"),
        experiment="tiny",
    )
    report = run_sweep(config, stream=io.StringIO())
    rows = read_results(str(tmp_path / "results")).set_index("model_id")
    assert report.exit_code == 0 and report.failed == 0 and len(rows) == 3
    assert rows.loc[0, "status"] == "FINISHED"  # the sure model: a budget never ends with nothing
    skipped = rows.loc[[1, 2]]
    assert (skipped["status"] == "SKIPPED").all()
    assert skipped["error"].str.startswith("not trained: the time budget of 0.001 s ended before its first trial").all()
    assert (skipped["mlflow_run_id"] == "").all()  # no run for a model that never trained
    assert report.skipped == 2 and math.isclose(report.figures["n_skipped"], 2)
    runs = mlflow.MlflowClient().search_runs([report.experiment_id], "tags.`mlfleet.role` = 'model'")
    assert [r.data.tags["model_id"] for r in runs] == ["0"] and runs[0].data.metrics["n_trials_run"] == 1
    assert mlflow.MlflowClient().get_run(report.parent_run_id).info.status == "FINISHED"


def test_model_timeout_under_a_time_budget_limits_each_round_not_the_wait_between_them(ray_local, tmp_path):
    """Rounds of fast models go on well past model_timeout in all: each round, and the refit, has its own clock."""
    config = FleetConfig(
        data=DataConfig(n_samples=400),
        models=(("logistic", 2), ("naive_bayes", 1)),
        n_trials=400,
        time_budget=12.0,
        model_timeout=4.0,
        results=str(tmp_path / "results"),
        experiment="budget-limits",
    )
    report = run_sweep(config, stream=io.StringIO())
    rows = read_results(str(tmp_path / "results"))
    assert report.exit_code == 0 and report.failed == 0, [o.row.error for o in report.outcomes]
    assert len(rows) == 3 and (rows["status"] == "FINISHED").all()
    assert report.figures["wall_s"] > config.model_timeout  # the rounds went on past one model_timeout


def test_a_sweeps_timeout_under_a_time_budget_stops_everything_and_refits_nothing(ray_local, tmp_path):
    config = FleetConfig(
        data=DataConfig(n_samples=8000),
        models=(("random_forest", 2),),
        n_trials=60,
        time_budget=60.0,
        timeout=4.0,
        results=str(tmp_path / "results"),
        experiment="budget-timeout",
    )
    t0 = time.perf_counter()
    report = run_sweep(config, stream=io.StringIO())
    assert time.perf_counter() - t0 < 40  # not the budget's 60 s: the timeout stopped it
    assert report.exit_code == 1 and report.stopped.startswith("the sweep's timeout of 4 s passed")
    client = mlflow.MlflowClient()
    model_runs = client.search_runs([report.experiment_id], "tags.`mlfleet.role` = 'model'")
    assert all(r.info.status != "RUNNING" for r in model_runs)
    assert client.get_run(report.parent_run_id).info.status != "RUNNING"
    assert report.not_started + sum(not o.row.ok for o in report.outcomes) == 2  # resume trains them
