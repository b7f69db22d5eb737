"""The analysis on hand-made rows (summary, findings, plots, join, report, ensemble, champion rule)
and the analyze command's bad inputs against real stores holding a made-up sweep."""

from __future__ import annotations

import base64
import shutil
from dataclasses import replace
from datetime import datetime, timezone

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from deltalake import DeltaTable
from helpers import append_row, load_entrypoint
from mlflow.entities import Metric as RunMetric
from mlflow.entities import Param, RunTag

from mlfleet import champion
from mlfleet.commands.analyze import AnalysisConfig, run_analysis
from mlfleet.commands.analyze import report as analysis
from mlfleet.config import parse_list as parse_sweeps
from mlfleet.metrics import METRICS, score_all
from mlfleet.stores import registry
from mlfleet.stores import rows as results
from mlfleet.stores.tables import open_results

F1, RMSE = METRICS["f1"], METRICS["rmse"]
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
PNG = b"\x89PNG"


def result_row(
    model_id: int,
    model_type: str,
    score: float | None,
    *,
    family: str = "",
    strategy: str = "all",
    time_s: float = 1.0,
    status: str = "FINISHED",
    device: str = "cpu",
    entry_point: str = "train_cpu",
    sweep_id: str = "s1",
    run_id: str = "",
    error: str = "",
    digest: str = "d1",
    val_score: float | None = None,
) -> results.ResultRow:
    """A finished row's validation score is its test score unless ``val_score`` says otherwise."""
    return results.ResultRow(
        sweep_id=sweep_id,
        model_id=model_id,
        model_type=model_type,
        family=family or model_type.lower(),
        device=device,
        feature_strategy=strategy,
        n_features=4,
        task="classification",
        params_json="{}",
        primary_metric="f1",
        score=score,
        accuracy=score,
        f1=score,
        roc_auc=None,
        log_loss=None,
        rmse=None,
        mae=None,
        r2=None,
        n_trials=2,
        tuning_s=None if status != "FINISHED" else time_s * 0.8,
        train_s=None if status != "FINISHED" else time_s * 0.2,
        cpus=1.0,
        gpus=0.0,
        status=status,
        error=error,
        mlflow_run_id=run_id or f"run{sweep_id}{model_id}",
        model_uri="",
        experiment_id="1",
        dataset="synthetic",
        dataset_digest=digest,
        started_at=NOW,
        finished_at=NOW,
        node="n",
        entry_point=entry_point,
        val_score=score if val_score is None else val_score,
    )


def fleet_rows() -> list[results.ResultRow]:
    """Three types of four models, one of them failed; Forest best and slowest, Bayes fastest."""
    strategies = ["all", "kbest", "pca", "all"]
    rows = []
    for i, (kind, base, t) in enumerate([("Forest", 0.90, 4.0), ("Linear", 0.80, 0.5), ("Bayes", 0.70, 0.1)]):
        for j in range(4):
            bonus = 0.02 if strategies[j] == "kbest" else (-0.02 if strategies[j] == "pca" else 0.0)
            rows.append(
                result_row(4 * i + j, kind, base + bonus + 0.001 * j, strategy=strategies[j], time_s=t * (1 + 0.1 * j))
            )
    rows[7] = replace(
        rows[7],
        status="FAILED",
        error="ValueError: boom",
        score=None,
        f1=None,
        accuracy=None,
        tuning_s=None,
        train_s=None,
    )
    rows += [
        result_row(12 + j, "MLP", 0.85 + 0.01 * j, time_s=8.0, device="cpu", entry_point="train_gpu", sweep_id="s2")
        for j in range(2)
    ]
    return rows


@pytest.fixture
def rows() -> pd.DataFrame:
    return results.rows_to_frame(fleet_rows())


