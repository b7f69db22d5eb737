"""The writing half of an analysis, after :func:`~mlfleet.commands.analyze.plan.plan_analysis` checked everything:
the join, summary, plots, the ensemble, the champion, the summary table,
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
from mlfleet.commands import selected
from mlfleet.commands.analyze import readback
from mlfleet.commands.analyze import report as summaries
from mlfleet.commands.analyze.document import document, facts
from mlfleet.commands.analyze.types import REPORT_FILES, AnalysisReport, Clock, Plan
from mlfleet.config import AnalysisConfig, DataConfig
from mlfleet.errors import MlfleetError, first_line
from mlfleet.metrics import Comparison, finite, finite_only
from mlfleet.redaction import redact, redact_frame
from mlfleet.settings import Settings
from mlfleet.stores import registry
from mlfleet.stores.recorder import SweepRecorder
from mlfleet.training.labels import label_array

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
    with clock("ensemble"):
        ensemble, ensemble_note, split = _ensemble(client, plan, candidates)
        if ensemble is not None:
            images["ensemble"] = summaries.plot_ensemble(ensemble.comparison, metric, plan.output / "ensemble.png")
            logged = _log_ensemble(recorder, plan, ensemble, split) if len(ensemble.members) > 1 else None
            if logged is not None:
                ensemble_note += f" It is logged as {logged.model_uri}."
                recorder.model.figures(run_id, tags={selected.MODEL_TAG: logged.model_uri})
        else:
            logged = None
    with clock("registry"):
        decision, champion_note = _crown(client, plan, candidates, ensemble, logged)
    with clock("evaluate"):
        champion_note += _evaluate(recorder, plan, decision, candidates, split)
    with clock("summary_table"):
        plan.summary.ensure()
        recorder.rows_of_one_transaction(_summary_rows(plan, summary), f"{readback.SUMMARY.prefix}/{plan.analysis_id}")
    report = AnalysisReport(
        plan, run_id, (), summary, check, found, ensemble, ensemble_note, decision, champion_note, clock.timings
    )
    with clock("report"):
        files = _write_files(report, images)
    report = AnalysisReport(
        plan, run_id, files, summary, check, found, ensemble, ensemble_note, decision, champion_note, clock.timings
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


def _ensemble(client, plan: Plan, candidates: pd.DataFrame) -> tuple[summaries.EnsembleResult | None, str, Any]:
    """The ensemble selected over every finished model's validation predictions (and the split), or None and why.

    ``candidates`` are ranked best first on validation.
    """
    if candidates.empty:
        return None, "Ensemble selection was skipped: no finished model has both a run and a row.", None
    first = candidates.iloc[0]
    sweeps = {s.sweep_id: s for s in plan.sweeps}
    try:
        split = reproduce_split(sweeps[first.sweep_id], str(first.dataset_digest))
    except MlfleetError as exc:
        return None, f"Ensemble selection was skipped: {exc}.", None
    result, note = selected.build(
        client, candidates, split, plan.metric, max_members=plan.k, name_sweeps=len(plan.sweeps) > 1
    )
    return result, note, split


def _log_ensemble(recorder: SweepRecorder, plan: Plan, ensemble: summaries.EnsembleResult, split) -> selected.Logged:
    """The ensemble as a run of its own under the analysis run."""
    tags = {"analysis_id": plan.analysis_id, "sweep_ids": ",".join(plan.sweep_ids)}
    return selected.log(recorder, ensemble, split, plan.metric, name=f"ensemble-{plan.analysis_id}", tags=tags)


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


def _crown(
    client,
    plan: Plan,
    candidates: pd.DataFrame,
    ensemble: summaries.EnsembleResult | None,
    logged: selected.Logged | None,
) -> tuple[champion.Decision | None, str]:
    """Register the best of the analysis on validation: the ensemble when it beats the best single model there."""
    if candidates.empty:
        return None, "Nothing was registered: no finished model has both a run and a row."
    best = candidates.iloc[0]
    shared = {
        "sweep_id": str(best.sweep_id),
        "dataset_digest": str(best.dataset_digest),
        "analysis_id": plan.analysis_id,
        "split": {s.sweep_id: s for s in plan.sweeps}[str(best.sweep_id)].split,
    }
    if ensemble is not None and logged is not None and ensemble.wins:
        candidate = champion.Candidate(
            model_uri=logged.model_uri,
            run_id=logged.run_id,
            model_id=-1,
            model_type=f"ensemble of {len(ensemble.members)}",
            score=ensemble.test_score,
            identity=logged.identity,
            **shared,
        )
        chosen = " The ensemble beat the best single model on validation, so it is the candidate."
    else:
        candidate = champion.Candidate(
            model_uri=str(best.model_uri),
            run_id=str(best.mlflow_run_id),
            model_id=int(best.model_id),
            model_type=str(best.model_type),
            score=float(best[plan.metric.name]),
            **shared,
        )
        chosen = ""
    decision = registry.crown(
        client, plan.registered_model, candidate, plan.metric, compare=_gate(plan, best, candidate.model_uri)
    )
    return decision, decision.sentence() + chosen


def _gate(plan: Plan, best, model_uri: str) -> Callable[[Any], Comparison]:
    """The promotion gate: the candidate against the champion's version on the gate's half of the test rows."""

    def compare(champion_version) -> Comparison:
        sweeps = {s.sweep_id: s for s in plan.sweeps}
        split = reproduce_split(sweeps[str(best.sweep_id)], str(best.dataset_digest))
        return champion.compare_models(plan.metric, split, model_uri, champion_version.source)

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
    """The analysis run's metrics: counts, the best score, the ensemble, seconds per phase."""
    summary, check = report.summary, report.check
    best = summaries.ranked(report.plan.rows, report.plan.metric)
    values = {
        "n_models": summary.n_models,
        "n_failed": summary.n_failed,
        "n_skipped": summary.n_skipped,
        "n_sweeps": len(report.plan.sweeps),
        "n_model_types": len(summary.by_type),
        "best_score": float(best[report.plan.metric.name].iloc[0]) if len(best) else math.nan,
        "n_rows_without_run": check.count("row without a run"),
        "n_runs_without_row": check.count("run without a row"),
        "n_score_mismatches": check.count("score differs"),
        "n_status_mismatches": check.count("status differs"),
        **(
            {
                "ensemble_val_score": report.ensemble.val_score,
                "ensemble_test_score": report.ensemble.test_score,
                "best_single_val_score": report.ensemble.best_val,
                "ensemble_gain": report.ensemble.gain,
                "ensemble_members": float(len(report.ensemble.members)),
            }
            if report.ensemble
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
    """A few lines for the terminal: what was analysed, the best model, the ensemble, the champion, where to look."""
    plan, summary = report.plan, report.summary
    lines = [
        f"analysis {plan.analysis_id}: {summary.counts()} "
        f"of sweep(s) {', '.join(plan.sweep_ids)}, "
        f"metric {plan.metric.name}; {report.check.sentence()}",
        *(f"- {line}" for line in report.findings),
        f"ensemble: {report.ensemble_note}",
        f"champion: {report.champion_note}",
        f"report: {plan.output / 'report.html'} "
        f"(and summary.md, {len([f for f in report.files if f.suffix == '.png'])} plots); "
        f"summary table: {plan.summary_table}; MLflow run {report.run_id}",
    ]
    return "\n".join(lines)
