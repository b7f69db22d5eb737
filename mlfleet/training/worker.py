"""One model from start to finish, as a worker runs it: tune, log the run, append the row.

Plain composition of :mod:`mlfleet.tuning`, :mod:`mlfleet.tracking` and
:mod:`mlfleet.results`; :mod:`mlfleet.fleet` runs it as a Ray task.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from mlfleet import results, tracking
from mlfleet.data import Split
from mlfleet.errors import first_line
from mlfleet.jobs import ModelJob
from mlfleet.metrics import resolve_metric
from mlfleet.results import ResultRow
from mlfleet.tracking import TrackingContext
from mlfleet.tuning import tune_and_fit
from mlfleet.zoo import family

INPUT_EXAMPLE_ROWS = 5
#: a test seam for failure handling: models whose ids are listed here (comma-separated) raise
FAIL_ENV = "MLFLEET_FAIL_MODEL_IDS"


@dataclass(frozen=True)
class SweepSpec:
    """What every model of a sweep shares, sent once with each task."""

    tracking: TrackingContext
    results: str
    metric: str
    n_trials: int
    dataset: str
    dataset_digest: str
    fail_ids: frozenset[int] = frozenset()  # the test seam, read once by the driver (see injected_failures)
    rows_by_driver: bool = False  # results is a Spark table: workers return their rows, the driver writes them

    @property
    def sweep_id(self) -> str:
        return self.tracking.sweep_id


@dataclass(frozen=True)
class Outcome:
    """A model's row and what it cost: seconds spent logging (MLflow + Delta) and CPU-seconds of model work."""

    row: ResultRow
    tracking_s: float
    cpu_s: float
    started: float
    finished: float
    delta_s: float = 0.0
    resumed: bool = False  # complete before this run of the sweep (resume): no cost of this run


