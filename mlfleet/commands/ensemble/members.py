"""An ensemble's models on Ray: members (and the single all-data model) fitted in one wave, then scored
and logged in another.

A model is fitted by the worker's own :func:`~mlfleet.training.worker.fit` on its rows and
logged by the worker's :func:`~mlfleet.training.worker.record`, as a fleet's model is.
Fitting and recording are separate waves, so that a training wave's wall time is training
alone (the comparison is about that), while scoring and logging still run in parallel.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from mlfleet.data import Split
from mlfleet.errors import describe, full_traceback
from mlfleet.execution import tasks
from mlfleet.logs import ignore_known_noise, recorded_warnings
from mlfleet.metrics import predict_with_proba, resolve_metric, score_all
from mlfleet.stores.recorder import ModelRecorder
from mlfleet.training import worker
from mlfleet.training.jobs import ModelJob

#: share of a shard held out to score the trials of a member that tunes (n_trials > 0)
TUNING_VAL_SHARE = 0.25


@dataclass(frozen=True)
class Fitted:
    """A fitted pipeline and what fitting it took (wall clock of the process that fitted it)."""

    pipeline: Any
    model_type: str
    params: dict[str, Any]
    trial_scores: tuple[float, ...]
    n_features: int
    fit_s: float
    cpu_s: float
    started: float  # epoch seconds
    finished: float
    node: str = ""
    pid: int = 0
    notes: tuple[str, ...] = ()  # the warnings fitting raised (known noise filtered)


@dataclass(frozen=True)
class Scores:
    """A fitted model's metrics on the validation and test splits (every metric of the task)."""

    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)


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


def shard_split(split: Split, rows: np.ndarray, *, seed: int, tuning: bool) -> Split:
    """The split a model of ``rows`` trains on: those training rows, the shared validation and test.

    A model that tunes holds out :data:`TUNING_VAL_SHARE` of its own rows (stratified) to
    score its trials, so that no model sees the shared validation split, which weighs the
    vote, before the vote; one that does not tune fits on its training rows alone.
    """
    from sklearn.model_selection import train_test_split

    X, y = split.X_train.iloc[rows].reset_index(drop=True), split.y_train[rows]
    if not tuning:
        return split.with_parts(X_train=X, y_train=y)
    classification = split.task == "classification"
    # a stratified hold-out needs a row of every class on both sides (the shards have two of each)
    held_out = max(math.ceil(TUNING_VAL_SHARE * len(y)), split.n_classes if classification else 1)
    fit, val = train_test_split(
        np.arange(len(y)), test_size=held_out, random_state=seed, stratify=y if classification else None
    )
    return split.with_parts(
        X_train=X.iloc[fit].reset_index(drop=True),
        y_train=y[fit],
        X_val=X.iloc[val].reset_index(drop=True),
        y_val=y[val],
    )


def fit_wave(jobs: list[ModelJob], split_ref, rows: list, metric: str, n_trials: int, fail_ids: frozenset[int]) -> Wave:
    """Fit every job on its rows as a Ray task, all submitted at once; wait for all of them.

    A job that raises (or whose worker dies after Ray's retries) gets its error, the others
    go on. The wall time runs from the first submission to the last result.
    """
    started, t0 = time.time(), time.perf_counter()
    refs = [
        tasks.submit(
            _fit_task, job, split_ref, r, metric, n_trials, fail_ids, cpus=job.cpus, name=f"fit-{job.model_id}"
        )
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


def _fit_task(
    job: ModelJob, split: Split, rows: np.ndarray, metric: str, n_trials: int, fail_ids: frozenset[int]
) -> Fitted:
    """A member (or the single model) in its Ray task: the worker's :func:`~mlfleet.training.worker.fit` on its rows."""
    started, cpu0, t0 = time.time(), time.process_time(), time.perf_counter()
    part = shard_split(split, rows, seed=job.seed, tuning=n_trials > 0)
    notes: list[str] = []
    with recorded_warnings(notes):
        tuned = worker.fit(job, part, resolve_metric(metric, split.task), n_trials, fail_ids=fail_ids, what="member")
    fit_s = time.perf_counter() - t0
    return Fitted(
        pipeline=tuned.pipeline,
        model_type=tuned.model_type,
        params=dict(tuned.best_params),
        trial_scores=tuned.trial_scores,
        n_features=tuned.n_features,
        fit_s=fit_s,
        cpu_s=time.process_time() - cpu0,
        started=started,
        finished=started + fit_s,
        node=socket.gethostname(),
        pid=os.getpid(),
        notes=tuple(notes),
    )


def score_model(model: Any, split: Split) -> Scores:
    """Every metric of the task on the validation and test splits."""
    with warnings.catch_warnings():
        ignore_known_noise()
        out = {}
        for part, X, y in (("val", split.X_val, split.y_val), ("test", split.X_test, split.y_test)):
            pred, proba = predict_with_proba(model, X, split.task)
            out[part] = score_all(split.task, y, pred, proba, split.n_classes)
    return Scores(val=out["val"], test=out["test"])


def record_wave(requests: list[dict[str, Any]], split_ref, recorder: ModelRecorder) -> list[Recorded]:
    """Score each fitted model and log it into its (already started) run, in parallel.

    Each request holds ``run_id``, ``name``, ``fitted`` (a :class:`Fitted` or a fitted model,
    or an object-store reference to one), ``params``, ``metrics``, ``tags`` and ``history``.
    A model whose scoring or logging raises ends its run FAILED and comes back with its error.
    """
    refs = [tasks.submit(_record_task, recorder, split_ref, r["fitted"], r) for r in requests]  # Ray resolves refs
    out = []
    for done, request in zip(tasks.gather(refs), requests, strict=True):
        if done.error is None:
            out.append(done.value)
            continue
        error = recorder.fail(request["run_id"], describe(done.error), done.detail)  # the worker died
        out.append(Recorded(None, "", error))
    return out


def _record_task(recorder: ModelRecorder, split: Split, fitted: Any, request: dict[str, Any]) -> Recorded:
    recorder.warm()
    model = fitted.pipeline if isinstance(fitted, Fitted) else fitted  # a member's fit, or the vote
    try:
        scores = score_model(model, split)
        model_uri = worker.record(
            recorder,
            request["run_id"],
            model=model,
            split=split,
            name=request["name"],
            params=request["params"],
            metrics={**request["metrics"], **scores.test, **{f"val_{k}": v for k, v in scores.val.items()}},
            history=request["history"],
            tags=request["tags"],
        )
    except Exception as exc:
        return Recorded(None, "", recorder.fail(request["run_id"], describe(exc), full_traceback(exc)))
    return Recorded(scores, model_uri)