def test_summary_counts_orders_and_shares(rows):
    summary = analysis.summarize(rows, F1)
    assert summary.n_models == 14 and summary.n_failed == 1
    by_type = summary.by_type.set_index("model_type")
    assert list(summary.by_type["model_type"]) == ["Forest", "MLP", "Linear", "Bayes"]  # best mean first
    assert by_type.loc["Linear", "n_models"] == 4 and by_type.loc["Linear", "n_failed"] == 1
    assert by_type.loc["Forest", "best_score"] == pytest.approx(0.921)
    assert by_type.loc["Forest", "mean_score"] == pytest.approx(np.mean([0.90, 0.921, 0.882, 0.903]))
    assert by_type.loc["Bayes", "mean_time_s"] == pytest.approx(0.1 * np.mean([1, 1.1, 1.2, 1.3]))
    assert list(summary.top["rank"]) == list(range(1, 11)) and summary.top.iloc[0]["model_id"] == 1
    assert summary.efficiency["time_share"].sum() == pytest.approx(1.0)
    assert summary.efficiency.iloc[0]["model_type"] == "Bayes"  # most score per second
    assert list(summary.failures["model_id"]) == [7] and summary.failures.iloc[0]["error"] == "ValueError: boom"
    devices = summary.by_device.set_index("entry_point")
    assert devices.loc["train_gpu", "n_models"] == 2 and devices.loc["train_cpu", "n_models"] == 12
    table = analysis.type_table(summary)
    assert len(table) == 4 and {"time_share", "score_per_s"} <= set(table.columns)


def test_strategy_effect_compares_each_model_with_its_own_type(rows):
    table = analysis.by_strategy(rows, F1).set_index("feature_strategy")
    assert table.loc["kbest", "effect"] > 0.01 and table.loc["pca", "effect"] < -0.01
    assert table.loc["kbest", "effect"] > table.loc["all", "effect"] > table.loc["pca", "effect"]


def test_lower_is_better_metric_ranks_ascending():
    frame = results.rows_to_frame(
        [
            replace(result_row(i, t, None), rmse=v, val_score=v)
            for i, (t, v) in enumerate([("A", 3.0), ("B", 1.0), ("A", 2.0)])
        ]
    )
    summary = analysis.summarize(frame, RMSE)
    assert list(summary.top["model_id"]) == [1, 2, 0]
    assert summary.by_type.iloc[0]["model_type"] == "B"
    assert summary.by_type.set_index("model_type").loc["A", "best_score"] == 2.0


def test_findings_follow_the_data(rows):
    lines = analysis.findings(rows, analysis.summarize(rows, F1), F1)
    text = " ".join(lines)
    assert "The best model is #1 (Forest" in text
    assert "Forest has the best mean f1" in text and "ahead of MLP" in text
    assert "feature strategy kbest does best" in text and "pca worst" in text
    assert "The fastest type, Bayes" in text
    assert "1 of 14 models failed: linear (1)" in text and "ValueError: boom" in text
    # the same sentences from other data say other things: make Bayes the best
    flipped = rows.copy()
    flipped.loc[flipped["model_type"] == "Bayes", ["f1", "val_score"]] += 0.5
    text = " ".join(analysis.findings(flipped, analysis.summarize(flipped, F1), F1))
    assert "Bayes has the best mean f1" in text and "is also the fastest" in text


def test_plots_are_pngs_and_survive_no_finished_model(rows, tmp_path):
    summary = analysis.summarize(rows, F1)
    paths = analysis.plot_all(rows, summary, F1, tmp_path / "plots")
    assert set(paths) == set(analysis.PLOTS)
    assert all(p.read_bytes()[:4] == PNG and p.stat().st_size > 5000 for p in paths.values())
    failed = rows.assign(status="FAILED", f1=np.nan)
    paths = analysis.plot_all(failed, analysis.summarize(failed, F1), F1, tmp_path / "empty")
    assert all(p.read_bytes()[:4] == PNG for p in paths.values())
    assert analysis.findings(failed, analysis.summarize(failed, F1), F1)[0].startswith("No model finished")


