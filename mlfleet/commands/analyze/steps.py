"""The writing half of an analysis, after :func:`~mlfleet.commands.analyze.plan.plan_analysis` checked everything:
the analysis run, the join, summary, plots, the top-k vote, the champion, the summary table,
the report files and their upload as the run's artifacts.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from mlfleet import champion
from mlfleet.commands.analyze import readback
from mlfleet.commands.analyze import report as summaries
from mlfleet.commands.analyze.document import document, facts
from mlfleet.commands.analyze.types import REPORT_FILES, AnalysisReport, Clock, Plan
from mlfleet.config import AnalysisConfig, DataConfig
from mlfleet.errors import MlfleetError, first_line
from mlfleet.metrics import Comparison, finite, finite_only
from mlfleet.redaction import redact, redact_frame
from mlfleet.settings import Settings
from mlfleet.stores import model_format, registry
from mlfleet.stores.recorder import SweepRecorder
from mlfleet.training.labels import codes_model, label_array, with_labels
from mlfleet.training.worker import INPUT_EXAMPLE_ROWS

log = logging.getLogger(__name__)


def open_run(plan: Plan, config: AnalysisConfig, settings: Settings) -> SweepRecorder:
    """The analysis run (the one ``mlflow run`` created, or a new one) and its recorder.

    The parameters are logged as given (those ``mlflow run`` did not log already); what they
    resolved to goes into tags, since parameters cannot change.
    """
    return SweepRecorder.open(
        plan.summary,
        uri=plan.uri,
        settings=settings,
        experiment=plan.experiment_name,
        sweep_id=plan.analysis_id,
        entry_point="analyze",
        params=config.params(),
        dataset=None,
        role="analysis",
        tags={
            "analysis_id": plan.analysis_id,
            "sweep_ids": ",".join(plan.sweep_ids),
            "metric": plan.metric.name,
            "registered_model": plan.registered_model,
            "output": str(plan.output),
            "results": plan.results,
            "summary_table": plan.summary_table,
        },
    )


def analyse(recorder: SweepRecorder, plan: Plan, clock: Clock) -> tuple[AnalysisReport, dict[str, float]]:
    """Every step after the plan, in order; returns the report and the analysis run's metrics.

    Raises what the stores raise. The report's files are in ``plan.output``; the caller logs
    them on the run as it closes it.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=plan.uri)
    run_id = recorder.tracking.parent_run_id
    metric = plan.metric
    with clock("join"):
        check = summaries.join_stores(plan.rows, plan.runs, metric.name)
    with clock("summary"):
        summary = summaries.summarize(plan.rows, metric)
        found = tuple(summaries.findings(plan.rows, summary, metric))
    plan.output.mkdir(parents=True, exist_ok=True)
    with clock("plots"):
        images = summaries.plot_all(plan.rows, summary, metric, plan.output)
    # only models with both a row and a run compete: a model whose run is gone is not registered
    candidates = summaries.ranked(check.joined[check.joined["model_uri"].fillna("") != ""], metric)
    with clock("vote"):
        vote, vote_note, split = _vote(plan, candidates)
        if vote is not None:
            images["vote"] = summaries.plot_vote(vote.comparison, metric, plan.output / "vote.png")
            vote_note += _log_vote(recorder, plan, vote, split)
    with clock("registry"):
        decision, champion_note = _crown(client, plan, candidates)
    with clock("evaluate"):
        champion_note += _evaluate(recorder, plan, decision, candidates, split)
    with clock("summary_table"):
        plan.summary.ensure()
        recorder.rows_of_one_transaction(_summary_rows(plan, summary), f"{readback.SUMMARY.prefix}/{plan.analysis_id}")
    report = AnalysisReport(
        plan, run_id, (), summary, check, found, vote, vote_note, decision, champion_note, clock.timings
    )
    with clock("report"):
        files = _write_files(report, images)
    report = AnalysisReport(
        plan, run_id, files, summary, check, found, vote, vote_note, decision, champion_note, clock.timings
    )
    return report, _metrics(report)


def reproduce_split(sweep: readback.SweepInfo, digest: str):
    """The sweep's train/validation/test split, rebuilt from the data parameters its parent run recorded.

    Raises MlfleetError when the parameters are missing or the data no longer has the
    sweep's digest (a changed file, or a relative path that means another file here).
    """
    from mlfleet.data import load_dataset, split_dataset

    p = sweep.params
    try:
        config = DataConfig(
            source=p["data"],
            target=p.get("target", ""),
            task=p.get("task", "auto"),
            drop=p.get("drop", ""),
            n_samples=int(p["n_samples"]),
            n_features=int(p["n_features"]),
            test_size=float(p["test_size"]),
            val_size=float(p["val_size"]),
            seed=int(p["seed"]),
        )
    except (KeyError, ValueError) as exc:
        raise MlfleetError(
            f"sweep {sweep.sweep_id} has no parent run recording its data parameters ({first_line(exc)})"
        ) from None
    dataset = load_dataset(config)
    if digest and dataset.digest != digest:
        raise MlfleetError(
            f"data={config.source} does not reproduce sweep {sweep.sweep_id}'s data "
            f"(digest {dataset.digest} here, {digest} recorded): "
            "the file changed, or its relative path means another file in this folder"
        )
    return split_dataset(dataset, test_size=config.test_size, val_size=config.val_size, seed=config.seed)


