"""One model from start to finish, as a Ray worker runs it: fit, then record it.

:func:`fit` (a tuned model from a split) and :func:`record` (a fitted pipeline logged on its
run as a model of the file's labels) are what every command's models go through: a fleet's
model in :func:`train_one`, an ensemble's members and its vote in
:mod:`mlfleet.commands.ensemble`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from threadpoolctl import threadpool_limits

from mlfleet.data import Split
from mlfleet.errors import describe, full_traceback
from mlfleet.logs import recorded_warnings
from mlfleet.metrics import Metric, resolve_metric
from mlfleet.stores import runs
from mlfleet.stores.recorder import ModelRecorder
from mlfleet.training.jobs import ModelJob
from mlfleet.training.labels import with_labels
from mlfleet.training.outcome import FAIL_ENV, Outcome, SweepSpec, failed_row, row_from_run, tuned_row
from mlfleet.training.tuning import TunedModel, Tuning, fit_defaults, refit, tune, tune_and_fit

log = logging.getLogger(__name__)
INPUT_EXAMPLE_ROWS = 5


def study(
    job: ModelJob,
    split: Split,
    metric: Metric,
    n_trials: int,
    *,
    previous: Tuning | None,
    deadline: float,
    first_by: float | None = None,
    fail_ids: frozenset[int] = frozenset(),
) -> Tuning:
    """``n_trials`` more trials of ``job``'s study (a time budget's round), none started after ``deadline``
    (the study's first, its defaults, until ``first_by``: see :func:`~mlfleet.training.tuning.tune`).

    Threads limited to the job's cores; raises what :func:`fit` raises.
    """
    from threadpoolctl import threadpool_limits

    if job.model_id in fail_ids:
        raise RuntimeError(f"injected failure of model {job.model_id} ({FAIL_ENV})")
    device = "cuda" if job.gpus > 0 else "cpu"
    with threadpool_limits(limits=job.cpus):
        return tune(
            job, split, metric, n_trials, n_jobs=job.cpus, device=device, previous=previous, deadline=deadline,
            first_by=first_by,
        )  # fmt: skip


def fit(
    job: ModelJob,
    split: Split,
    metric: Metric,
    n_trials: int,
    *,
    fail_ids: frozenset[int] = frozenset(),
    what: str = "model",
) -> TunedModel:
    """``job``'s model on ``split``: an Optuna study of ``n_trials`` refitted on train + validation, or with
    ``n_trials`` 0 the family's defaults fitted on the training rows alone; threads limited to the job's cores.

    Raises whatever the estimator raises (the caller records it), and for a model id in
    ``fail_ids`` (the test seam :data:`~mlfleet.training.outcome.FAIL_ENV`; ``what`` the job is
    says which, a model or an ensemble's member).
    """
    from threadpoolctl import threadpool_limits

    if job.model_id in fail_ids:
        raise RuntimeError(f"injected failure of {what} {job.model_id} ({FAIL_ENV})")
    with threadpool_limits(limits=job.cpus):
        if n_trials == 0:
            return fit_defaults(job, split, metric, n_jobs=job.cpus)
        return tune_and_fit(job, split, metric, n_trials, n_jobs=job.cpus, device="cuda" if job.gpus > 0 else "cpu")


def record(
    recorder: ModelRecorder,
    run_id: str,
    *,
    model: Any,
    split: Split,
    name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    history: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    validation_predictions: Any = None,
    trusted: list[str] | None = None,
) -> str:
    """Log ``model`` (a fitted pipeline or vote predicting class codes) on run ``run_id`` as the model the user
    gets: one that predicts the file's labels, with the split's first test rows as its input example.
    Returns the logged model's URI."""
    return recorder.finish(
        run_id,
        params=params,
        metrics=metrics,
        history=history,
        tags=tags,
        model=with_labels(model, split.classes, split.X_test) if split.classes else model,
        input_example=split.X_test.head(INPUT_EXAMPLE_ROWS),
        name=name,
        validation_predictions=validation_predictions,
        trusted=trusted,
    )


def train_one(
    job: ModelJob,
    split: Split,
    spec: SweepSpec,
    *,
    node: str = "",
    previous_run: str = "",
    tries: int = 1,
    on_run: Callable[[str], None] | None = None,
    tuning: Tuning | None = None,
) -> Outcome:
    """Train ``job`` and log it (see :func:`_train_one`); the outcome carries the process CPU-seconds of
    the whole of it, fitting and recording (``task_cpu_s``). Its row is the driver's to write.

    With ``tuning`` (a study a time budget ran in earlier tasks) the model is its best trial refitted.
    """
    cpu0 = time.process_time()
    outcome = _train_one(
        job, split, spec, node=node, previous_run=previous_run, tries=tries, on_run=on_run, tuning=tuning
    )
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
    tuning: Tuning | None = None,
) -> Outcome:
    """Train ``job`` and log its run; a model that raises ends its run FAILED and comes back with a FAILED row.

    A job holding a GPU trains on CUDA; the run's and row's ``device`` say where it really did.
    ``previous_run`` is the run of an earlier try (a task whose worker died; this is try
    ``tries``): one that finished is only mirrored into its row, one that did not is reused or
    replaced, so a model ends with one finished run. ``on_run(run_id)`` is told the run once it
    exists. When the tracking store cannot be reached the row says so.
    """
    recorder, started_wall, started = spec.recorder, time.time(), datetime.now(timezone.utc)
    device = "gpu" if job.gpus > 0 else "cpu"

    def failed(error: str, detail: str, run_id: str = "", cpu_s: float = 0.0, notes: tuple = ()) -> Outcome:
        error = recorder.fail(run_id, error, detail)
        row = failed_row(job, spec, split.task, error, run_id=run_id, node=node, started=started, device=device)
        return Outcome(row, 0.0, cpu_s, started_wall, time.time(), detail=detail, notes=notes)

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
    metric = resolve_metric(spec.metric, split.task)
    try:
        with recorded_warnings(notes):
            if tuning is None:
                tuned = fit(job, split, metric, spec.n_trials, fail_ids=spec.fail_ids)
            else:
                fit_device = "cuda" if job.gpus > 0 else "cpu"  # not ``device``: the failed row's says gpu or cpu
                with threadpool_limits(limits=job.cpus):
                    tuned = refit(job, split, metric, tuning, n_jobs=job.cpus, device=fit_device)
    except Exception as exc:
        return failed(describe(exc), full_traceback(exc), run_id, notes=tuple(notes))
    t1 = time.perf_counter()
    try:
        model_uri = _log(recorder, run_id, job, split, spec, tuned, node)
    except Exception as exc:
        error = f"MLflow: the model trained but its run could not be logged ({describe(exc)})"
        return failed(error, full_traceback(exc), run_id, tuned.cpu_s, tuple(notes))
    row = tuned_row(job, spec, split.task, tuned, started=started, node=node, run_id=run_id, model_uri=model_uri)
    return Outcome(
        row, tracking_s + time.perf_counter() - t1, tuned.cpu_s, started_wall, time.time(), notes=tuple(notes)
    )


def _log(recorder, run_id: str, job: ModelJob, split: Split, spec: SweepSpec, tuned: TunedModel, node: str) -> str:
    """Everything of the tuned model on its run (parameters, metrics, the search curve, the pipeline)."""
    metric = resolve_metric(spec.metric, split.task)
    return record(
        recorder,
        run_id,
        model=tuned.pipeline,
        split=split,
        name=job.run_name,
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
            "n_trials_run": len(tuned.trial_scores),  # n_trials is the most; a time budget decides how many
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
            runs.PARAMS_TAG: json.dumps(tuned.best_params, sort_keys=True),
        },
        validation_predictions=tuned.val_predictions,
    )


def recover_row(spec: SweepSpec, job: ModelJob, task: str, run_id: str, *, node: str = ""):
    """If run ``run_id`` finished, the model's row rebuilt from it; else None.

    For a model whose run was logged but whose task or driver died before its row was written.
    """
    run = spec.recorder.run(run_id)
    if run.info.status != "FINISHED" or runs.MODEL_URI_TAG not in run.data.tags:
        return None
    return row_from_run(run, job, spec, task, node=node)