def test_join_reports_every_kind_of_mismatch(rows):
    runs = pd.DataFrame(
        {
            "run_id": rows["mlflow_run_id"],
            "sweep_id": rows["sweep_id"],
            "model_id": rows["model_id"],
            "run_status": rows["status"],
            "run_score": rows["f1"],
        }
    )
    check = analysis.join_stores(rows, runs, "f1")
    assert check.mismatches.empty and len(check.joined) == 14 and "agree" in check.sentence()
    runs = runs.drop(index=3)  # run deleted
    runs.loc[0, "run_score"] += 0.01  # score differs
    runs.loc[5, "run_status"] = "FAILED"  # status differs
    extra = pd.DataFrame(
        [{"run_id": "orphan", "sweep_id": "s1", "model_id": 99, "run_status": "FINISHED", "run_score": 0.5}]
    )
    check = analysis.join_stores(rows, pd.concat([runs, extra]), "f1")
    kinds = dict(zip(check.mismatches["kind"], check.mismatches["model_id"], strict=True))
    assert kinds == {"row without a run": 3, "run without a row": 99, "score differs": 0, "status differs": 5}
    assert len(check.joined) == 13 and check.joined["model_id"].dtype == np.int64
    assert "1 row without a run" in check.sentence()


def test_a_time_budgets_skipped_models_are_neither_failures_nor_missing_runs(rows):
    """A SKIPPED row never had a run: the stores agree about it, and the counts say skipped, not failed."""
    runs = pd.DataFrame(
        {"run_id": rows["mlflow_run_id"], "sweep_id": rows["sweep_id"], "model_id": rows["model_id"],
         "run_status": rows["status"], "run_score": rows["f1"]}
    )  # fmt: skip
    skipped = rows.copy()
    skipped.loc[[2, 4], ["status", "mlflow_run_id", "f1", "val_score"]] = ["SKIPPED", "", np.nan, np.nan]
    check = analysis.join_stores(skipped, runs[~runs["model_id"].isin(rows.loc[[2, 4], "model_id"])], "f1")
    assert check.mismatches.empty, check.mismatches
    before, summary = analysis.summarize(rows, F1), analysis.summarize(skipped, F1)
    assert before.n_failed >= 1 and before.n_skipped == 0 and "skipped" not in before.counts()
    assert (summary.n_failed, summary.n_skipped) == (before.n_failed, 2)
    assert "SKIPPED" not in set(summary.failures.get("status", []))
    assert len(summary.failures) == len(before.failures)
    assert summary.counts() == f"14 models ({before.n_failed} failed, 2 skipped by the time budget)"
    gone = rows.copy()
    gone.loc[3, "mlflow_run_id"] = "deleted-run"  # a row naming a run MLflow lacks is still a mismatch
    assert analysis.join_stores(gone, runs, "f1").count("row without a run") == 1


def test_report_is_self_contained_and_markdown_matches(rows, tmp_path):
    summary = analysis.summarize(rows, F1)
    images = analysis.plot_all(rows, summary, F1, tmp_path)
    doc = analysis.Document(
        title="Fleet <analysis>",
        meta=(("metric", "f1"),),
        sections=(
            analysis.Section(
                "Tables", lines=("a | b",), tables=tuple(summary.tables().items()), images=tuple(images.items())
            ),
        ),
    )
    page = analysis.render_html(doc)
    assert page.count("data:image/png;base64,") == 4 and "src='score_by_type.png'" not in page
    assert "Fleet &lt;analysis&gt;" in page and page.count("<table>") == 6
    embedded = page.split("data:image/png;base64,")[1].split("'")[0]
    assert base64.b64decode(embedded)[:4] == PNG
    md = analysis.render_markdown(doc, relative_to=tmp_path)
    assert "![score_by_type](score_by_type.png)" in md and "a \\| b" not in md  # lines are not table cells
    assert "| model_type | family | n_models |" in md and "\n\n\n" not in md


def _split(task: str):
    from sklearn.datasets import make_classification, make_regression

    from mlfleet.data import Split

    if task == "classification":
        X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    else:
        X, y = make_regression(n_samples=300, n_features=6, noise=5.0, random_state=0)
    X = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    return Split.of(
        X[:150], y[:150], X[150:200], y[150:200], X[200:], y[200:], task, 2 if task == "classification" else 0
    )


