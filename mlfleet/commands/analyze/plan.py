"""The reading half of an analysis: everything the user can get wrong is checked, and what the
analysis needs is read, before anything is written or registered.

The experiment and its sweeps, the results table, the chosen sweeps, the metric, ``k`` and
the locations of the report and the summary table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlfleet.commands.analyze import readback
from mlfleet.commands.analyze.types import Clock, Plan
from mlfleet.config import AnalysisConfig
from mlfleet.errors import MlfleetError, first_line
from mlfleet.ids import new_id
from mlfleet.locations import store as classify_store
from mlfleet.metrics import METRICS, Metric, task_metrics
from mlfleet.settings import Settings
from mlfleet.stores import registry, store
from mlfleet.stores.delta import probe_write
from mlfleet.stores.runs import sweep_parents
from mlfleet.stores.tables import open_results

REPORTS = "reports"


def plan_analysis(config: AnalysisConfig, settings: Settings, clock: Clock | None = None) -> Plan:
    """Check ``config`` against both stores and read what the analysis needs; writes nothing.

    Raises MlfleetError for ``k`` below 1, an experiment without sweeps, a missing results
    table, a sweep that does not exist, sweeps of different data, a metric the models do not
    have, or a report or summary location that cannot be written.
    """
    from mlflow import MlflowClient

    clock = clock or Clock()
    if config.k < 1:
        raise MlfleetError(f"k must be at least 1 (the most models the ensemble may hold), but got k={config.k}")
    uri = store.tracking_uri()
    if not settings.under_mlflow_run:
        store.experiment_name(uri, config.experiment, settings)  # a bare name on Databricks: one line, first
    name = config.registered_model.strip()
    registry.check_model_name(name, "registered_model", classify_store(registry.registry_uri(uri)), defaulted=True)
    store.prepare(uri, settings)
    client = MlflowClient(tracking_uri=uri)
    with clock("mlflow_query"):
        experiment = _experiment(client, config.experiment, settings)
        parents = sweep_parents(client, experiment.experiment_id)
    if not parents:
        raise MlfleetError(
            f"experiment {experiment.name!r} has no sweeps (no run tagged mlfleet.role=sweep); "
            f"train into it first (mlflow run . -e train_cpu --experiment-name {experiment.name}) "
            "or pass experiment=NAME"
        )
    table = open_results(config.results)
    with clock("delta_read"):
        all_rows = readback.read_rows(table, experiment.experiment_id)
    sweeps, notes = _choose(readback.known_sweeps(parents, all_rows), config.sweeps, experiment.name)
    ids = [s.sweep_id for s in sweeps]
    rows = all_rows[all_rows["sweep_id"].isin(ids)].reset_index(drop=True)
    if rows.empty:
        recorded = sorted({s.params.get("results", "") for s in sweeps} - {""})
        raise MlfleetError(
            f"results={config.results} has no rows of sweep(s) {', '.join(ids)}; pass the table they wrote"
            + (f" (their runs record results={', '.join(recorded)})" if recorded else "")
        )
    with clock("mlflow_query"):
        runs = readback.model_runs(client, experiment.experiment_id, ids)
    metric = _metric(config.metric, sweeps, rows, runs)
    _check_validated(metric, rows)
    runs["run_score"] = runs[metric.name] if metric.name in runs else float("nan")
    rows = readback.with_validation(rows, runs)
    analysis_id = new_id("analyze")
    output = Path(config.output or f"{REPORTS}/{analysis_id}").resolve()
    _check_output(output, config.output)
    summary = table.sibling(readback.SUMMARY, what="the summary table")
    summary.check_writable()
    return Plan(
        analysis_id=analysis_id,
        uri=uri,
        experiment_id=experiment.experiment_id,
        experiment_name=experiment.name,
        table=table,
        summary=summary,
        sweeps=tuple(sweeps),
        rows=rows,
        runs=runs,
        metric=metric,
        k=config.k,
        registered_model=config.registered_model.strip() or registry.default_name(experiment.name),
        output=output,
        notes=tuple(notes),
    )


def _experiment(client, name: str, settings: Settings):
    """The experiment to analyse: under ``mlflow run`` the run's own, else ``name`` (default mlfleet)."""
    run_id, env_id = settings.run_id, settings.experiment_id
    if run_id or env_id:
        experiment = client.get_experiment(client.get_run(run_id).info.experiment_id if run_id else env_id)
        if name and name != experiment.name:
            raise MlfleetError(
                f"experiment={name!r}, but `mlflow run` put this analysis in experiment {experiment.name!r}; "
                f"run it with --experiment-name {name} and leave experiment empty"
            )
        return experiment
    name = store.experiment_name(client.tracking_uri, name, settings)
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage != "active":
        raise MlfleetError(
            f"experiment {name!r} does not exist, so it has no sweeps to analyse; "
            "pass experiment=NAME of the experiment train_cpu or train_gpu ran in"
        )
    return experiment


