"""The ``ensemble_results`` rows of one ensemble run: a row per member, one for the ensemble, one for the single model.

The key is ``(ensemble_id, kind, member)``; ``kind`` is ``member``, ``ensemble`` or
``single`` and ``member`` is the member's index (-1 for the other two). The metric columns
have the names and meanings of the fleet's ``model_training_results`` table, so one
analysis reads both. An ensemble's rows go in one commit carrying a Delta application
transaction per row, ``ensembles/<ensemble_id>/<kind>/<member>``; rows whose transaction is
already committed are skipped, so writing them again leaves one copy.

:class:`Model` is one trained model's record as the run goes on (its shard, job, run, fit,
scores, error); :func:`model_row` and :func:`ensemble_row` turn them into table rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from mlfleet.commands.ensemble.members import Fitted, Scores
from mlfleet.commands.ensemble.partition import Shard, class_counts
from mlfleet.metrics import finite
from mlfleet.stores.rows import CLASSIFICATION_METRICS, REGRESSION_METRICS, TableSpec
from mlfleet.training.jobs import ModelJob

KINDS = ("member", "ensemble", "single")
#: the ``member`` of the ensemble's and the single model's rows
NOT_A_MEMBER = -1


@dataclass(frozen=True)
class EnsembleRow:
    """A member, the ensemble or the single all-data model of one ensemble run."""

    ensemble_id: str
    kind: str
    member: int
    family: str
    model_type: str
    task: str
    partitioning: str  # random | stratified | by_column; a sharded table's: row_groups | column_hash
    shard: str  # "stratified 2/4", "segment='online'", "all training rows", "vote of 4 members"
    shard_rows: int  # training rows the model learnt from (the ensemble: its members' together)
    class_counts_json: str  # {"no": 120, "yes": 118} of those rows; "{}" for regression
    voting: str  # the ensemble's: soft | hard | mean
    weight: float | None  # a member's weight in the vote
    n_members: int | None  # members in the vote (the ensemble's row)
    params_json: str
    primary_metric: str
    score: float | None  # test score on primary_metric
    val_score: float | None  # validation score on primary_metric (what weights=validation uses)
    accuracy: float | None
    f1: float | None
    roc_auc: float | None
    log_loss: float | None
    rmse: float | None
    mae: float | None
    r2: float | None
    n_trials: int
    train_s: float | None  # seconds of fitting (the ensemble: its members' together)
    wall_s: float | None  # wall time of the training wave (the ensemble: members in parallel)
    cpu_s: float | None  # CPU seconds of fitting
    cpus: float
    status: str
    error: str
    mlflow_run_id: str
    parent_run_id: str
    model_uri: str
    experiment_id: str
    dataset: str
    dataset_digest: str
    started_at: datetime
    finished_at: datetime
    node: str
    entry_point: str

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"


ENSEMBLES = TableSpec("ensemble_results", EnsembleRow, ("ensemble_id", "kind", "member"), prefix="ensembles")


@dataclass
class Model:
    """A member or the single model, filled in as the run goes (mutable on purpose)."""

    kind: str  # member | single
    shard: Shard
    job: ModelJob
    run_id: str = ""
    fitted: Fitted | None = None
    ref: Any = None  # the fit in Ray's object store
    scores: Scores | None = None
    model_uri: str = ""
    error: str = ""
    weight: float | None = None

    @property
    def member(self) -> int:
        return self.shard.index

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class Vote:
    """The ensemble: which members voted, how, and what came of it."""

    voting: str
    members: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()
    run_id: str = ""
    scores: Scores | None = None
    model_uri: str = ""
    error: str = ""


@dataclass(frozen=True)
class RowContext:
    """What every row of one ensemble run shares."""

    ensemble_id: str
    parent_run_id: str
    experiment_id: str
    entry_point: str
    family: str
    task: str
    metric: str
    n_trials: int
    partitioning: str
    dataset: str
    dataset_digest: str
    classes: tuple
    y_train: np.ndarray


def trained_on(ctx: RowContext, model: Model) -> tuple[int, dict[str, int]]:
    """The rows ``model`` learnt from and their class counts ({} for regression): as its task read them from a
    sharded table, else its shard's rows of the training split."""
    facts = model.fitted.facts if model.fitted is not None else None
    if facts is not None:
        return facts.rows, dict(facts.class_counts)
    counts = class_counts(ctx.y_train[model.shard.rows], ctx.classes) if ctx.task == "classification" else {}
    return model.shard.size, counts


