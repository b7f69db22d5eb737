"""A whole partition ensemble, from a frozen config to both stores: what the ``ensemble`` command runs.

The command skeleton (:mod:`mlfleet.commands.skeleton`) does what every command does; an
ensemble gives its own parts (:class:`EnsembleCommand`). Its plan checks everything the user
can get wrong before anything is created: the model family, partitions, weights, the registry
name, the data, target, metric and split, the shards (partition_by, their sizes and classes)
and the results location. A Parquet or Delta table too big for the driver (``sharded``) is
planned from its metadata alone; its check (with Ray up, before anything is written) has one
Ray task read the validation rows and decide the task, classes and columns on them, and every
task reads its own rows: the driver reads no row (:mod:`mlfleet.commands.ensemble.sharded`).
Its body, in order:

1. one child run per member and one for the single model (RUNNING while they train);
2. warm Ray workers (charged to neither side), the members' fits all at once, then the single
   all-data model's fit alone: each wave timed by its own wall clock;
3. members and the single model scored and logged in parallel;
4. the weights, the vote, and the ensemble scored and logged in a run of its own (registered
   when asked);
5. every row in one commit; the parent's figures, plot, CSV and one-line verdict.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import ray

from mlfleet import champion
from mlfleet.commands.ensemble import members as waves
from mlfleet.commands.ensemble import sharded
from mlfleet.commands.ensemble.compare import comparison_figures, member_weights, plot_comparison, verdict
from mlfleet.commands.ensemble.partition import Shard, check_partitions, make_shards
from mlfleet.commands.ensemble.rows import (
    ENSEMBLES,
    NOT_A_MEMBER,
    EnsembleRow,
    Model,
    RowContext,
    Vote,
    ensemble_row,
    model_row,
    trained_on,
)
from mlfleet.commands.skeleton import Closing, Command, CommandReport, Context, open_parent, run_command
from mlfleet.config import WEIGHTS, EnsembleConfig
from mlfleet.data import Dataset, PartPlan, Reader, Split, load_dataset, split_dataset
from mlfleet.errors import MlfleetError
from mlfleet.execution import cluster as ray_cluster
from mlfleet.execution import tasks
from mlfleet.locations import store as classify_store
from mlfleet.metrics import Metric, resolve_metric
from mlfleet.redaction import redact
from mlfleet.settings import Settings
from mlfleet.stores import model_format, registry
from mlfleet.stores.recorder import SweepRecorder
from mlfleet.stores.rows import rows_to_frame
from mlfleet.stores.store import tracking_uri
from mlfleet.stores.tables import ResultsTable, open_results
from mlfleet.training.jobs import ModelJob
from mlfleet.training.voting import voting_of
from mlfleet.zoo import FAMILIES, cpu_families, family

log = logging.getLogger("mlfleet.ensembles")

#: ``mlfleet.role`` of the parent run and of its nested runs (members, single model, vote)
ROLE = "ensemble"
CHILD_ROLE = "ensemble_model"


@dataclass(frozen=True)
class EnsembleReport(CommandReport):
    """What an ensemble run did: its ids, every row, the comparison and its verdict."""

    ensemble_id: str
    voting: str
    rows: tuple[EnsembleRow, ...]
    figures: dict[str, float] = field(default_factory=dict)
    verdict: str = ""
    model_uri: str = ""  # the ensemble's MLflow model
    registered: str = ""  # name/version when registered
    problems: tuple[str, ...] = ()  # what failed: a member, the single model, the vote, the registration
    sharded: bool = False  # whether each task read its own rows of the table (the driver only its metadata)

    @property
    def exit_code(self) -> int:
        """0 when everything succeeded, 1 when something failed (and was recorded)."""
        return 1 if self.problems else 0

    def row(self, kind: str, member: int = NOT_A_MEMBER) -> EnsembleRow:
        return next(r for r in self.rows if r.kind == kind and r.member == member)


@dataclass(frozen=True)
class _Plan:
    """An ensemble checked and ready to open."""

    config: EnsembleConfig
    dataset: Dataset
    metric: Metric
    split: Split
    shards: tuple[Shard, ...]
    table: ResultsTable
    source: sharded.Sharded | None = None  # a table whose rows each task reads itself
    read: sharded.PlanReads | None = None  # what the driver and the holdout task read of it


@dataclass(frozen=True)
class _Pending:
    """A sharded table planned from its metadata, its validation rows not read yet: ``check`` has a Ray task read
    them and decide the task, classes and columns (:func:`~mlfleet.commands.ensemble.sharded.prepare`)."""

    config: EnsembleConfig
    parts: PartPlan
    table: ResultsTable
    reader: Reader  # the driver's, which read the metadata: it counts what the driver read


@dataclass
class _Run:
    """One ensemble under way: its inputs, stores and cluster."""

    config: EnsembleConfig
    split: Split
    shards: tuple[Shard, ...]
    metric: Metric
    cluster: ray_cluster.Cluster
    recorder: SweepRecorder
    rows_ctx: RowContext
    table: ResultsTable
    member_cpus: int = 1
    split_ref: Any = None  # what the fit tasks read their rows from: the split in the object store, or the table
    score_ref: Any = None  # the split the models are scored and logged with (its validation and test rows)
    source: sharded.Sharded | None = None
    read: sharded.PlanReads | None = None
    scoring: sharded.Facts | None = None  # what the scoring task read

    @property
    def ctx(self):
        return self.recorder.tracking


def check_family(name: str) -> None:
    """Raise MlfleetError unless ``name`` is a CPU family of the zoo (what members are made of)."""
    known = cpu_families()
    if name not in known:
        hint = " (a GPU family; ensemble members are CPU families)" if name in FAMILIES else ""
        raise MlfleetError(f"unknown model family {name!r}{hint}; use model= one of {', '.join(known)}")


def run_ensemble(config: EnsembleConfig, *, stream: TextIO | None = None) -> EnsembleReport:
    """Train the partition ensemble of ``config`` and its all-data rival; return the report.

    Raises MlfleetError on bad input, before any run or table exists. A member, the single
    model or the vote that fails is recorded (a FAILED run and row) and named in
    ``report.problems``; the rest goes on.
    """
    return run_command(EnsembleCommand(config), stream=stream)


class EnsembleCommand(Command):
    """An ensemble's own parts of the command skeleton (see the module's docstring); its members log their runs."""

    def plan(self, settings: Settings) -> _Plan | _Pending:
        config = self.config
        _check(config)
        reader = Reader()
        table_plan = sharded.choose(config, reader)
        if table_plan is None:
            dataset, metric, split, shards = _prepare(config)
        table = open_results(config.results, ENSEMBLES)
        table.check_takes("ensemble")
        table.check_writable()
        if table_plan is not None:  # its validation rows are read in a Ray task, once Ray is up (check)
            return _Pending(config, table_plan, table, reader)
        return _Plan(config, dataset, metric, split, shards, table)

    def check(self, plan: _Plan | _Pending, cluster) -> _Plan:
        """A sharded table's task, classes and columns, decided in a Ray task on its validation rows (the driver
        gets the decisions and what the task read); MlfleetError for bad input, before anything is written."""
        if not isinstance(plan, _Pending):
            return plan
        dataset, split, source, shards, read = sharded.prepare(plan.config, plan.parts, plan.reader)
        metric = resolve_metric(plan.config.metric, dataset.task)
        return _Plan(plan.config, dataset, metric, split, shards, plan.table, source, read)

    def open(self, plan: _Plan, settings: Settings, uri: str, cluster) -> tuple[_Run, SweepRecorder]:
        config, dataset, split = plan.config, plan.dataset, plan.split
        log.info(split.plan.describe())
        plan.table.ensure()
        partitioning = (
            "by_column" if config.partition_by else ("stratified" if dataset.task == "classification" else "random")
        )
        sharding = {}
        if plan.source is not None:
            partitioning = "column_hash" if config.partition_by else "row_groups"
            sharding = {"sharding": redact(plan.source.plan.describe())}
        recorder = open_parent(
            plan.table,
            (uri, settings),
            config,
            dataset=dataset,
            metric=plan.metric,
            split=split,
            params={**config.params(), "n_members": str(len(plan.shards))},
            tags={"partitioning": partitioning, "sharded": str(plan.source is not None).lower(), **sharding},
            # a sharded table's rows are not here to describe (its digest is of its metadata)
            entity=model_format.dataset_entity(
                dataset.X, dataset.y, name=dataset.name, source=dataset.source, digest=dataset.digest,
                target=dataset.target,
            ) if plan.source is None else None,
            role=ROLE,  # not "sweep": analyze reads sweeps of the fleet's table, and this is none
        )  # fmt: skip
        ctx = recorder.tracking
        rows_ctx = RowContext(
            ctx.sweep_id, ctx.parent_run_id, ctx.experiment_id, config.entry_point, config.model, dataset.task,
            plan.metric.name, config.n_trials, partitioning, dataset.name, dataset.digest, dataset.classes,
            split.y_train,
        )  # fmt: skip
        run = _Run(config, split, plan.shards, plan.metric, cluster, recorder, rows_ctx, plan.table)
        run.source, run.read = plan.source, plan.read
        return run, recorder

    def body(self, run: _Run, context: Context) -> Closing:
        return _go(run)

    def summary(self, report: EnsembleReport) -> str:
        return summary_lines(report)


def _check(config: EnsembleConfig) -> None:
    check_family(config.model)
    check_partitions(config.partitions)
    if config.weights not in WEIGHTS:
        raise MlfleetError(f"weights must be one of {', '.join(WEIGHTS)}, but got weights={config.weights!r}")
    if config.n_trials < 0:
        raise MlfleetError(f"n_trials must be 0 (the family's defaults) or more, but got n_trials={config.n_trials}")
    registry.check_model_name(config.register, "register", classify_store(registry.registry_uri(tracking_uri())))


def _prepare(config: EnsembleConfig) -> tuple[Dataset, Metric, Split, tuple[Shard, ...]]:
    dataset = load_dataset(config.data)
    metric = resolve_metric(config.metric, dataset.task)
    split = split_dataset(dataset, test_size=config.data.test_size, val_size=config.data.val_size, seed=config.seed)
    role = split.plan.roles.get(config.partition_by, "")
    if config.partition_by and role and config.partition_by not in split.plan.used:
        raise MlfleetError(
            f"partition_by={config.partition_by} is a column the models do not read "
            f"({role}: {split.plan.reasons.get(config.partition_by) or role}); partition by another column"
        )
    shards = make_shards(
        split.X_train,
        split.y_train,
        dataset.task,
        partitions=config.partitions,
        partition_by=config.partition_by,
        seed=config.seed,
        classes=dataset.classes,
        min_class_rows=2 if config.n_trials > 0 else 1,  # a tuning member holds out rows of every class
    )
    return dataset, metric, split, shards


def _go(run: _Run) -> Closing:
    members, single = _plan_models(run)
    member_wave, single_wave = _train(run, members, single)
    voters = [m for m in members if m.ok]
    vote = _vote(run, voters, member_wave.wall_s)
    problems = [f"member {m.member}: {m.error}" for m in members if not m.ok]
    if not single.ok:
        problems.append(f"single model: {single.error}")
    if vote.error:
        problems.append(f"ensemble: {vote.error}")
    registered = _register(run, vote, problems)
    model_type = family(run.config.model).model_type(run.split.task)
    rows = [model_row(run.rows_ctx, m, model_type=model_type) for m in members]
    rows.append(model_row(run.rows_ctx, single, model_type=model_type, wall_s=single_wave.wall_s))
    vote_type = "VotingRegressor" if run.split.task == "regression" else "VotingClassifier"
    rows.append(
        ensemble_row(
            run.rows_ctx, vote, voters, model_type=vote_type, wall_s=member_wave.wall_s, started=member_wave.started
        )
    )
    run.recorder.rows(rows)
    figures, line, files = _closing(run, rows, vote, member_wave, single_wave, problems)
    ctx = run.ctx
    report = EnsembleReport(
        ctx.sweep_id, vote.voting, tuple(rows), figures, line, vote.model_uri, registered, tuple(problems),
        sharded=run.source is not None, experiment_id=ctx.experiment_id, parent_run_id=ctx.parent_run_id,
        results=run.table.uri, metric=run.metric.name,
    )  # fmt: skip
    tags = {"verdict": line, "voting": vote.voting, "registered_model": registered}
    return Closing(report, figures, files=files, failed=bool(problems), tags=tags)


def _plan_models(run: _Run) -> tuple[list[Model], Model]:
    """The members and the single model with their resources; their runs started; a header line."""
    config, split, shards, cluster = run.config, run.split, run.shards, run.cluster
    fam, n = family(config.model), len(shards)
    # Members share the cluster: each asks for the family's CPUs, but no more than lets all
    # of them run at once. The single model trains alone and gets what one model can use.
    run.member_cpus = max(1, min(fam.cpus, cluster.max_cpus, int(cluster.total_cpus // n)))
    single_cpus = max(1, min(fam.cpus, cluster.max_cpus))
    everything = Shard(NOT_A_MEMBER, np.arange(len(split.y_train)), "all training rows")
    sizes = sorted(s.size for s in shards)
    single_rows = everything.size
    if run.source is not None:  # the rows are the tasks' to read: sizes from the table's metadata
        single_rows = _sample_rows(run)
        everything = Shard(NOT_A_MEMBER, np.zeros(0, dtype=np.int64), f"a sample of {single_rows} training rows")
        sizes = [run.source.training_rows // n] * 2
    members = [
        Model(
            "member",
            s,
            ModelJob(s.index, config.model, "all", run.member_cpus, 0.0, config.seed + 1 + s.index, fam.cost),
        )
        for s in shards
    ]
    single = Model(
        "single", everything, ModelJob(NOT_A_MEMBER, config.model, "all", single_cpus, 0.0, config.seed, fam.cost)
    )
    tuning = f"{config.n_trials} Optuna trials each" if config.n_trials else "family defaults, no tuning"
    log.info(
        f"ensemble {run.ctx.sweep_id}: {n} {config.model} members on {run.rows_ctx.partitioning} shards of "
        f"{'about ' if run.source else ''}{sizes[0]}{'' if sizes[0] == sizes[-1] else f'-{sizes[-1]}'} rows vs one "
        f"{config.model} on {'a sample of ' if run.source else 'all '}{single_rows} training rows ({tuning}); "
        f"{split.task} on {run.rows_ctx.dataset}, "
        f"metric {run.metric.name}; "
        f"Ray {cluster.address} with {cluster.total_cpus:g} CPUs ({run.member_cpus} per member, {single_cpus} for the "
        f"single model); MLflow {redact(run.ctx.tracking_uri)} run {run.ctx.parent_run_id}; "
        f"Delta {redact(run.table.uri)}"
    )
    if config.partition_by and config.partitions != n and run.source is None:
        log.info(
            f"partition_by={config.partition_by}: {n} shards, one per value "
            f"(partitions={config.partitions} is not used)"
        )
    for m in members:
        m.run_id = _start(run, f"member-{m.member:02d}", m.kind, m.member, m.shard.label)
    single.run_id = _start(run, f"single-{config.model}", "single", NOT_A_MEMBER, everything.label)
    return members, single


def _start(run: _Run, run_name: str, kind: str, member: int, shard: str) -> str:
    tags = {
        "mlfleet.role": CHILD_ROLE,
        "kind": kind,
        "member": str(member),
        "family": run.config.model,
        "device": "cpu",
        "feature_strategy": "all",
        "shard": shard,
    }
    return run.recorder.start(run_name, tags, role=CHILD_ROLE)


def _train(run: _Run, members: list[Model], single: Model) -> tuple[waves.Wave, waves.Wave]:
    """Warm the workers, fit the members together, then the single model alone; score and log them all."""
    n = len(members)
    warm_s = tasks.warm(min(n, max(1, int(run.cluster.total_cpus // run.member_cpus))), hold_s=0.5, wait=True)
    # a sharded table's rows are read by each task itself: what travels is the small plan
    run.split_ref = ray.put(run.split) if run.source is None else run.source
    member_wave = _fit(run, members)
    log.info(
        f"members: {sum(m.ok for m in members)} of {n} fitted in {member_wave.wall_s:.1f} s "
        f"(Ray workers warmed first, in {warm_s:.1f} s)"
    )
    single_wave = _fit(run, [single])
    log.info(f"single model: {'fitted' if single.ok else 'failed'} in {single_wave.wall_s:.1f} s")
    _record(run, [m for m in [*members, single] if m.ok])
    return member_wave, single_wave


def _fit(run: _Run, models: list[Model]) -> waves.Wave:
    wave = waves.fit_wave(
        [m.job for m in models],
        run.split_ref,
        [m.shard.rows if run.source is None else m.member for m in models],
        run.metric.name,
        run.config.n_trials,
        run.ctx.settings.fail_model_ids,
    )
    for m, fitted, ref, error, detail in zip(models, wave.fitted, wave.refs, wave.errors, wave.details, strict=True):
        m.fitted, m.ref, m.error = fitted, ref, error
        if error:
            m.error, _ = run.recorder.fail(m.run_id, error, detail)
            log.warning("%s %s failed: %s", m.kind, m.member if m.kind == "member" else "", m.error)
        for note in fitted.notes if fitted else ():
            log.debug("%s %s: %s", m.kind, m.member, note)
    return wave


def _record(run: _Run, models: list[Model]) -> None:
    """Score and log the fitted members and single model in parallel."""
    _scoring(run)
    requests = []
    for m in models:
        rows, counts = trained_on(run.rows_ctx, m)
        facts = m.fitted.facts
        read = (
            {"read_bytes": float(facts.bytes_read), "read_rows": float(facts.rows_read),
             "rows_of_unknown_class": float(facts.unknown)} if facts else {}
        )  # fmt: skip
        if facts and facts.unknown:
            log.warning(
                f"{m.kind} {m.member}: {facts.unknown} training rows of a class the validation rows lack, left out"
            )
        requests.append(
            {
                "run_id": m.run_id,
                "name": f"member-{m.member:02d}" if m.kind == "member" else f"single-{run.config.model}",
                "fitted": m.ref,
                "params": {
                    "kind": m.kind,
                    "family": run.config.model,
                    "model_type": m.fitted.model_type,
                    "shard": m.shard.label,
                    "shard_rows": rows,
                    "class_counts": json.dumps(counts),
                    **({"shard_digest": facts.digest} if facts else {}),
                    "n_trials": run.config.n_trials,
                    "primary_metric": run.metric.name,
                    **m.fitted.params,
                },
                "metrics": {
                    "shard_rows": float(rows),
                    "fit_s": m.fitted.fit_s,
                    "cpu_s": m.fitted.cpu_s,
                    **read,
                    **{f"class_share_{_metric_key(label)}": count / max(rows, 1) for label, count in counts.items()},
                },
                "tags": {"node": m.fitted.node, "model_type": m.fitted.model_type},
                "history": {f"trial_val_{run.metric.name}": m.fitted.trial_scores} if m.fitted.trial_scores else {},
            }
        )
    for m, recorded in zip(models, waves.record_wave(requests, run.score_ref, run.recorder.model), strict=True):
        m.scores, m.model_uri, m.error = recorded.scores, recorded.model_uri, recorded.error


def _scoring(run: _Run) -> None:
    """The split the models are scored on: the one in the object store, or for a sharded table the validation and
    test rows that one task reads and leaves in the object store (the driver is told only what it read)."""
    if run.source is None:
        run.score_ref = run.split_ref
        return
    run.score_ref, told = tasks.submit(sharded.scoring_split, run.source, name="scoring-rows", returns=2)
    (done,) = tasks.gather([told])
    if done.error is not None:
        raise done.error  # no model can be scored: the command fails, and its runs end FAILED
    run.scoring = done.value
    log.info(
        f"scoring rows: {run.scoring.rows:,} validation and test rows read by a worker "
        f"({run.scoring.bytes_read / 2**20:.1f} MiB), kept in the object store"
    )


def _vote(run: _Run, voters: list[Model], members_wall_s: float) -> Vote:
    """Weigh the members that succeeded, build the vote, score and log it in its own run."""
    task, metric = run.split.task, run.metric
    if not voters:
        return Vote("mean" if task == "regression" else "", error="no member succeeded, so there is nothing to vote")
    weights = member_weights(run.config.weights, [m.scores.val[metric.name] for m in voters], metric)
    for m, w in zip(voters, weights, strict=True):
        m.weight = w
        run.recorder.model.figures(m.run_id, metrics={"weight": w})
    pipelines = [(f"member_{m.member}", m.ref) for m in voters]  # references: the pipelines stay in the object store
    vote = Vote(voting_of(task, [m.fitted.has_proba for m in voters]), tuple(m.member for m in voters), tuple(weights))
    vote.run_id = _start(run, f"ensemble-{vote.voting}", "ensemble", NOT_A_MEMBER, f"vote of {len(voters)} members")
    model_type = "VotingRegressor" if task == "regression" else "VotingClassifier"
    # Built, scored and logged by a warm worker, like the members: the driver never loads the model-logging code.
    request = {
        "run_id": vote.run_id,
        "name": f"ensemble-{vote.voting}",
        "fitted": None,  # the vote is built in the task that logs it
        "params": {
            "kind": "ensemble",
            "family": run.config.model,
            "voting": vote.voting,
            "weights": run.config.weights,
            "members": ",".join(map(str, vote.members)),
            "member_weights": ",".join(f"{w:.6g}" for w in weights),
            "n_members": len(voters),
            "primary_metric": metric.name,
        },
        "metrics": {"n_members": float(len(voters)), "train_wall_s": members_wall_s},
        "tags": {"model_type": model_type, "voting": vote.voting},
        "history": {},
    }
    recorded = waves.record_vote(
        request, run.score_ref, run.recorder.model, pipelines, voting=vote.voting, weights=weights
    )
    vote.scores, vote.model_uri, vote.error = recorded.scores, recorded.model_uri, recorded.error
    return vote


def _register(run: _Run, vote: Vote, problems: list[str]) -> str:
    if not (run.config.register and vote.model_uri):
        return ""
    from mlflow import MlflowClient

    candidate = champion.Candidate(
        model_uri=vote.model_uri,
        run_id=vote.run_id,
        model_id=NOT_A_MEMBER,
        model_type=f"{vote.voting} vote of {len(vote.members)} {run.config.model}",
        sweep_id=run.ctx.sweep_id,
        score=float((vote.scores.test if vote.scores else {}).get(run.metric.name, float("nan"))),
        dataset_digest=run.rows_ctx.dataset_digest,
        analysis_id="",
        split=run.split.key,
    )
    try:
        client = MlflowClient(tracking_uri=run.ctx.tracking_uri)
        decision = registry.crown(
            client,
            run.config.register,
            candidate,
            run.metric,
            compare=_gate(run, vote),
            tags={"entry_point": run.ctx.entry_point},
        )
    except Exception as exc:  # the registry refused: the ensemble itself is complete
        problems.append(f"the ensemble could not be registered as {run.config.register}: {exc}")
        return ""
    log.info(f"champion rule: {decision.sentence()}")
    return f"{decision.name}/{decision.version}"


def _gate(run: _Run, vote: Vote):
    """The promotion gate of the registered ensemble: against the champion on this run's test rows (for a sharded
    table, in a Ray task that holds them)."""
    if run.source is not None:
        return lambda champion_version: _remote_gate(run, vote.model_uri, champion_version.source)
    return lambda champion_version: champion.compare_models(
        run.metric, run.split, vote.model_uri, champion_version.source
    )


def _remote_gate(run: _Run, challenger: str, current: str):
    ref = tasks.submit(
        champion.compare_models, run.metric, run.score_ref, challenger, current, run.ctx.tracking_uri, name="gate"
    )
    (done,) = tasks.gather([ref])
    if done.error is not None:
        raise done.error
    return done.value


def _closing(run: _Run, rows: list[EnsembleRow], vote: Vote, member_wave, single_wave, problems: list[str]):
    """The parent run's figures, verdict, and what writes its plot and CSV."""
    metric = run.metric
    by_kind = {r.kind: r for r in rows if r.kind != "member"}
    member_scores = [r.score for r in rows if r.kind == "member"]
    figures = comparison_figures(
        metric,
        member_scores=member_scores,
        n_members=len(vote.members),
        ensemble=vote.scores.test if vote.scores else None,
        single=_test_scores(by_kind["single"]),
        ensemble_wall_s=member_wave.wall_s,
        single_wall_s=single_wave.wall_s,
        members_fit_s=sum(f.fit_s for f in member_wave.fitted if f),
        members_cpu_s=sum(f.cpu_s for f in member_wave.fitted if f),
    )
    figures["n_failed"] = float(len(problems))
    n_voters = len(vote.members)
    line = verdict(
        metric,
        by_kind["ensemble"].score,
        by_kind["single"].score,
        n_members=n_voters,
        ensemble_wall_s=member_wave.wall_s,
        single_wall_s=single_wave.wall_s,
    )
    if run.source is not None:
        figures.update(_sharded_figures(run))
        line += (
            f"; the table is sharded: each member read its own shard, and the single model learnt from a stratified "
            f"sample of {by_kind['single'].shard_rows or _sample_rows(run):,} of about {run.source.training_rows:,} "
            "training rows"
        )
    log.info(f"verdict: {line}")
    title = (
        f"{run.config.model}: {n_voters}-member {vote.voting} vote vs one model on "
        f"{'a sample of the' if run.source is not None else 'all'} training rows ({run.rows_ctx.dataset})"
    )
    files = {
        "comparison.png": lambda path: plot_comparison(
            path,
            metric,
            member_scores=member_scores,
            ensemble_score=by_kind["ensemble"].score,
            single_score=by_kind["single"].score,
            title=title,
        ),
        "ensemble_results.csv": lambda path: rows_to_frame(rows, EnsembleRow).to_csv(path, index=False),
    }
    return figures, line, files