def train_one(job: ModelJob, split: Split, spec: SweepSpec, *, node: str = "", previous_run: str = "", tries: int = 1, on_run=None) -> Outcome:
    """Train ``job`` and record it in both stores; a model that raises becomes a FAILED run and row.

    A job holding a GPU trains on CUDA; the run's and row's ``device`` say where it really did.
    ``previous_run`` is the run of an earlier try (Ray retrying a task whose worker died; this is try ``tries``):
    one that finished is only mirrored into its row, one that did not is reused or replaced,
    so a model ends with one finished run. ``on_run(run_id)`` is told the run once it exists.
    When the tracking store cannot be reached the model is recorded as such in its row.
    """
    from threadpoolctl import threadpool_limits

    for key in tracking.RUN_ENV:  # a worker must never log into the run `mlflow run` created
        os.environ.pop(key, None)
    started_wall, started = time.time(), _now()
    metric = resolve_metric(spec.metric, split.task)
    device = "gpu" if job.gpus > 0 else "cpu"
    tags = {"model_id": str(job.model_id), "family": job.family, "device": device, "feature_strategy": job.feature_strategy}
    run_id = ""
    try:
        tracking.warm_up(spec.tracking)
        t0 = time.perf_counter()
        if previous_run:
            recovered = recover_row(spec, job, split.task, previous_run, node=node)
            if recovered is not None:
                return Outcome(recovered, time.perf_counter() - t0, 0.0, started_wall, time.time())
        run_id = tracking.start_child(spec.tracking, run_name=job.run_name, tags=tags, previous=previous_run, attempt=tries)
        tracking_s = time.perf_counter() - t0
    except Exception as exc:
        error = f"MLflow: the model's run could not be started ({type(exc).__name__}: {first_line(exc)})"
        return _record(job, spec, split.task, metric.name, started, started_wall, node, device, run_id=run_id, error=error)
    if on_run is not None:
        on_run(run_id)
    try:
        if job.model_id in spec.fail_ids:
            raise RuntimeError(f"injected failure of model {job.model_id} ({FAIL_ENV})")
        with threadpool_limits(limits=job.cpus):
            tuned = tune_and_fit(job, split, metric, spec.n_trials, n_jobs=job.cpus, device="cuda" if job.gpus > 0 else "cpu")
    except Exception as exc:
        return _record(job, spec, split.task, metric.name, started, started_wall, node, device, run_id=run_id, error=f"{type(exc).__name__}: {first_line(exc)}")
    cpu_s = tuned.cpu_s
    t1 = time.perf_counter()
    try:
        model_uri = tracking.finish_child(
            spec.tracking,
            run_id,
            params={
                "family": job.family,
                "model_id": job.model_id,
                "model_type": tuned.model_type,
                "feature_strategy": job.feature_strategy,
                "n_features": tuned.n_features,
                "n_trials": spec.n_trials,
                "primary_metric": metric.name,
                **tuned.best_params,
            },
            metrics={
                **tuned.test_metrics,
                "score": tuned.score,
                f"best_val_{metric.name}": tuned.best_val_score,
                "tuning_s": tuned.tuning_s,
                "train_s": tuned.train_s,
                "cpu_s": tuned.cpu_s,
                **tuned.extra_metrics,
            },
            history={f"val_{metric.name}": tuned.trial_scores},
            tags={
                "node": node,
                "model_type": tuned.model_type,
                "device": tuned.device,
                "cpus": str(job.cpus),
                "gpus": str(job.gpus),
                tracking.PARAMS_TAG: json.dumps(tuned.best_params, sort_keys=True),
            },
            model=tuned.pipeline,
            input_example=split.X_test.head(INPUT_EXAMPLE_ROWS),
        )
    except Exception as exc:
        error = f"MLflow: the model trained but its run could not be logged ({type(exc).__name__}: {first_line(exc)})"
        return _record(job, spec, split.task, metric.name, started, started_wall, node, tuned.device, run_id=run_id, error=error, cpu_s=cpu_s)
    row = _row(job, spec, split.task, metric.name, started, node, tuned.device, run_id=run_id, model_uri=model_uri, tuned=tuned)
    t2 = time.perf_counter()
    write_row(spec, row, job)
    delta_s = time.perf_counter() - t2
    tracking_s += time.perf_counter() - t1
    return Outcome(row, tracking_s, cpu_s, started_wall, time.time(), delta_s)


def _record(job, spec, task, metric_name, started, started_wall, node, device, *, run_id, error, cpu_s=0.0) -> Outcome:
    """End the model's run FAILED with ``error`` (if the store takes it) and write its FAILED row."""
    if run_id:
        try:
            tracking.fail_child(spec.tracking, run_id, error)
        except Exception as exc:  # the store went away: the row still says what happened
            error = f"{error}; the run could not be marked FAILED either ({type(exc).__name__}: {first_line(exc)})"
    row = _row(job, spec, task, metric_name, started, node, device, run_id=run_id, error=error)
    write_row(spec, row, job)
    return Outcome(row, 0.0, cpu_s, started_wall, time.time())


def recover_row(spec: SweepSpec, job: ModelJob, task: str, run_id: str, *, node: str = "") -> ResultRow | None:
    """If run ``run_id`` finished, write the model's row from it and return the row; else None.

    For a model whose run was logged but whose task or driver died before its row was written.
    """
    run = tracking.get_run(spec.tracking, run_id)
    if run.info.status != "FINISHED" or tracking.MODEL_URI_TAG not in run.data.tags:
        return None
    row = row_from_run(run, job, spec, task, node=node)
    write_row(spec, row, job)
    return row


def write_row(spec: SweepSpec, row: ResultRow, job: ModelJob) -> None:
    """Append ``row`` as the model's generation ``job.attempt``, unless the driver writes the sweep's rows."""
    if not spec.rows_by_driver:
        results.append_row(spec.results, row, attempt=job.attempt)