def _vote(plan: Plan, candidates: pd.DataFrame) -> tuple[summaries.VoteResult | None, str, Any]:
    """The vote of the k best models on the reproduced test split (and the split), or None and why not."""
    if candidates.empty:
        return None, "The vote was skipped: no finished model has both a run and a row.", None
    top = candidates.head(plan.k)
    sweeps = {s.sweep_id: s for s in plan.sweeps}
    try:
        split = reproduce_split(sweeps[top.iloc[0].sweep_id], str(top.iloc[0].dataset_digest))
    except MlfleetError as exc:
        return None, f"The vote was skipped: {exc}.", None
    labels = [f"#{r.model_id} {r.model_type}" for r in top.itertuples()]
    if len(set(labels)) < len(labels):  # the same model id in two sweeps
        labels = [f"{label} ({r.sweep_id})" for label, r in zip(labels, top.itertuples(), strict=True)]
    members = [
        summaries.Member(label, codes_model(model_format.load(r.model_uri)), float(getattr(r, plan.metric.name)))
        for label, r in zip(labels, top.itertuples(), strict=True)
    ]
    result = summaries.vote(members, split, plan.metric)
    note = result.verdict()
    if len(members) < plan.k:
        note += f" Only {len(members)} finished models have a run and a row, fewer than k={plan.k}."
    if result.not_reproduced:
        note += (
            " On the reproduced split these scores differ from the records: " + "; ".join(result.not_reproduced) + "."
        )
    return result, note, split


def _log_vote(recorder: SweepRecorder, plan: Plan, vote: summaries.VoteResult, split) -> str:
    """The vote as a model of the analysis run, predicting labels; what the note adds.

    It does not compete for the champion: its members were refitted on train + validation, so
    no validation score of the vote is out of sample, and choosing needs one.
    """
    run_id = recorder.tracking.parent_run_id
    model_uri = recorder.model.log_model(
        run_id,
        model=with_labels(vote.model, split.classes, split.X_test) if split.classes else vote.model,
        input_example=split.X_test.head(INPUT_EXAMPLE_ROWS),
        name=f"top{vote.k}-vote",
        tags={"mlflow.source.name": "analyze", "analysis_id": plan.analysis_id},
    )
    recorder.model.figures(run_id, tags={"vote_model_uri": model_uri})
    return (
        f" The vote is logged as {model_uri}; it does not compete for the champion (its members were "
        "refitted on the validation rows, so it has no validation score to be chosen on)."
    )


def _evaluate(recorder: SweepRecorder, plan: Plan, decision, candidates: pd.DataFrame, split) -> str:
    """``mlflow.models.evaluate`` of the champion on the report's half of the test split, into the analysis run.

    The rows nothing chose on: the gate compared models on the other half
    (:meth:`~mlfleet.data.Split.test_halves`). The labels given to evaluate are those the
    served model returns (text, booleans or integers, as in the file). Returns what the note adds.
    """
    if decision is None or split is None or decision.alias != champion.CHAMPION:
        return ""
    from mlflow import MlflowClient

    version = MlflowClient(plan.uri).get_model_version(decision.name, decision.version)
    if version.tags.get("dataset_digest") != str(candidates.iloc[0].dataset_digest):
        return " (The champion was not evaluated: it was trained on other data than this analysis's split.)"
    target = "target" if "target" not in split.X_test.columns else "__target__"
    _, report = split.test_halves()
    y = split.y_test[report]
    data = (
        split.X_test.iloc[report]
        .reset_index(drop=True)
        .assign(**{target: label_array(split.classes)[y] if split.classes else y})
    )
    model_type = "classifier" if split.task == "classification" else "regressor"
    try:
        metrics = recorder.model.evaluate(
            recorder.tracking.parent_run_id,
            f"models:/{decision.name}/{decision.version}",
            data,
            targets=target,
            model_type=model_type,
        )
    except Exception as exc:  # the evaluation is a report on the champion, not a decision: the analysis stands
        log.warning("mlflow.models.evaluate of the champion failed: %s", first_line(exc))
        return f" (mlflow.models.evaluate of the champion failed: {first_line(exc)}.)"
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()) if isinstance(v, float))[:300]
    return (
        f" mlflow.models.evaluate of the champion on the report's half of the test split ({len(report)} rows that "
        f"nothing chose on; the gate used the other half): {shown}."
    )


