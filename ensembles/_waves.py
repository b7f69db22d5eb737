"""The Ray side of an ensemble: fit models in parallel, then score and log them in parallel.

The split goes into the object store once; a task gets it and its rows. Fitting and
recording are separate waves, so that the wall time of a training wave is training alone
(the comparison is about that), while scoring and logging still run in parallel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import ray

from ensembles._fit import Fitted, Scores, fit_rows, score_model
from mlfleet.data import Split
from mlfleet.errors import describe, full_traceback
from mlfleet.execution import tasks
from mlfleet.metrics import resolve_metric
from mlfleet.stores.recorder import Recorder
from mlfleet.training.jobs import ModelJob
from mlfleet.training.labels import with_labels
from mlfleet.training.worker import INPUT_EXAMPLE_ROWS


@dataclass(frozen=True)
class Wave:
    """What a wave of fits came to: one result or error per job, in job order, and its wall clock."""

    refs: tuple[Any, ...]  # the fits in the object store (a failed one: None)
    fitted: tuple[Fitted | None, ...]
    errors: tuple[str, ...]  # empty for a job that succeeded
    details: tuple[str, ...]  # the traceback of a job that failed
    started: float  # epoch seconds, the driver's clock
    wall_s: float


@dataclass(frozen=True)
class Recorded:
    """A model's scores and where its MLflow model went (or why recording it failed)."""

    scores: Scores | None
    model_uri: str
    error: str = ""


def fit_wave(jobs: list[ModelJob], split_ref, rows: list, metric: str, n_trials: int) -> Wave:
    """Fit every job on its rows as a Ray task, all submitted at once; wait for all of them.

    A job that raises (or whose worker dies after Ray's retries) gets its error, the others
    go on. The wall time runs from the first submission to the last result.
    """
    started, t0 = time.time(), time.perf_counter()
    refs = [
        tasks.submit(_fit_task, job, split_ref, r, metric, n_trials, cpus=job.cpus, name=f"fit-{job.model_id}")
        for job, r in zip(jobs, rows, strict=True)
    ]
    ray.wait(refs, num_returns=len(refs), fetch_local=False)  # finished, not yet copied here
    wall = time.perf_counter() - t0
    done = tasks.gather(refs)
    fitted = tuple(d.value if d.error is None else None for d in done)
    return Wave(
        refs=tuple(ref if f is not None else None for ref, f in zip(refs, fitted, strict=True)),
        fitted=fitted,
        errors=tuple(describe(d.error) if d.error is not None else "" for d in done),
        details=tuple(d.detail for d in done),
        started=started,
        wall_s=wall,
    )


def _fit_task(job: ModelJob, split: Split, rows, metric: str, n_trials: int) -> Fitted:
    from mlfleet.stores import tracking

    tracking.clear_run_env()
    return fit_rows(job, split, rows, resolve_metric(metric, split.task), n_trials)


def record_wave(requests: list[dict[str, Any]], split_ref, recorder: Recorder) -> list[Recorded]:
    """Score each fitted model and log it into its (already started) child run, in parallel.

    Each request holds ``run_id``, ``fitted`` (a :class:`Fitted` or a fitted model, or an
    object-store reference to one), ``params``, ``metrics``, ``tags`` and ``history`` for the
    run. A model whose scoring or logging raises ends its run FAILED and comes back with its error.
    """
    refs = [
        tasks.submit(_record_task, recorder, split_ref, r["fitted"], r) for r in requests
    ]  # a top-level ref: Ray resolves it
    out = []
    for done, request in zip(tasks.gather(refs), requests, strict=True):
        if done.error is None:
            out.append(done.value)
            continue
        error, _ = recorder.fail(request["run_id"], describe(done.error), done.detail)  # the worker died
        out.append(Recorded(None, "", error))
    return out


def _record_task(recorder: Recorder, split: Split, fitted: Any, request: dict[str, Any]) -> Recorded:
    recorder.warm()
    model = fitted.pipeline if isinstance(fitted, Fitted) else fitted  # a member's fit, or the vote
    try:
        scores = score_model(model, split)
        model_uri = recorder.finish(
            request["run_id"],
            params=request["params"],
            metrics={**request["metrics"], **scores.test, **{f"val_{k}": v for k, v in scores.val.items()}},
            history=request["history"],
            tags=request["tags"],
            # scored on codes, logged to predict the labels
            model=with_labels(model, split.classes, split.X_test) if split.classes else model,
            input_example=split.X_test.head(INPUT_EXAMPLE_ROWS),
            name=request.get("name", "model"),
        )
    except Exception as exc:
        error, _ = recorder.fail(request["run_id"], describe(exc), full_traceback(exc))
        return Recorded(None, "", error)
    return Recorded(scores, model_uri)
