"""What an analysis's report says, assembled from its results: the :class:`~mlfleet.commands.analyze.report.Document`
rendered to HTML and Markdown, and the facts written to ``analysis.json``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlfleet.commands.analyze.report import TITLES, Document, Section
from mlfleet.commands.analyze.types import AnalysisReport


def document(report: AnalysisReport, images: dict[str, Path]) -> Document:
    """The report's sections in reading order.

    Findings, the stores, the tables with their plots, the ensemble, the champion.
    """
    plan, summary = report.plan, report.summary
    metric = plan.metric
    direction = "higher is better" if metric.greater_is_better else "lower is better"
    meta = (
        ("analysis", plan.analysis_id),
        ("experiment", f"{plan.experiment_name} (id {plan.experiment_id})"),
        ("sweeps", "; ".join(f"{s.sweep_id} ({s.entry_point}, {s.n_rows} rows)" for s in plan.sweeps)),
        (
            "data",
            f"{plan.sweeps[0].dataset or plan.rows['dataset'].iloc[0]} "
            f"(digest {plan.sweeps[0].dataset_digest or plan.rows['dataset_digest'].iloc[0]})",
        ),
        ("metric", f"{metric.name} ({direction})"),
        ("models", f"{summary.counts()}, {len(summary.by_type)} model types"),
        ("results table", plan.results),
        ("summary table", f"{plan.summary_table} (analysis_id = {plan.analysis_id})"),
        ("MLflow run", report.run_id),
        ("written", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
    )

    def pictures(*names: str) -> tuple[tuple[str, Path], ...]:
        return tuple((TITLES.get(n, n), images[n]) for n in names if n in images)

    tables = summary.tables()
    top_title = next(iter(tables))
    ensemble_tables = (("", report.ensemble.comparison),) if report.ensemble is not None else ()
    sections = (
        Section("Findings", lines=tuple(report.findings) + tuple(f"Note: {n}" for n in plan.notes)),
        Section(
            "MLflow against Delta",
            lines=(report.check.sentence(),),
            tables=(("Mismatches", report.check.mismatches),) if len(report.check.mismatches) else (),
        ),
        Section(top_title, tables=(("", tables[top_title]),)),
        Section(
            "By model type",
            lines=(
                "Ordered by mean validation score; best_score and worst_score are the test scores of the type's best "
                "and worst model on validation.",
            ),
            tables=(("", summary.by_type),),
            images=pictures("score_by_type"),
        ),
        Section("CPU against GPU", tables=(("", summary.by_device),), images=pictures("cpu_vs_gpu")),
        Section(
            "By feature strategy",
            lines=(
                "effect: the mean gap of a strategy's models to the mean of their own model type on validation "
                "(test_effect: the same on test, shown, never ordered by); positive is better.",
            ),
            tables=(("", summary.by_strategy),),
            images=pictures("score_by_strategy"),
        ),
        Section(
            "Efficiency",
            lines=(
                "time: tuning + refit seconds; score_per_s: mean validation score (1/score where lower is better) "
                "per second; time_share: of all models' time.",
            ),
            tables=(("", summary.efficiency),),
            images=pictures("time_vs_score"),
        ),
        Section("Failed models", tables=(("", summary.failures),)),
        Section(
            "Ensemble selection",
            lines=(
                report.ensemble_note,
                "Greedy forward selection with replacement over every model's predictions on the validation rows "
                "(from its tuning-time fit); weight: how often a model was picked. Test scores are reported only.",
            ),
            tables=ensemble_tables,
            images=pictures("ensemble"),
        ),
        Section(
            "Champion",
            lines=(
                report.champion_note,
                f"Load it: mlflow.pyfunc.load_model('models:/{plan.registered_model}@champion').predict(rows)",
            ),
        ),
    )
    return Document(title=f"Fleet analysis {plan.analysis_id}", meta=meta, sections=sections)


def facts(report: AnalysisReport) -> dict[str, Any]:
    """The analysis in figures, for ``analysis.json`` (what a script or a test reads back)."""
    plan, summary, metric = report.plan, report.summary, report.plan.metric
    best = summary.top.iloc[0].to_dict() if len(summary.top) else None
    decision = report.decision
    return {
        "analysis_id": plan.analysis_id,
        "experiment_id": plan.experiment_id,
        "experiment": plan.experiment_name,
        "sweeps": [{"sweep_id": s.sweep_id, "entry_point": s.entry_point, "n_rows": s.n_rows} for s in plan.sweeps],
        "metric": metric.name,
        "greater_is_better": metric.greater_is_better,
        "n_models": summary.n_models,
        "n_failed": summary.n_failed,
        "n_skipped": summary.n_skipped,
        "model_types": summary.by_type["model_type"].tolist(),
        "best": best,
        "findings": list(report.findings),
        "mismatches": report.check.mismatches["kind"].value_counts().to_dict(),
        "ensemble": None
        if report.ensemble is None
        else {
            "members": list(report.ensemble.members),
            "weights": list(report.ensemble.weights),
            "val_score": report.ensemble.val_score,
            "test_score": report.ensemble.test_score,
            "best_single": report.ensemble.best_label,
            "best_single_val_score": report.ensemble.best_val,
            "best_single_test_score": report.ensemble.best_test,
            "gain": report.ensemble.gain,
            "wins": report.ensemble.wins,
        },
        "ensemble_note": report.ensemble_note,
        "champion": None
        if decision is None
        else {
            "registered_model": decision.name,
            "version": decision.version,
            "alias": decision.alias,
            "reason": decision.reason,
            "registered": decision.registered,
            "previous_champion": decision.previous_champion,
        },
        "results_table": plan.results,
        "summary_table": plan.summary_table,
        "run_id": report.run_id,
        "timings_s": report.timings,
    }
