"""An ensemble's models on Ray: members (and the single all-data model) fitted in one wave, then scored
and logged in another, then the vote built, scored and logged in a task of its own.

A model is fitted by the worker's own :func:`~mlfleet.training.worker.fit` on its rows and
logged by the worker's :func:`~mlfleet.training.worker.record`, as a fleet's model is.
Fitting and recording are separate waves, so that a training wave's wall time is training
alone (the comparison is about that), while scoring and logging still run in parallel.

A model's rows come from the split in the object store (positions into its training rows) or,
for a sharded table, from the table itself: the task reads its own shard
(:func:`~mlfleet.commands.ensemble.sharded.training_split`). Either way a fit task returns two
objects: what the driver is told of the fit (:class:`Fitted`, without the pipeline) and the
fitted pipeline, which stays in the object store for the tasks that log it and vote with it.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import ray

from mlfleet.commands.ensemble import sharded
from mlfleet.data import Split
from mlfleet.errors import describe, full_traceback
from mlfleet.execution import tasks
from mlfleet.logs import ignore_known_noise, recorded_warnings
from mlfleet.metrics import predict_with_proba, resolve_metric, score_all
from mlfleet.stores.recorder import ModelRecorder
from mlfleet.training import worker
from mlfleet.training.jobs import ModelJob
from mlfleet.training.voting import build_vote

#: share of a shard held out to score the trials of a member that tunes (n_trials > 0)
TUNING_VAL_SHARE = 0.25


@dataclass(frozen=True)
class Fitted:
    """What fitting a model took (wall clock of the process that fitted it); the pipeline itself travels apart.

    ``facts``: what a task that read its own rows of a sharded table read and kept.
    """

    pipeline: Any  # None in what the driver is told: the pipeline is a reference of its own (Wave.refs)
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
    has_proba: bool = False  # whether the pipeline gives probabilities (a soft vote needs every member's)
    facts: sharded.Facts | None = None


@dataclass(frozen=True)
class Scores:
    """A fitted model's metrics on the validation and test splits (every metric of the task)."""

    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Wave:
    """What a wave of fits came to: one result or error per job, in job order, and its wall clock."""

    refs: tuple[Any, ...]  # the fitted pipelines in the object store (a failed one: None)
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


def shard_split(split: Split, rows: np.ndarray | None, *, seed: int, tuning: bool) -> Split:
    """The split a model of ``rows`` trains on: those training rows (None: all of them), the shared validation
    and test.

    A model that tunes holds out :data:`TUNING_VAL_SHARE` of its own rows (stratified) to
    score its trials, so that no model sees the shared validation split, which weighs the
    vote, before the vote; one that does not tune fits on its training rows alone.
    """
    from sklearn.model_selection import train_test_split

    if rows is None and not tuning:
        return split
    X = split.X_train if rows is None else split.X_train.iloc[rows].reset_index(drop=True)
    y = split.y_train if rows is None else split.y_train[rows]
    if not tuning:
        return split.with_parts(X_train=X, y_train=y)
    classification = split.task == "classification"
    # a stratified hold-out needs a row of every class on both sides (the shards have two of each)
    held_out = max(math.ceil(TUNING_VAL_SHARE * len(y)), split.n_classes if classification else 1)
    fit, val = train_test_split(
        np.arange(len(y)), test_size=held_out, random_state=seed, stratify=y if classification else None
    )
    # the rows once, training then held out (what Split.of makes of the parts, without a copy of each first)
    order = np.concatenate([fit, val])
    return replace(split, X_fit=X.iloc[order].reset_index(drop=True), y_fit=y[order], n_train=len(fit))