def _candidates(models, split, metric):
    """Each model as the fleet keeps it: validation predictions of its fit on the training rows, and the
    model refitted on training and validation rows (what was logged)."""
    from sklearn.base import clone

    from mlfleet.metrics import predict_with_proba, score_one

    pool, refits = [], []
    for i, model in enumerate(models):
        tuned = clone(model).fit(split.X_train, split.y_train)
        pred, proba = predict_with_proba(tuned, split.X_val, split.task)
        val = score_one(metric, split.y_val, pred, proba, split.n_classes)
        pool.append(analysis.Candidate(f"m{i}", val, proba if proba is not None else pred))
        refits.append(clone(model).fit(split.X_fit, split.y_fit))
    order = sorted(
        range(len(models)), key=lambda i: -pool[i].val_score if metric.greater_is_better else pool[i].val_score
    )
    return [pool[i] for i in order], [refits[i] for i in order]


def test_the_ensemble_is_chosen_on_validation_predictions_and_scored_as_served():
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    split = _split("classification")
    models = [LogisticRegression(), GaussianNB(), DecisionTreeClassifier(max_depth=2, random_state=0)]
    pool, refits = _candidates(models, split, F1)
    loaded = []
    result = analysis.select(pool, lambda i: loaded.append(i) or refits[i], split, F1)
    assert set(loaded) == {0, *(pool.index(next(c for c in pool if c.label == m)) for m in result.members)}
    assert list(result.comparison["role"])[-1] == "ensemble" and "best single" in set(result.comparison["role"])
    assert sum(result.weights) == pytest.approx(1.0) and result.val_score >= pool[0].val_score
    # the test score is what the weighted soft vote of the refitted members serves
    members = [refits[[c.label for c in pool].index(m)] for m in result.members]
    mean_proba = np.average([m.predict_proba(split.X_test) for m in members], axis=0, weights=result.weights)
    expected = score_all("classification", split.y_test, mean_proba.argmax(1), mean_proba, 2)["f1"]
    assert result.test_score == pytest.approx(expected)
    assert result.wins == (len(result.members) > 1 and result.val_score > pool[0].val_score)


def test_an_ensemble_of_regressors_is_their_weighted_mean():
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.tree import DecisionTreeRegressor

    split = _split("regression")
    models = [LinearRegression(), Ridge(alpha=100), DecisionTreeRegressor(max_depth=3, random_state=0)]
    pool, refits = _candidates(models, split, RMSE)
    result = analysis.select(pool, lambda i: refits[i], split, RMSE)
    members = [refits[[c.label for c in pool].index(m)] for m in result.members]
    mean = np.average([m.predict(split.X_test) for m in members], axis=0, weights=result.weights)
    assert result.test_score == pytest.approx(np.sqrt(np.mean((mean - split.y_test) ** 2)))
    assert result.val_score <= pool[0].val_score  # lower is better: never worse than the best alone


SPLIT = "seed=42,test_size=0.2,val_size=0.2"


def _tags(metric: str, score: str, digest: str = "d1", split: str = SPLIT) -> dict[str, str]:
    return {"metric": metric, "score": score, "dataset_digest": digest, **({"split": split} if split else {})}


@pytest.mark.parametrize(
    ("current", "score", "metric", "alias", "why"),
    [
        (None, 0.8, F1, "champion", "no champion yet"),
        (_tags("f1", "0.7"), 0.8, F1, "champion", "beats the champion"),
        (_tags("f1", "0.9"), 0.8, F1, "challenger", "does not beat"),
        (_tags("f1", "0.8"), 0.8, F1, "challenger", "does not beat"),
        (_tags("accuracy", "0.1"), 0.8, F1, "challenger", "chosen on accuracy"),
        (_tags("f1", "0.1", digest="other"), 0.8, F1, "challenger", "other data"),
        (_tags("rmse", "3.0"), 2.0, RMSE, "champion", "lower is better"),
        (_tags("rmse", "1.0"), 2.0, RMSE, "challenger", "does not beat"),
        # the same data split with another seed: each trained on rows the other is tested on
        (_tags("f1", "0.1", split="seed=7,test_size=0.2,val_size=0.2"), 0.8, F1, "challenger", "split into training"),
        (_tags("f1", "0.1", split=""), 0.8, F1, "challenger", "unrecorded"),
    ],
)
def test_champion_rule(current, score, metric, alias, why):
    candidate = champion.Candidate("models:/m-1", "r1", 1, "Forest", "s1", score, "d1", "a1", SPLIT)
    got_alias, reason = champion.rule(current, "3", candidate, metric)
    assert got_alias == alias and why in reason
    same = current is not None and current == _tags(metric.name, current["score"])
    assert champion.comparable(current or {}, candidate, metric) == same


