"""One model on a set of training rows (a shard, or all of them), and its scores.

Plain functions over the split; :mod:`ensembles._waves` runs them as Ray tasks. A member and the
single all-data model are the same thing on different rows, so both go through here.
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

from mlfleet.data import Split
from mlfleet.logs import ignore_known_noise, recorded_warnings
from mlfleet.metrics import Metric, predict_with_proba, score_all
from mlfleet.training.jobs import ModelJob
from mlfleet.training.outcome import FAIL_ENV
from mlfleet.training.tuning import build_pipeline, tune_and_fit
from mlfleet.zoo import family

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


def shard_split(split: Split, rows: np.ndarray, *, seed: int, tuning: bool) -> Split:
    """The split a model of ``rows`` trains on: those training rows, the shared validation and test.

    A model that tunes holds out :data:`TUNING_VAL_SHARE` of its own rows (stratified) to
    score its trials, so that no model sees the shared validation split, which weighs the
    vote, before the vote.
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


def fit_rows(job: ModelJob, split: Split, rows: np.ndarray, metric: Metric, n_trials: int) -> Fitted:
    """Fit ``job``'s family on the training ``rows`` with ``job.cpus`` threads.

    ``n_trials`` 0 fits the family's default parameters on all the rows; above 0 runs an
    Optuna study on a held-out part of them and refits the best on all of them. Raises
    whatever the estimator raises (the caller records the model as failed).
    """
    from threadpoolctl import threadpool_limits

    _injected_failure(job)
    started, cpu0, t0 = time.time(), time.process_time(), time.perf_counter()
    part = shard_split(split, rows, seed=job.seed, tuning=n_trials > 0)
    notes: list[str] = []
    with threadpool_limits(limits=job.cpus), recorded_warnings(notes):
        if n_trials > 0:
            tuned = tune_and_fit(job, part, metric, n_trials, n_jobs=job.cpus)
            pipeline, params, trials = tuned.pipeline, tuned.best_params, tuned.trial_scores
        else:
            np.random.seed(job.seed % 2**32)  # mutual-information jitter and the like draw from the global generator
            params = family(job.family).fixed_params(job.variant)
            pipeline = build_pipeline(job, part, params, job.cpus).fit(part.X_train, part.y_train)
            trials = ()
    fit_s = time.perf_counter() - t0
    model = pipeline.named_steps["model"]
    return Fitted(
        pipeline=pipeline,
        model_type=type(model).__name__,
        params=dict(params),
        trial_scores=tuple(trials),
        n_features=int(model.n_features_in_),
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


def _injected_failure(job: ModelJob) -> None:
    # The fleet's test seam, read the same way: members whose index is listed raise.
    listed = os.environ.get(FAIL_ENV, "")
    if job.model_id >= 0 and str(job.model_id) in {part.strip() for part in listed.split(",")}:
        raise RuntimeError(f"injected failure of member {job.model_id} ({FAIL_ENV})")