def _choose(
    known: dict[str, readback.SweepInfo], wanted: tuple[str, ...], experiment: str
) -> tuple[list[readback.SweepInfo], list[str]]:
    """The sweeps to analyse and notes about those left out.

    Named sweeps must exist and share their data; by default the latest sweep of each entry
    point, keeping those trained on the same data as the latest of all.
    """
    latest_first = sorted(known.values(), key=lambda s: s.started, reverse=True)
    if wanted:
        unknown = [sid for sid in wanted if sid not in known]
        if unknown:
            listing = ", ".join(s.sweep_id for s in latest_first[:8]) + (", ..." if len(latest_first) > 8 else "")
            raise MlfleetError(
                f"sweep {unknown[0]!r} is not in experiment {experiment!r}; its sweeps, latest first: {listing}; "
                "pass sweep=ID[,ID]"
            )
        chosen = [known[sid] for sid in wanted]
        kinds = {_kind(s) for s in chosen}
        if len({(task, digest) for task, digest, _ in kinds}) > 1:
            shown = "; ".join(f"{s.sweep_id}: {s.task} on {s.dataset} (digest {s.dataset_digest})" for s in chosen)
            raise MlfleetError(
                f"the sweeps trained on different data, so their scores do not compare ({shown}); "
                "pass sweep= ids of one dataset"
            )
        if len(kinds) > 1:
            shown = "; ".join(f"{s.sweep_id}: {s.split or 'unrecorded'}" for s in chosen)
            raise MlfleetError(
                f"the sweeps split the data differently ({shown}), so each trained on rows another is tested on "
                "and their scores do not compare; pass sweep= ids of one seed, test_size and val_size"
            )
        return chosen, []
    newest: dict[str, readback.SweepInfo] = {}
    for sweep in latest_first:
        newest.setdefault(sweep.entry_point, sweep)
    head = latest_first[0]
    chosen = [s for s in newest.values() if _kind(s) == _kind(head)]
    notes = [
        f"left out sweep {s.sweep_id} ({s.entry_point}): it trained on other data or another split "
        f"({s.split or 'unrecorded'}) than the latest sweep {head.sweep_id} ({head.split or 'unrecorded'}); "
        f"pass sweep={s.sweep_id} to analyse it on its own"
        for s in newest.values()
        if s not in chosen
    ]
    return chosen, notes


def _kind(sweep: readback.SweepInfo) -> tuple[str, str, str]:
    """What sweeps must share to be compared: the task, the data and the split (which rows trained and tested)."""
    return sweep.task, sweep.dataset_digest, sweep.split


def _metric(name: str, sweeps: list[readback.SweepInfo], rows: pd.DataFrame, runs: pd.DataFrame) -> Metric:
    """The metric to rank by: ``name``, else the sweeps' shared primary metric.

    Checked against what the models recorded.
    """
    task = sweeps[0].task or str(rows["task"].iloc[0])
    if not name:
        primaries = sorted(
            {s.primary_metric for s in sweeps if s.primary_metric} | set(rows["primary_metric"].dropna())
        )
        if len(primaries) > 1:
            raise MlfleetError(
                f"the sweeps rank by different metrics ({', '.join(primaries)}); "
                "pass metric=NAME to compare them on one"
            )
        name = primaries[0] if primaries else ""
    finished = rows[rows["status"] == "FINISHED"]
    recorded = [
        m
        for m in task_metrics(task)
        if (m in finished and finished[m].notna().any()) or (m in runs and runs[m].notna().any())
    ]
    if finished.empty:  # every model failed: nothing recorded, any metric of the task will do
        recorded = list(task_metrics(task))
    if name not in recorded:
        raise MlfleetError(
            f"metric {name!r} is not recorded for the models of sweep(s) "
            f"{', '.join(s.sweep_id for s in sweeps)} ({task}); "
            f"use one of {', '.join(recorded)}"
        )
    return METRICS[name]


def _check_validated(metric: Metric, rows: pd.DataFrame) -> None:
    """Choosing ranks by the validation score, which exists for the metric the models were tuned on only."""
    tuned_on = sorted(set(rows.loc[rows["status"] == "FINISHED", "primary_metric"].dropna()) - {""})
    if tuned_on and tuned_on != [metric.name]:
        raise MlfleetError(
            f"metric={metric.name}: the models were tuned and validated on {', '.join(tuned_on)}, and the ranking, "
            f"the ensemble and the champion are chosen on validation scores; pass metric={tuned_on[0]} "
            "(or leave it empty), or analyse sweeps tuned on one metric"
        )


def _check_output(output: Path, given: str) -> None:
    shown = given or str(output)
    if output.exists() and not output.is_dir():
        raise MlfleetError(f"output={shown} is a file; pass a folder for the report")
    try:
        probe_write(output)
    except OSError as exc:
        raise MlfleetError(
            f"output={shown} cannot be written ({first_line(exc)}); pass output=FOLDER you can write to"
        ) from None