def test_parse_sweeps():
    assert parse_sweeps(" a, b,,a ") == ("a", "b") and parse_sweeps("") == ()


# --- the command against real stores holding a made-up sweep (no training) ---

TABLE = "lakehouse/model_training_results"


def fake_sweep(
    client,
    experiment_id: str,
    rows: list[results.ResultRow],
    *,
    entry_point: str = "train_cpu",
    digest: str = "d1",
    skip_rows: tuple[int, ...] = (),
    run_scores: dict[int, float] | None = None,
    seed: int = 42,
) -> str:
    """A parent run, one child run per row (unless ``skip``), and the rows in the results table."""
    sweep_id = rows[0].sweep_id
    parent = client.create_run(experiment_id, run_name=sweep_id)
    params = {"data": "synthetic", "n_samples": "200", "seed": str(seed), "test_size": "0.2", "val_size": "0.2"}
    client.log_batch(
        parent.info.run_id,
        params=[Param(k, v) for k, v in params.items()],
        tags=[
            RunTag(k, v)
            for k, v in {
                "mlfleet.role": "sweep",
                "sweep_id": sweep_id,
                "entry_point": entry_point,
                "task": "classification",
                "primary_metric": "f1",
                "dataset": "synthetic",
                "dataset_digest": digest,
            }.items()
        ],
    )
    client.set_terminated(parent.info.run_id)
    open_results(TABLE).ensure()
    for row in rows:
        child = client.create_run(
            experiment_id,
            tags={
                "mlflow.parentRunId": parent.info.run_id,
                "mlfleet.role": "model",
                "sweep_id": sweep_id,
                "model_id": str(row.model_id),
            },
        )
        score = (run_scores or {}).get(row.model_id, row.f1)
        client.log_batch(
            child.info.run_id,
            metrics=[RunMetric("f1", score, 0, 0), RunMetric("accuracy", score, 0, 0)] if score is not None else [],
        )
        client.set_terminated(child.info.run_id, row.status)
        if row.model_id not in skip_rows:
            append_row(
                TABLE,
                replace(
                    row,
                    mlflow_run_id=child.info.run_id,
                    experiment_id=experiment_id,
                    dataset_digest=digest,
                    entry_point=entry_point,
                ),
            )
    return sweep_id


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """A sqlite tracking store with its schema made, once: migrating a fresh file takes seconds."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, empty_store):
    """Experiment ``fleet`` with a CPU sweep s1 (12 models) and a GPU sweep s2 (2 models), and an empty experiment."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")  # the test's own store (see conftest's isolated)
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("fleet")
    client.create_experiment("empty")
    rows = fleet_rows()
    fake_sweep(client, experiment_id, [r for r in rows if r.sweep_id == "s1"], skip_rows=(11,), run_scores={0: 0.5})
    fake_sweep(client, experiment_id, [r for r in rows if r.sweep_id == "s2"], entry_point="train_gpu")
    return client, experiment_id