def row_from_run(run, job: ModelJob, spec: SweepSpec, task: str, *, node: str = "") -> ResultRow:
    """The row a finished model run stands for, rebuilt from what the run logged."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    metric_name = params.get("primary_metric") or resolve_metric(spec.metric, task).name
    scores = {k: _finite(metrics.get(k)) for k in results.CLASSIFICATION_METRICS + results.REGRESSION_METRICS}
    n_features = params.get("n_features")
    return ResultRow(
        sweep_id=spec.sweep_id,
        model_id=job.model_id,
        model_type=tags.get("model_type", family(job.family).model_type(task)),
        family=job.family,
        device=tags.get("device", "gpu" if job.gpus > 0 else "cpu"),
        feature_strategy=job.feature_strategy,
        n_features=int(n_features) if n_features else None,
        task=task,
        params_json=tags.get(tracking.PARAMS_TAG, "{}"),
        primary_metric=metric_name,
        score=_finite(metrics.get("score")),
        **scores,
        n_trials=spec.n_trials,
        tuning_s=metrics.get("tuning_s"),
        train_s=metrics.get("train_s"),
        cpus=float(job.cpus),
        gpus=float(job.gpus),
        status="FINISHED",
        error="",
        mlflow_run_id=run.info.run_id,
        model_uri=tags[tracking.MODEL_URI_TAG],
        experiment_id=spec.tracking.experiment_id,
        dataset=spec.dataset,
        dataset_digest=spec.dataset_digest,
        started_at=datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc),
        finished_at=datetime.fromtimestamp((run.info.end_time or run.info.start_time) / 1000, timezone.utc),
        node=tags.get("node", node),
        entry_point=spec.tracking.entry_point,
    )


def failed_row(job: ModelJob, spec: SweepSpec, task: str, error: str, *, run_id: str = "", node: str = "") -> ResultRow:
    """The row of a model whose task died before it could write its own."""
    metric = resolve_metric(spec.metric, task)
    return _row(job, spec, task, metric.name, _now(), node, "gpu" if job.gpus > 0 else "cpu", run_id=run_id, error=error)


def _row(job, spec, task, metric_name, started, node, device, *, run_id, model_uri="", tuned=None, error="") -> ResultRow:
    fam = family(job.family)
    scores = dict.fromkeys(results.CLASSIFICATION_METRICS + results.REGRESSION_METRICS)
    if tuned is not None:
        scores.update({k: _finite(v) for k, v in tuned.test_metrics.items()})
    return ResultRow(
        sweep_id=spec.sweep_id,
        model_id=job.model_id,
        model_type=tuned.model_type if tuned else fam.model_type(task),
        family=job.family,
        device=device,
        feature_strategy=job.feature_strategy,
        n_features=tuned.n_features if tuned else None,
        task=task,
        params_json=json.dumps(tuned.best_params if tuned else {}, sort_keys=True),
        primary_metric=metric_name,
        score=_finite(tuned.score) if tuned else None,
        **scores,
        n_trials=spec.n_trials,
        tuning_s=tuned.tuning_s if tuned else None,
        train_s=tuned.train_s if tuned else None,
        cpus=float(job.cpus),
        gpus=float(job.gpus),
        status="FAILED" if error else "FINISHED",
        error=error,
        mlflow_run_id=run_id,
        model_uri=model_uri,
        experiment_id=spec.tracking.experiment_id,
        dataset=spec.dataset,
        dataset_digest=spec.dataset_digest,
        started_at=started,
        finished_at=_now(),
        node=node,
        entry_point=spec.tracking.entry_point,
    )


def injected_failures() -> frozenset[int]:
    """The model ids listed in ``MLFLEET_FAIL_MODEL_IDS``, read where the sweep starts.

    Read by the driver, not by workers: workers on a cluster (or in a Ray started earlier)
    do not see the driver's environment.
    """
    listed = os.environ.get(FAIL_ENV, "")
    return frozenset(int(part) for part in listed.split(",") if part.strip().isdigit())


def _finite(value):
    return None if value is None or value != value else float(value)


def _now() -> datetime:
    return datetime.now(timezone.utc)