def fit_wave(jobs: list[ModelJob], data, rows: list, metric: str, n_trials: int, fail_ids: frozenset[int]) -> Wave:
    """Fit every job on its rows as a Ray task, all submitted at once; wait for all of them.

    ``data`` is the split in the object store (a reference) and ``rows`` each job's positions into
    its training rows, or ``data`` is a sharded table (:class:`~mlfleet.commands.ensemble.sharded.Sharded`)
    and ``rows`` each job's shard index (negative: the single model's sample). A job that raises
    (or whose worker dies after Ray's retries) gets its error, the others go on. The wall time
    runs from the first submission to the last result.
    """
    started, t0 = time.time(), time.perf_counter()
    refs = [
        tasks.submit(
            _fit_task, job, data, r, metric, n_trials, fail_ids, cpus=job.cpus, name=f"fit-{job.model_id}", returns=2
        )
        for job, r in zip(jobs, rows, strict=True)
    ]
    told = [ref for ref, _ in refs]
    ray.wait(told, num_returns=len(told), fetch_local=False)  # finished, not yet copied here
    wall = time.perf_counter() - t0
    done = tasks.gather(told)  # what each fit says of itself; the pipelines stay in the object store
    fitted = tuple(d.value if d.error is None else None for d in done)
    return Wave(
        refs=tuple(model if f is not None else None for (_, model), f in zip(refs, fitted, strict=True)),
        fitted=fitted,
        errors=tuple(describe(d.error) if d.error is not None else "" for d in done),
        details=tuple(d.detail for d in done),
        started=started,
        wall_s=wall,
    )


def _fit_task(job: ModelJob, data, rows, metric: str, n_trials: int, fail_ids: frozenset[int]) -> tuple[Fitted, Any]:
    """A member (or the single model) in its Ray task: the worker's :func:`~mlfleet.training.worker.fit` on its rows.

    Returns what the fit took and, apart, the fitted pipeline (see :func:`fit_wave` for ``data`` and ``rows``).
    The clock starts before a sharded table's rows are read: reading is part of training there.
    """
    started, cpu0, t0 = time.time(), time.process_time(), time.perf_counter()
    if isinstance(data, sharded.Sharded):
        whole, facts = sharded.training_split(data, int(rows))
        part = shard_split(whole, None, seed=job.seed, tuning=n_trials > 0)
        del whole
    else:
        part, facts = shard_split(data, rows, seed=job.seed, tuning=n_trials > 0), None
    notes: list[str] = []
    with recorded_warnings(notes):
        tuned = worker.fit(job, part, resolve_metric(metric, part.task), n_trials, fail_ids=fail_ids, what="member")
    fit_s = time.perf_counter() - t0
    told = Fitted(
        pipeline=None,
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
        has_proba=hasattr(tuned.pipeline, "predict_proba"),
        facts=facts,
    )
    return told, tuned.pipeline


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

    Each request holds ``run_id``, ``name``, ``fitted`` (a fitted model, or an object-store
    reference to one), ``params``, ``metrics``, ``tags`` and ``history``. ``split_ref`` is the
    split the models are scored on (its validation and test rows) and logged with.
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


def record_vote(
    request: dict[str, Any], split_ref, recorder: ModelRecorder, models: list, *, voting: str, weights
) -> Recorded:
    """Build the vote of ``models`` (``(name, fitted model or its reference)`` pairs) in a Ray task, then score
    and log it as :func:`record_wave` does a model: the members' pipelines never come to the driver."""
    names = [name for name, _ in models]
    ref = tasks.submit(
        _vote_task, recorder, split_ref, request, names, voting, tuple(weights), *[m for _, m in models]
    )  # Ray resolves the references given as arguments
    (done,) = tasks.gather([ref])
    if done.error is None:
        return done.value
    return Recorded(None, "", recorder.fail(request["run_id"], describe(done.error), done.detail))


def _vote_task(recorder, split: Split, request, names, voting: str, weights, *models) -> Recorded:
    try:
        vote = build_vote(list(zip(names, models, strict=True)), split.task, *_label_rows(split), weights=weights,
                          voting=voting if voting != "mean" else "")  # fmt: skip
    except Exception as exc:
        return Recorded(None, "", recorder.fail(request["run_id"], describe(exc), full_traceback(exc)))
    return _record_task(recorder, split, vote, request)


def _label_rows(split: Split):
    """Rows to fit a vote of fitted members on: it only learns the labels, so one validation row per class code."""
    if split.task != "classification":
        return split.X_val.iloc[:2], split.y_val[:2]
    codes = np.arange(split.n_classes)
    return split.X_val.iloc[codes % len(split.y_val)].reset_index(drop=True), codes


def _record_task(recorder: ModelRecorder, split: Split, model: Any, request: dict[str, Any]) -> Recorded:
    recorder.warm()
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
