"""A whole sweep, from a frozen config to both stores: what ``train_cpu`` calls.

Everything the user can get wrong is checked before anything is created: the data, the
target, the metric, the split, the results location, the tracking store and the Ray
address. Only then are the Delta table and the parent run made (or, with ``resume``, the
sweep's parent found, its configuration checked and its state reconciled) and the jobs
submitted.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from mlfleet import fleet, guard, results, tracking
from mlfleet.config import FleetConfig
from mlfleet.data import load_dataset, split_dataset
from mlfleet.errors import MlfleetError, first_line
from mlfleet.jobs import expand_jobs
from mlfleet.metrics import resolve_metric
from mlfleet.progress import Progress
from mlfleet.redaction import redact
from mlfleet.resume import check_config
from mlfleet.resume import plan as resume_plan
from mlfleet.train import Outcome, SweepSpec, injected_failures
from mlfleet.zoo import family


@dataclass(frozen=True)
class SweepReport:
    """What a sweep did: its ids, every model's outcome and the sweep's figures."""

    sweep_id: str
    experiment_id: str
    parent_run_id: str
    results: str
    metric: str
    outcomes: tuple[Outcome, ...]
    figures: dict[str, float] = field(default_factory=dict)
    unclosed: str = ""  # why the parent run could not be closed (the tracking store went away)

    @property
    def failed(self) -> int:
        return sum(not o.row.ok for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 when every model succeeded and the sweep was recorded; 1 otherwise (what ran is still recorded)."""
        return 1 if self.failed or self.unclosed else 0


def new_sweep_id(entry_point: str) -> str:
    """A readable, unique sweep id such as ``train_cpu-20261122-101500-3fa2``."""
    return f"{entry_point}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def run_sweep(config: FleetConfig, *, stream: TextIO | None = None) -> SweepReport:
    """Train the fleet of ``config``; return the report. Raises MlfleetError on bad input."""
    stream = stream or sys.stderr
    dataset = load_dataset(config.data)
    metric = resolve_metric(config.metric, dataset.task)
    split = split_dataset(dataset, test_size=config.data.test_size, val_size=config.data.val_size, seed=config.seed)
    if config.resume and results.is_spark_table(config.results):
        raise MlfleetError(
            f"resume={config.resume}: resuming reads the table's Delta transactions through delta-rs, which a Spark table "
            f"({config.results}) does not offer; start a new sweep, or use a results folder or URI for sweeps you may resume"
        )
    results.check_writable(config.results)
    results_uri = results.resolve_location(config.results)
    uri = tracking.tracking_uri()
    tracking.probe_server(uri)  # before Ray starts: a dead server fails in seconds, workers inherit the retry bounds
    cluster = fleet.connect(config.address)
    try:
        guard.check_shared_stores(cluster, tracking_uri=uri, results=(results_uri,))
        gpus = fleet.gpus_per_model(config.device, config.gpus_per_model, cluster) if _wants_gpus(config) else 0.0
        tracking.prepare_store(uri)
        fleet.warm_workers(cluster, uri)  # the workers' seconds of imports overlap the sweep's opening
        jobs = expand_jobs(
            config.models,
            first_id=config.first_id,
            seed=config.seed,
            max_cpus=cluster.max_cpus,
            max_gpus=cluster.max_gpus,
            gpus_per_model=gpus,
        )
        if _wants_gpus(config) and not gpus and config.device == "auto":
            print("no GPU in the Ray cluster: the GPU families train on CPU (device=auto)", file=stream, flush=True)
        if config.resume:  # the sweep and its configuration are checked before anything is written
            parent = tracking.find_sweep(uri, config.resume)
            check_config(parent, config, dataset.digest)
        added = results.ensure_table(results_uri)
        if added:
            print(f"results table {results_uri}: added the columns {', '.join(added)} (schema evolution; earlier rows read them as null)", file=stream, flush=True)
        entity = tracking.dataset_entity(
            dataset.X, dataset.y, name=dataset.name, source=dataset.source, digest=dataset.digest, target=dataset.target
        )
        requirements = tracking.model_requirements({j.family for j in jobs})
        if config.resume:
            sweep_id = config.resume
            sweep = tracking.reopen_sweep(uri, parent, entry_point=config.entry_point, dataset=entity, pip_requirements=requirements)
        else:
            sweep_id = new_sweep_id(config.entry_point)
            sweep = tracking.open_sweep(
                uri=uri,
                experiment=config.experiment,
                sweep_id=sweep_id,
                entry_point=config.entry_point,
                params={**config.params(), "n_models": str(len(jobs))},
                tags={
                    "task": dataset.task,
                    "primary_metric": metric.name,
                    "dataset": dataset.name,
                    "dataset_digest": dataset.digest,
                    tracking.CONFIG_TAG: json.dumps(config.params(), sort_keys=True),
                },
                dataset=entity,
                pip_requirements=requirements,
            )
        print(
            f"sweep {sweep_id}: {len(jobs)} models, {dataset.task} on {dataset.name} "
            f"({len(dataset.y)} rows, {dataset.X.shape[1]} columns), metric {metric.name}; "
            f"Ray {cluster.address} with {cluster.nodes} node(s), {cluster.total_cpus:g} CPUs; "
            f"MLflow {redact(uri)} run {sweep.context.parent_run_id}; Delta {redact(results_uri)}\n"
            f"  to continue this sweep after an interruption, run the same command with resume={sweep_id}",
            file=stream,
            flush=True,
        )
        spec = SweepSpec(
            sweep.context,
            results_uri,
            metric.name,
            config.n_trials,
            dataset.name,
            dataset.digest,
            injected_failures(),
            rows_by_driver=results.is_spark_table(results_uri),
        )
        done: tuple[Outcome, ...] = ()
        if config.resume:
            plan = resume_plan(spec, jobs, dataset.task)
            print(plan.describe(sweep_id), file=stream, flush=True)
            done, jobs = plan.complete, plan.to_train
        progress = Progress(len(jobs), metric, stream=stream)

        def on_update(done: int, failed: int, running: int, outcome: Outcome | None) -> None:
            row = outcome.row if outcome else None
            progress.update(
                done=done,
                failed=failed,
                running=running,
                score=row.score if row and row.ok else None,
                who=f"#{row.model_id} {row.family}" if row else "",
            )

        start = time.perf_counter()
        try:
            outcomes = sorted([*done, *(fleet.run_jobs(jobs, split, spec, on_update=on_update) if jobs else [])], key=lambda o: o.row.model_id)
        except BaseException as exc:
            progress.close()
            with contextlib.suppress(Exception):  # the store may be what failed
                tracking.abort_sweep(sweep, "interrupted" if isinstance(exc, KeyboardInterrupt) else f"driver error: {exc!r}")
            raise
        progress.close()
        wall = time.perf_counter() - start
        figures = sweep_figures(outcomes, wall_s=wall, cpus=cluster.total_cpus, metric=metric)
        unclosed = ""
        try:
            with tempfile.TemporaryDirectory() as tmp:
                csv = Path(tmp) / "results.csv"
                results.rows_to_frame([o.row for o in outcomes]).to_csv(csv, index=False)
                tracking.close_sweep(sweep, metrics=figures, artifacts=[csv], failed=figures["n_failed"] > 0)
        except Exception as exc:  # the tracking store went away: the rows are in Delta, resume later
            unclosed = f"{type(exc).__name__}: {first_line(exc)}"
    finally:
        fleet.disconnect(cluster)
    report = SweepReport(
        sweep_id, sweep.context.experiment_id, sweep.context.parent_run_id, results_uri, metric.name, tuple(outcomes), figures, unclosed
    )
    print(summary_lines(report), file=stream, flush=True)
    return report


