"""One model from start to finish, as a Ray worker runs it: tune, then record it in both stores.

:func:`train_one` is plain composition of :func:`mlfleet.training.tuning.tune_and_fit` and a
:class:`~mlfleet.stores.recorder.Recorder`; :mod:`mlfleet.commands.sweep` runs it as a task.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

from mlfleet.data import Split
from mlfleet.errors import describe, full_traceback
from mlfleet.logs import recorded_warnings
from mlfleet.metrics import resolve_metric
from mlfleet.training.jobs import ModelJob
from mlfleet.training.labels import with_labels
from mlfleet.training.outcome import FAIL_ENV, Outcome, SweepSpec, failed_row, row_from_run, tuned_row
from mlfleet.training.tuning import TunedModel, tune_and_fit

log = logging.getLogger(__name__)
INPUT_EXAMPLE_ROWS = 5


def train_one(
    job: ModelJob,
    split: Split,
    spec: SweepSpec,
    *,
    node: str = "",
    previous_run: str = "",
    tries: int = 1,
    on_run: Callable[[str], None] | None = None,
) -> Outcome:
    """Train ``job`` and record it in both stores (see :func:`_train_one`); the outcome carries the
    process CPU-seconds of the whole of it, fitting and recording (``task_cpu_s``)."""
    cpu0 = time.process_time()
    outcome = _train_one(job, split, spec, node=node, previous_run=previous_run, tries=tries, on_run=on_run)
    return replace(outcome, task_cpu_s=time.process_time() - cpu0)


def _train_one(
    job: ModelJob,
    split: Split,
    spec: SweepSpec,
    *,
    node: str,
    previous_run: str,
    tries: int,
    on_run: Callable[[str], None] | None,
) -> Outcome:
    """Train ``job`` and record it in both stores; a model that raises becomes a FAILED run and row.

    A job holding a GPU trains on CUDA; the run's and row's ``device`` say where it really did.
    ``previous_run`` is the run of an earlier try (Ray retrying a task whose worker died; this
    is try ``tries``): one that finished is only mirrored into its row, one that did not is
    reused or replaced, so a model ends with one finished run. ``on_run(run_id)`` is told the
    run once it exists. When the tracking store cannot be reached the row says so.
    """
    recorder, started_wall, started = spec.recorder, time.time(), datetime.now(timezone.utc)
    device = "gpu" if job.gpus > 0 else "cpu"

    def failed(error: str, detail: str, run_id: str = "", cpu_s: float = 0.0, notes: tuple = ()) -> Outcome:
        def row(text):
            return failed_row(job, spec, split.task, text, run_id=run_id, node=node, started=started, device=device)

        _, built = recorder.fail(run_id, error, detail, row=row, version=job.attempt)
        return Outcome(built, 0.0, cpu_s, started_wall, time.time(), detail=detail, notes=notes)

    t0 = time.perf_counter()
    try:
        recorder.warm()
        if previous_run:
            recovered = recover_row(spec, job, split.task, previous_run, node=node)
            if recovered is not None:
                return Outcome(recovered, time.perf_counter() - t0, 0.0, started_wall, time.time())
        tags = {
            "model_id": str(job.model_id),
            "family": job.family,
            "device": device,
            "feature_strategy": job.feature_strategy,
        }
        run_id = recorder.start(job.run_name, tags, previous=previous_run, attempt=tries)
    except Exception as exc:
        return failed(f"MLflow: the model's run could not be started ({describe(exc)})", full_traceback(exc))
    tracking_s = time.perf_counter() - t0
    if on_run is not None:
        on_run(run_id)
    notes: list[str] = []
    try:
        with recorded_warnings(notes):
            tuned = _tune(job, split, spec)
    except Exception as exc:
        return failed(describe(exc), full_traceback(exc), run_id, notes=tuple(notes))
    t1 = time.perf_counter()
    try:
        model_uri = _log(recorder, run_id, job, split, spec, tuned, node)
    except Exception as exc:
        error = f"MLflow: the model trained but its run could not be logged ({describe(exc)})"
        return failed(error, full_traceback(exc), run_id, tuned.cpu_s, tuple(notes))
    row = tuned_row(job, spec, split.task, tuned, started=started, node=node, run_id=run_id, model_uri=model_uri)
    t2 = time.perf_counter()
    recorder.write([row], version=job.attempt)
    delta_s = time.perf_counter() - t2
    return Outcome(
        row, tracking_s + time.perf_counter() - t1, tuned.cpu_s, started_wall, time.time(), delta_s, notes=tuple(notes)
    )


def _tune(job: ModelJob, split: Split, spec: SweepSpec) -> TunedModel:
    from threadpoolctl import threadpool_limits

    if job.model_id in spec.fail_ids:
        raise RuntimeError(f"injected failure of model {job.model_id} ({FAIL_ENV})")
    metric = resolve_metric(spec.metric, split.task)
    with threadpool_limits(limits=job.cpus):
        return tune_and_fit(
            job, split, metric, spec.n_trials, n_jobs=job.cpus, device="cuda" if job.gpus > 0 else "cpu"
        )


def _log(recorder, run_id: str, job: ModelJob, split: Split, spec: SweepSpec, tuned: TunedModel, node: str) -> str:
    """Everything of the tuned model on its run (parameters, metrics, the search curve, the pipeline)."""
    from mlfleet.stores import tracking

    metric = resolve_metric(spec.metric, split.task)
    return recorder.finish(
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
        model=with_labels(tuned.pipeline, split.classes, split.X_test) if split.classes else tuned.pipeline,
        input_example=split.X_test.head(INPUT_EXAMPLE_ROWS),
        name=job.run_name,
    )


def recover_row(spec: SweepSpec, job: ModelJob, task: str, run_id: str, *, node: str = ""):
    """If run ``run_id`` finished, write the model's row from it and return the row; else None.

    For a model whose run was logged but whose task or driver died before its row was written.
    """
    from mlfleet.stores import tracking

    run = spec.recorder.run(run_id)
    if run.info.status != "FINISHED" or tracking.MODEL_URI_TAG not in run.data.tags:
        return None
    row = row_from_run(run, job, spec, task, node=node)
    spec.recorder.write([row], version=job.attempt)
    return row