def _crown(client, plan: Plan, candidates: pd.DataFrame) -> tuple[champion.Decision | None, str]:
    if candidates.empty:
        return None, "Nothing was registered: no finished model has both a run and a row."
    best = candidates.iloc[0]
    candidate = champion.Candidate(
        model_uri=str(best.model_uri),
        run_id=str(best.mlflow_run_id),
        model_id=int(best.model_id),
        model_type=str(best.model_type),
        sweep_id=str(best.sweep_id),
        score=float(best[plan.metric.name]),
        dataset_digest=str(best.dataset_digest),
        analysis_id=plan.analysis_id,
        split={s.sweep_id: s for s in plan.sweeps}[str(best.sweep_id)].split,
    )
    decision = registry.crown(client, plan.registered_model, candidate, plan.metric, compare=_gate(plan, best))
    return decision, decision.sentence()


def _gate(plan: Plan, best) -> Callable[[Any], Comparison]:
    """The promotion gate: the challenger against the champion's version on the challenger's test rows."""

    def compare(champion_version) -> Comparison:
        sweeps = {s.sweep_id: s for s in plan.sweeps}
        split = reproduce_split(sweeps[str(best.sweep_id)], str(best.dataset_digest))
        return champion.compare_models(plan.metric, split, str(best.model_uri), champion_version.source)

    return compare


def _summary_rows(plan: Plan, summary: summaries.Summary) -> list[readback.SummaryRow]:
    """The per-type table as summary rows that name this analysis, one per model type."""
    first = plan.sweeps[0]
    now = datetime.now(timezone.utc)
    shared = {
        "analysis_id": plan.analysis_id,
        "analyzed_at": now,
        "experiment_id": plan.experiment_id,
        "sweep_ids": ",".join(plan.sweep_ids),
        "dataset": first.dataset or str(plan.rows["dataset"].iloc[0]),
        "dataset_digest": first.dataset_digest or str(plan.rows["dataset_digest"].iloc[0]),
        "metric": plan.metric.name,
    }
    rows = []
    for r in summaries.type_table(summary).to_dict("records"):
        figures = {name: finite(r[name]) for name in _FIGURES}
        rows.append(
            readback.SummaryRow(
                **shared,
                model_type=r["model_type"],
                family=r["family"],
                n_models=int(r["n_models"]),
                n_failed=int(r["n_failed"]),
                **figures,
            )
        )
    return rows


_FIGURES = (
    "mean_score",
    "std_score",
    "best_score",
    "worst_score",
    "mean_time_s",
    "total_time_s",
    "time_share",
    "score_per_s",
)


def _metrics(report: AnalysisReport) -> dict[str, float]:
    """The analysis run's metrics: counts, the best score, the vote, seconds per phase."""
    summary, check = report.summary, report.check
    best = summaries.ranked(report.plan.rows, report.plan.metric)
    values = {
        "n_models": summary.n_models,
        "n_failed": summary.n_failed,
        "n_sweeps": len(report.plan.sweeps),
        "n_model_types": len(summary.by_type),
        "best_score": float(best[report.plan.metric.name].iloc[0]) if len(best) else math.nan,
        "n_rows_without_run": check.count("row without a run"),
        "n_runs_without_row": check.count("run without a row"),
        "n_score_mismatches": check.count("score differs"),
        "n_status_mismatches": check.count("status differs"),
        **(
            {
                "vote_score": report.vote.vote_score,
                "best_single_score": report.vote.best_score,
                "vote_gain": report.vote.gain,
            }
            if report.vote
            else {}
        ),
        **{f"time_{phase}_s": seconds for phase, seconds in report.timings.items()},
    }
    return finite_only(values)


def _write_files(report: AnalysisReport, images: dict[str, Path]) -> tuple[Path, ...]:
    """report.html, summary.md, models.csv, mismatches.csv and analysis.json in the output folder."""
    out = report.plan.output
    doc = document(report, images)
    (out / "report.html").write_text(redact(summaries.render_html(doc)), encoding="utf-8")
    (out / "summary.md").write_text(redact(summaries.render_markdown(doc, relative_to=out)), encoding="utf-8")
    models = summaries.with_time(report.plan.rows).drop(columns=["params_json"])
    redact_frame(models).to_csv(out / "models.csv", index=False)
    redact_frame(report.check.mismatches).to_csv(out / "mismatches.csv", index=False)
    facts_text = json.dumps(facts(report), indent=2, default=str)
    (out / "analysis.json").write_text(redact(facts_text), encoding="utf-8")
    return (*(out / name for name in REPORT_FILES), *images.values())


def summary_lines(report: AnalysisReport) -> str:
    """A few lines for the terminal: what was analysed, the best model, the vote, the champion, where to look."""
    plan, summary = report.plan, report.summary
    lines = [
        f"analysis {plan.analysis_id}: {summary.n_models} models ({summary.n_failed} failed) "
        f"of sweep(s) {', '.join(plan.sweep_ids)}, "
        f"metric {plan.metric.name}; {report.check.sentence()}",
        *(f"- {line}" for line in report.findings),
        f"vote: {report.vote_note}",
        f"champion: {report.champion_note}",
        f"report: {plan.output / 'report.html'} "
        f"(and summary.md, {len([f for f in report.files if f.suffix == '.png'])} plots); "
        f"summary table: {plan.summary_table}; MLflow run {report.run_id}",
    ]
    return "\n".join(lines)
