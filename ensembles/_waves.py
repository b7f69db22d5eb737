"""The Ray side of an ensemble: warm workers, fit models in parallel, score and log them.

The split goes into the object store once; a task gets it and its rows. Fitting and
recording are separate waves, so that the wall time of a training wave is training alone
(the comparison is about that), while scoring and logging still run in parallel.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import ray

from mlfleet import tracking
from mlfleet.data import Split
from mlfleet.errors import first_line
from mlfleet.fleet import MAX_RETRIES
from mlfleet.jobs import ModelJob
from mlfleet.metrics import resolve_metric
from mlfleet.tracking import TrackingContext
from mlfleet.train import INPUT_EXAMPLE_ROWS

from ensembles._fit import Fitted, Scores, fit_rows, score_model


@dataclass(frozen=True)
class Wave:
    """What a wave of fits came to: one result or error per job, in job order, and its wall clock."""

    refs: tuple[Any, ...]  # the fits in the object store (a failed one: None)
    fitted: tuple[Fitted | None, ...]
    errors: tuple[str, ...]  # empty for a job that succeeded
    started: float  # epoch seconds, the driver's clock
    wall_s: float


@dataclass(frozen=True)
class Recorded:
    """A model's scores and where its MLflow model went (or why recording it failed)."""

    scores: Scores | None
    model_uri: str
    error: str = ""


def warm_workers(cpus: int) -> float:
    """Start ``cpus`` Ray workers and import the training code in each; return the seconds it took.

    A fresh worker spends seconds importing scikit-learn and the zoo. Done once up front, it
    is charged to neither side of the comparison: both training waves find warm workers.
    """
    t0 = time.perf_counter()
    task = ray.remote(_warm).options(num_cpus=1)
    ray.get([task.remote(0.5) for _ in range(max(cpus, 1))])
    return time.perf_counter() - t0


def _warm(hold_s: float) -> int:
    import mlfleet.tuning  # noqa: F401
    import mlfleet.zoo  # noqa: F401

    time.sleep(hold_s)  # hold the slot, so that each call lands in a worker of its own
    return os.getpid()


def fit_wave(jobs: list[ModelJob], split_ref, rows: list, metric: str, n_trials: int) -> Wave:
    """Fit every job on its rows as a Ray task, all submitted at once; wait for all of them.

    A job that raises (or whose worker dies after Ray's retries) gets its error, the others
    go on. The wall time runs from the first submission to the last result.
    """
    remote = ray.remote(_fit_task)
    started, t0 = time.time(), time.perf_counter()
    refs = [
        remote.options(num_cpus=job.cpus, max_retries=MAX_RETRIES, retry_exceptions=False, name=f"fit-{job.model_id}").remote(
            job, split_ref, r, metric, n_trials
        )
        for job, r in zip(jobs, rows)
    ]
    ray.wait(refs, num_returns=len(refs), fetch_local=False)  # finished, not yet copied here
    wall = time.perf_counter() - t0
    fitted, errors = [], []
    for ref in refs:
        try:
            fitted.append(ray.get(ref))
            errors.append("")
        except Exception as exc:
            fitted.append(None)
            errors.append(_error(exc))
    kept = tuple(ref if f is not None else None for ref, f in zip(refs, fitted))
    return Wave(kept, tuple(fitted), tuple(errors), started, wall)


def _fit_task(job: ModelJob, split: Split, rows, metric: str, n_trials: int) -> Fitted:
    for key in tracking.RUN_ENV:  # a worker must never log into the run `mlflow run` created
        os.environ.pop(key, None)
    return fit_rows(job, split, rows, resolve_metric(metric, split.task), n_trials)


def record_wave(requests: list[dict[str, Any]], split_ref, ctx: TrackingContext) -> list[Recorded]:
    """Score each fitted model and log it into its (already started) child run, in parallel.

    Each request holds ``run_id``, ``fitted`` (a :class:`Fitted` or a fitted model, or an
    object-store reference to one), ``params``, ``metrics``, ``tags`` and ``history`` for the run. A model whose scoring or
    logging raises ends its run FAILED and comes back with its error.
    """
    remote = ray.remote(_record_task).options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)
    refs = [remote.remote(ctx, split_ref, **request) for request in requests]
    out = []
    for ref, request in zip(refs, requests):
        try:
            out.append(ray.get(ref))
        except Exception as exc:  # the worker died: close the run here
            error = _error(exc)
            tracking.fail_child(ctx, request["run_id"], error)
            out.append(Recorded(None, "", error))
    return out


def _record_task(ctx: TrackingContext, split: Split, *, run_id: str, fitted, params, metrics, tags, history) -> Recorded:
    for key in tracking.RUN_ENV:
        os.environ.pop(key, None)
    tracking.warm_up(ctx)
    model = fitted.pipeline if isinstance(fitted, Fitted) else fitted  # a member's fit, or the vote
    try:
        scores = score_model(model, split)
        model_uri = tracking.finish_child(
            ctx,
            run_id,
            params=params,
            metrics={**metrics, **scores.test, **{f"val_{k}": v for k, v in scores.val.items()}},
            history=history,
            tags=tags,
            model=model,
            input_example=split.X_test.head(INPUT_EXAMPLE_ROWS),
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {first_line(exc)}"
        tracking.fail_child(ctx, run_id, error)
        return Recorded(None, "", error)
    return Recorded(scores, model_uri)


def _error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError wraps what the task raised
    return f"{type(cause).__name__}: {first_line(cause)}"