def _sample_rows(run: _Run) -> int:
    """The single model's rows when the table is sharded (about: the training rows are known from metadata)."""
    return min(run.source.sample_rows, run.source.training_rows)


def _sharded_figures(run: _Run) -> dict[str, float]:
    """What the driver, the holdout task and the scoring task read of a sharded table, and the driver's peak
    memory."""
    figures = run.read.figures() if run.read else {}
    if run.scoring is not None:
        figures.update(scoring_rows=float(run.scoring.rows), scoring_read_bytes=float(run.scoring.bytes_read))
    peak = driver_peak_rss()
    if peak:
        figures["driver_peak_rss_bytes"] = float(peak)
    return figures


def driver_peak_rss() -> int:
    """This process's peak resident memory in bytes (``VmHWM`` of ``/proc/self/status``); 0 where there is none."""
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def summary_lines(report: EnsembleReport) -> str:
    """A few lines for the terminal: the ensemble model, what failed, where to look."""
    ens = report.row("ensemble")
    lines = []
    if ens.ok:
        registered = f", registered as {report.registered}" if report.registered else ""
        lines.append(
            f"ensemble model ({report.voting} vote of {ens.n_members} members): {report.model_uri}{registered}"
        )
    lines += [f"failed: {problem}" for problem in report.problems]
    lines.append(
        f"results: Delta {redact(report.results)} (ensemble_id {report.ensemble_id}); runs: experiment "
        f"{report.experiment_id}, parent run {report.parent_run_id}"
    )
    return "\n".join(lines)


def _test_scores(row: EnsembleRow) -> dict[str, float] | None:
    if not row.ok:
        return None
    names = ("accuracy", "f1", "roc_auc", "log_loss") if row.task == "classification" else ("rmse", "mae", "r2")
    return {name: getattr(row, name) for name in names if getattr(row, name) is not None}


def _metric_key(label: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", str(label))