def model_row(ctx: RowContext, model: Model, *, model_type: str, wall_s: float | None = None) -> EnsembleRow:
    """The row of a member or of the single model (failed or not); ``model_type`` stands in when it never fitted."""
    fitted = model.fitted
    now = time_of(None)
    rows, counts = trained_on(ctx, model)
    return _row(
        ctx,
        kind=model.kind,
        member=model.member if model.kind == "member" else NOT_A_MEMBER,
        model_type=fitted.model_type if fitted else model_type,
        shard=model.shard.label,
        shard_rows=rows,
        counts=counts,
        weight=model.weight,
        n_members=None,
        voting="",
        params=fitted.params if fitted else {},
        scores=model.scores if model.ok else None,
        train_s=fitted.fit_s if fitted else None,
        wall_s=wall_s,
        cpu_s=fitted.cpu_s if fitted else None,
        cpus=model.job.cpus,
        error=model.error,
        run_id=model.run_id,
        model_uri=model.model_uri if model.ok else "",
        started=time_of(fitted.started) if fitted else now,
        finished=time_of(fitted.finished) if fitted else now,
        node=fitted.node if fitted else "",
    )


def ensemble_row(
    ctx: RowContext, vote: Vote, voters: list[Model], *, model_type: str, wall_s: float, started: float
) -> EnsembleRow:
    """The ensemble's row: its members' rows together (shard, fit and CPU seconds), the vote's scores."""
    fits = [m.fitted for m in voters if m.fitted]
    rows, counts = 0, {}
    for m in voters:
        n, each = trained_on(ctx, m)
        rows += n
        counts = {label: counts.get(label, 0) + c for label, c in each.items()}
    return _row(
        ctx,
        kind="ensemble",
        member=NOT_A_MEMBER,
        model_type=model_type,
        shard=f"vote of {len(voters)} members",
        shard_rows=rows,
        counts=counts if ctx.task == "classification" else {},
        weight=None,
        n_members=len(voters),
        voting=vote.voting,
        params={"members": list(vote.members), "member_weights": [round(w, 6) for w in vote.weights]},
        scores=vote.scores if not vote.error else None,
        train_s=sum(f.fit_s for f in fits) if fits else None,
        wall_s=wall_s,
        cpu_s=sum(f.cpu_s for f in fits) if fits else None,
        cpus=max((m.job.cpus for m in voters), default=0),
        error=vote.error,
        run_id=vote.run_id,
        model_uri=vote.model_uri if not vote.error else "",
        started=time_of(started),
        finished=time_of(started + wall_s),
        node=",".join(sorted({f.node for f in fits})),
    )


def _row(
    ctx: RowContext,
    *,
    kind,
    member,
    model_type,
    shard,
    shard_rows,
    counts,
    weight,
    n_members,
    voting,
    params,
    scores,
    train_s,
    wall_s,
    cpu_s,
    cpus,
    error,
    run_id,
    model_uri,
    started,
    finished,
    node,
) -> EnsembleRow:
    test = {k: finite(v) for k, v in (scores.test if scores else {}).items()}
    return EnsembleRow(
        ensemble_id=ctx.ensemble_id,
        kind=kind,
        member=member,
        family=ctx.family,
        model_type=model_type,
        task=ctx.task,
        partitioning=ctx.partitioning if kind != "single" else "all",
        shard=shard,
        shard_rows=shard_rows,
        class_counts_json=json.dumps(counts),
        voting=voting,
        weight=weight,
        n_members=n_members,
        params_json=json.dumps(params, sort_keys=True, default=str),
        primary_metric=ctx.metric,
        score=test.get(ctx.metric),
        val_score=finite(scores.val.get(ctx.metric)) if scores else None,
        **{name: test.get(name) for name in CLASSIFICATION_METRICS + REGRESSION_METRICS},
        n_trials=ctx.n_trials,
        train_s=train_s,
        wall_s=wall_s,
        cpu_s=cpu_s,
        cpus=float(cpus),
        status="FAILED" if error else "FINISHED",
        error=error,
        mlflow_run_id=run_id,
        parent_run_id=ctx.parent_run_id,
        model_uri=model_uri,
        experiment_id=ctx.experiment_id,
        dataset=ctx.dataset,
        dataset_digest=ctx.dataset_digest,
        started_at=started,
        finished_at=finished,
        node=node,
        entry_point=ctx.entry_point,
    )


def time_of(epoch: float | None) -> datetime:
    """A UTC timestamp of epoch seconds (now for None)."""
    return datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)