def snapshot(client):
    experiments = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(experiments)), len(client.search_registered_models())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "empty"], "experiment 'empty' has no sweeps"),
        (["--experiment", "nowhere"], "experiment 'nowhere' does not exist"),
        (["--results", "missing/table"], "results="),
        (["--sweep", "s1,nope"], "sweep 'nope' is not in experiment 'fleet'; its sweeps, latest first: s2, s1"),
        (
            ["--metric", "rmse"],
            "metric 'rmse' is not recorded for the models of sweep(s) s2, s1 (classification); use one of accuracy, f1",
        ),
        (["--metric", "tuning_s"], "metric 'tuning_s' is not recorded"),
        (["--k", "0"], "0 is not in the range x>=1"),
        (["--output", "taken"], "output=taken is a file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(store, tmp_path, args, message):
    client, _ = store
    (tmp_path / "taken").write_text("a file where the report should go")
    before = snapshot(client)
    result = CliRunner().invoke(load_entrypoint("analyze"), ["--experiment", "fleet", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    if "--results" in args:
        assert "missing/table is not a Delta table" in lines[0]
    assert snapshot(client) == before
    assert not (tmp_path / "reports").exists() and not (tmp_path / "lakehouse" / "model_training_summary").exists()


def test_sweeps_of_different_data(store):
    client, experiment_id = store
    other = [result_row(50, "Forest", 0.99, sweep_id="s3", digest="d2")]
    fake_sweep(client, experiment_id, other, digest="d2")
    with pytest.raises(Exception, match="the sweeps trained on different data"):
        run_analysis(AnalysisConfig(experiment="fleet", sweeps=("s1", "s3")))
    # by default: the latest sweep of each entry point, on the data of the latest of all (s3's)
    report = run_analysis(AnalysisConfig(experiment="fleet", output="out"))
    assert report.plan.sweep_ids == ("s3",) and "left out sweep s2" in report.plan.notes[0]


def test_sweeps_of_the_same_data_split_another_way_do_not_compare(store):
    """Another seed puts other rows in training: the sweeps' models trained on rows the others are tested on."""
    client, experiment_id = store
    fake_sweep(client, experiment_id, [result_row(60, "Forest", 0.99, sweep_id="s4", entry_point="train_gpu")],
               entry_point="train_gpu", seed=7)  # fmt: skip
    with pytest.raises(Exception, match=r"the sweeps split the data differently \(s1: seed=42,.*s4: seed=7,"):
        run_analysis(AnalysisConfig(experiment="fleet", sweeps=("s1", "s4")))
    report = run_analysis(AnalysisConfig(experiment="fleet", output="out"))  # the latest (s4) and not s1
    assert report.plan.sweep_ids == ("s4",)
    assert "left out sweep s1 (train_cpu): it trained on other data or another split (seed=42," in report.plan.notes[0]


def test_analysis_of_made_up_sweeps_reports_mismatches_and_writes_the_summary(store, tmp_path):
    client, experiment_id = store
    report = run_analysis(AnalysisConfig(experiment="fleet", output="out"))
    assert report.plan.sweep_ids == ("s2", "s1") and report.summary.n_models == 13
    kinds = report.check.mismatches.groupby("kind")["model_id"].apply(list).to_dict()
    assert kinds == {"run without a row": [11], "score differs": [0]}
    assert (
        report.ensemble is None and "no finished model has both a run and a row" in report.ensemble_note
    )  # no logged models here
    assert report.decision is None and client.search_registered_models() == []
    files = {p.name for p in report.files}
    assert {"report.html", "summary.md", "analysis.json", "models.csv", "mismatches.csv", "score_by_type.png"} <= files
    assert all((tmp_path / "out" / name).exists() for name in files)
    assert len(pd.read_csv(tmp_path / "out" / "mismatches.csv")) == 2
    summary = DeltaTable(str(tmp_path / "lakehouse" / "model_training_summary")).to_pandas()
    assert sorted(summary["model_type"]) == ["Bayes", "Forest", "Linear", "MLP"]
    assert (summary["analysis_id"] == report.plan.analysis_id).all()
    run = client.get_run(report.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlfleet.role"] == "analysis"
    assert run.data.metrics["n_runs_without_row"] == 1 and run.data.metrics["n_score_mismatches"] == 1
    assert "report.html" in {a.path for a in client.list_artifacts(report.run_id)}
    again = run_analysis(AnalysisConfig(experiment="fleet", sweeps=("s1",), output="out2"))
    summary = DeltaTable(str(tmp_path / "lakehouse" / "model_training_summary")).to_pandas()
    assert summary.groupby("analysis_id").size().to_dict() == {report.plan.analysis_id: 4, again.plan.analysis_id: 3}


def test_every_mlproject_parameter_is_an_option():
    import yaml
    from helpers import REPO

    declared = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]["analyze"]["parameters"]
    assert set(declared) == {"experiment", "results", "sweep", "metric", "k", "registered_model", "output"}
    result = CliRunner().invoke(load_entrypoint("analyze"), ["--help"])
    assert result.exit_code == 0
    for name in declared:
        assert f"--{name}" in result.output


def test_rankings_choose_on_validation_and_report_test():
    """A model that wins on test but loses on validation is not chosen: not ranked first, not the best."""
    rows = results.rows_to_frame(
        [
            result_row(0, "Forest", 0.95, val_score=0.70),  # best on test, worst on validation
            result_row(1, "Boost", 0.80, val_score=0.90),
            result_row(2, "Boost", 0.85, val_score=0.80),
        ]
    )
    ranked = analysis.ranked(rows, F1)
    assert list(ranked["model_id"]) == [1, 2, 0]
    summary = analysis.summarize(rows, F1)
    assert list(summary.top.columns[summary.top.columns.get_loc("val_score") :][:2]) == ["val_score", "f1"]
    assert list(summary.by_type["model_type"]) == ["Boost", "Forest"]  # by mean validation score
    # a type's best is its best model on validation (model 1), whose test score is shown: not the test's max
    assert summary.by_type.set_index("model_type").loc["Boost", "best_score"] == pytest.approx(0.80)
    assert summary.by_type.set_index("model_type").loc["Boost", "worst_score"] == pytest.approx(0.85)
    # efficiency ranks by validation per second: Forest's test mean would put it first
    assert list(summary.efficiency["model_type"]) == ["Boost", "Forest"]
    # a strategy's effect is measured on validation, its effect on test only shown beside it
    mixed = results.rows_to_frame(
        [
            result_row(0, "Boost", 0.95, val_score=0.70, strategy="pca"),
            result_row(1, "Boost", 0.80, val_score=0.90, strategy="all"),
        ]
    )
    effects = analysis.by_strategy(mixed, F1).set_index("feature_strategy")
    assert effects.loc["all", "effect"] > 0 > effects.loc["all", "test_effect"]
    from mlfleet.commands.sweep import best_row

    rows = [result_row(0, "Forest", 0.95, val_score=0.7), result_row(1, "Boost", 0.8, val_score=0.9)]
    assert best_row(rows, "f1").model_id == 1


def test_paired_bootstrap_tells_a_real_win_from_noise():
    from mlfleet.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    noisy = np.where(rng.random(400) < 0.8, y, 1 - y)  # 80% right
    also_noisy = np.where(rng.random(400) < 0.8, y, 1 - y)  # as good, other mistakes
    better = np.where(rng.random(400) < 0.95, y, 1 - y)
    tie = paired_bootstrap(F1, y, (also_noisy, None), (noisy, None))
    win = paired_bootstrap(F1, y, (better, None), (noisy, None))
    assert tie.resamples == 1000 and tie.low < 0 < tie.high and not tie.clear_win and tie.p_value > 0.05
    assert win.clear_win and win.diff > 0.1 and win.p_value < 0.01
    assert paired_bootstrap(F1, y, (better, None), (noisy, None)) == win  # seeded
    rmse = paired_bootstrap(RMSE, y.astype(float), (y + 0.1, None), (y + 1.0, None))
    assert rmse.diff > 0 and rmse.clear_win  # lower is better: the smaller error wins


@pytest.mark.parametrize(("challenger_is_better", "alias"), [(True, "champion"), (False, "challenger")])
def test_the_gate_moves_the_champion_on_a_real_win_only(tmp_path, challenger_is_better, alias):
    """Against a real registry: a noisy win leaves the champion; a clear one moves it; the interval is on the tags."""
    from mlfleet.metrics import paired_bootstrap

    client = mlflow.MlflowClient()
    experiment = client.create_experiment("gate")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    champion_pred = np.where(rng.random(300) < 0.8, y, 1 - y)
    challenger_pred = np.where(rng.random(300) < (0.97 if challenger_is_better else 0.8), y, 1 - y)

    def candidate(run_name: str, score: float) -> champion.Candidate:
        run = client.create_run(experiment, run_name=run_name)
        client.set_terminated(run.info.run_id)
        model = client.create_logged_model(experiment, source_run_id=run.info.run_id, name=run_name)
        return champion.Candidate(
            f"models:/{model.model_id}", run.info.run_id, 1, "Forest", "s1", score, "d1", "a1", SPLIT
        )

    first = registry.crown(client, "gated", candidate("first", 0.8), F1)
    assert first.alias == "champion"
    compare = lambda _version: paired_bootstrap(F1, y, (challenger_pred, None), (champion_pred, None))  # noqa: E731
    decision = registry.crown(client, "gated", candidate("second", 0.81), F1, compare=compare)
    assert decision.alias == alias and decision.comparison is not None
    version = client.get_model_version("gated", decision.version)
    assert float(version.tags["gate.ci_low"]) < float(version.tags["gate.ci_high"])
    assert (float(version.tags["gate.ci_low"]) > 0) == challenger_is_better
    assert version.tags["gate.resamples"] == "1000" and "p=" in version.tags["mlfleet.decision"]
    holder = str(client.get_model_version_by_alias("gated", "champion").version)
    assert holder == (decision.version if challenger_is_better else first.version)
    assert ("beyond noise" in decision.reason) and ("95% interval" in decision.sentence())


def test_the_gate_compares_on_its_half_of_the_test_rows_and_the_report_has_the_other(tmp_path):
    """Two models, each right on one half of the test rows only: the gate sees the challenger's half."""
    from sklearn.tree import DecisionTreeClassifier

    from mlfleet.data import Split

    n = 120
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"row": np.arange(n, dtype=float)})
    y = rng.integers(0, 2, n)
    split = Split.of(X, y, X, y, X, y, "classification", 2, classes=(0, 1), key="seed=1,test_size=0.2,val_size=0.2")
    gate, report = split.test_halves()
    assert len(gate) + len(report) == n and not set(gate) & set(report)
    assert np.array_equal(split.test_halves()[0], gate)  # the same split, the same halves
    assert abs(y[gate].mean() - y[report].mean()) < 0.05  # stratified by class
    on_gate = y.copy()
    on_gate[report] = 1 - y[report]  # right on the gate's rows, wrong on the report's
    on_report = 1 - on_gate
    uris = []
    with mlflow.start_run():
        for name, labels in (("challenger", on_gate), ("champion", on_report)):
            model = DecisionTreeClassifier(random_state=0).fit(X, labels)  # remembers every row
            uris.append(mlflow.sklearn.log_model(model, name=name, serialization_format="cloudpickle").model_uri)
    comparison = champion.compare_models(F1, split, *uris)
    assert comparison.n_rows == len(gate)
    assert comparison.challenger == 1.0 and comparison.champion == 0.0 and comparison.clear_win


def test_a_logged_model_pins_only_the_packages_of_what_it_holds():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    from mlfleet.stores import model_format
    from mlfleet.training.voting import build_vote

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    forest = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3)).fit(X, y)
    boosted = make_pipeline(StandardScaler(), XGBClassifier(n_estimators=3)).fit(X, y)
    names = lambda model: {r.split("==")[0] for r in model_format.model_requirements(model_format.trusted_types(model))}  # noqa: E731
    assert names(forest) == {"scikit-learn", "skops", "numpy", "pandas", "scipy"}
    assert names(build_vote([("a", forest), ("b", boosted)], "classification", X, y)) == names(forest) | {"xgboost"}