def _wants_gpus(config: FleetConfig) -> bool:
    return any(family(name).gpus for name, _ in config.models)


def sweep_figures(outcomes: list[Outcome], *, wall_s: float, cpus: float, metric) -> dict[str, float]:
    """The sweep's figures: counts, best score, wall time, tracking cost, parallel efficiency."""
    every_ok = [o for o in outcomes if o.row.ok]
    ok = [o for o in every_ok if not o.resumed]  # what this run of the sweep did and cost
    tracking_s = sorted(o.tracking_s for o in ok)
    model_s = sum((o.row.tuning_s or 0.0) + (o.row.train_s or 0.0) for o in ok)
    # model work in CPU-seconds: the seconds each model tuned and trained, times the CPUs it held
    work_cpu_s = sum(((o.row.tuning_s or 0.0) + (o.row.train_s or 0.0)) * o.row.cpus for o in ok)
    cpu_s = sum(o.cpu_s for o in outcomes)
    capacity = wall_s * cpus
    scores = [o.row.score for o in every_ok if o.row.score is not None]
    best = (max if metric.greater_is_better else min)(scores) if scores else float("nan")
    return {
        "n_models": float(len(outcomes)),
        "n_succeeded": float(len(every_ok)),
        "n_failed": float(len(outcomes) - len(every_ok)),
        "n_trained": float(sum(not o.resumed for o in outcomes)),
        "best_score": best,
        "wall_s": wall_s,
        "model_work_cpu_s": work_cpu_s,
        "model_cpu_s": cpu_s,
        "parallel_efficiency": work_cpu_s / capacity if capacity > 0 else float("nan"),
        "cpu_utilisation": cpu_s / capacity if capacity > 0 else float("nan"),
        "tracking_s_median": statistics.median(tracking_s) if tracking_s else float("nan"),
        "tracking_s_p95": tracking_s[min(len(tracking_s) - 1, int(0.95 * len(tracking_s)))] if tracking_s else float("nan"),
        "tracking_share": sum(tracking_s) / model_s if model_s else float("nan"),
        "delta_s_median": statistics.median(o.delta_s for o in ok) if ok else float("nan"),
    }


def summary_lines(report: SweepReport) -> str:
    """A few lines for the terminal: what succeeded, the best model, where to look."""
    f = report.figures
    ok = [o.row for o in report.outcomes if o.row.ok]
    lines = [
        f"sweep {report.sweep_id}: {int(f['n_succeeded'])} of {int(f['n_models'])} models succeeded, "
        f"{int(f['n_failed'])} failed, in {f['wall_s']:.1f} s (parallel efficiency {f['parallel_efficiency']:.0%}, CPU utilisation {f['cpu_utilisation']:.0%})"
    ]
    if ok:
        best = next(r for r in ok if r.score == f["best_score"])
        lines.append(
            f"best: model {best.model_id} ({best.family}, {best.feature_strategy}) {report.metric}={best.score:.4f}, model {best.model_uri}"
        )
    for o in report.outcomes:
        if not o.row.ok:
            lines.append(f"failed: model {o.row.model_id} ({o.row.family}): {o.row.error}")
    lines.append(f"results: Delta {redact(report.results)}; runs: experiment {report.experiment_id}, parent run {report.parent_run_id}")
    if report.unclosed:
        lines.append(f"error: the sweep's parent run could not be closed ({report.unclosed}); when the tracking store is back, resume={report.sweep_id}")
    elif report.failed:
        lines.append(f"to train the failed models again: the same command with resume={report.sweep_id}")
    return "\n".join(lines)
