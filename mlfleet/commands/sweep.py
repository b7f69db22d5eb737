"""A whole sweep, from a frozen config to both stores: what ``train_cpu`` and ``train_gpu`` run.

The command skeleton (:mod:`mlfleet.commands.skeleton`) does what every command does; a
sweep gives its own parts (:class:`FleetCommand`):

1. plan: everything the user can get wrong, checked before anything is created: the libraries,
   the data, the target, the metric, the split, the results location;
2. open, with Ray up: the GPUs, the jobs; with ``resume``, the sweep found and its
   configuration checked; then the results table and the parent run;
3. body: the jobs as Ray tasks, longest first, driven by a :class:`FleetController`; the
   progress line as they finish; a task that died becomes a FAILED run and row;
4. the sweep's figures and files on the parent run, and the summary lines.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import ray

from mlfleet.commands import resume, selected
from mlfleet.commands.budget import BudgetController, skipped_outcome
from mlfleet.commands.skeleton import Closing, Command, CommandReport, Context, open_parent, run_command
from mlfleet.config import FleetConfig, fleet_strategies
from mlfleet.data import Dataset, Split, load_dataset, split_dataset
from mlfleet.errors import MlfleetError, describe, first_line, full_traceback
from mlfleet.execution import cluster as ray_cluster
from mlfleet.execution import tasks
from mlfleet.execution.progress import Progress
from mlfleet.metrics import METRICS, Metric, resolve_metric
from mlfleet.redaction import redact
from mlfleet.settings import Settings
from mlfleet.stores import model_format, runs
from mlfleet.stores.recorder import SweepRecorder
from mlfleet.stores.rows import rows_to_frame
from mlfleet.stores.tables import ResultsTable, open_results
from mlfleet.training.jobs import ModelJob, expand_jobs, longest_first
from mlfleet.training.outcome import Outcome, SweepSpec, failed_row
from mlfleet.training.tuning import Tuning
from mlfleet.training.worker import train_one
from mlfleet.zoo import check_installed, family

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport(CommandReport):
    """What a sweep did: its ids, every model's outcome and the sweep's figures."""

    sweep_id: str
    outcomes: tuple[Outcome, ...]
    figures: dict[str, float] = field(default_factory=dict)
    unclosed: str = ""  # why the parent run could not be closed (the tracking store went away)
    stopped: str = ""  # why the sweep stopped before every model ran (its timeout passed)
    not_started: int = 0  # models the sweep stopped before they started: no run, no row
    ensemble: str = ""  # what the sweep's ensemble (ensemble=N) came to, in a sentence
    ensemble_model_uri: str = ""

    @property
    def failed(self) -> int:
        return sum(not o.row.ok and not o.row.skipped for o in self.outcomes)

    @property
    def skipped(self) -> int:
        """Models a time budget ended before their first trial (not a failure: the budget is the point)."""
        return sum(o.row.skipped for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 when every model succeeded and the sweep was recorded; 1 otherwise (what ran is still recorded)."""
        return 1 if self.failed or self.unclosed or self.stopped else 0

    @property
    def best(self):
        """The finished model with the best validation score (None when none finished); its test score is reported."""
        return best_row([o.row for o in self.outcomes], self.metric)


@dataclass(frozen=True)
class _Plan:
    """A sweep checked and ready to open: its data, split, metric and results table."""

    config: FleetConfig
    dataset: Dataset  # its rows dropped once split: the split holds them (see FleetCommand.plan)
    split: Split
    metric: Metric
    table: ResultsTable
    entity: Any = None  # the MLflow dataset entity of the rows as read


@dataclass(frozen=True)
class _Opened:
    """A sweep whose parent run and table exist: what is left to train and what is complete."""

    plan: _Plan
    spec: SweepSpec
    jobs: tuple[ModelJob, ...]
    done: tuple[Outcome, ...] = ()
    split_ref: Any = None  # the split in Ray's object store; ``plan.split`` is read from it


def run_sweep(config: FleetConfig, *, stream: TextIO | None = None) -> SweepReport:
    """Train the fleet of ``config``; return the report. Raises MlfleetError on bad input, before anything exists."""
    return run_command(FleetCommand(config), stream=stream)


class FleetCommand(Command):
    """A sweep's own parts of the command skeleton (see the module's docstring)."""

    def plan(self, settings: Settings) -> _Plan:
        config = self.config
        check_installed(name for name, _ in config.models)
        dataset = load_dataset(config.data, sampled=config.sample > 0)
        metric = resolve_metric(config.metric, dataset.task)
        split = split_dataset(
            dataset,
            test_size=config.data.test_size,
            val_size=config.data.val_size,
            seed=config.data.seed,
            train_rows=config.sample,
        )
        table = open_results(config.results)
        if config.resume:
            table.check_resumable(config.resume)
        table.check_writable()
        entity = model_format.dataset_entity(
            dataset.X, dataset.y, name=dataset.name, source=dataset.source, digest=dataset.digest, target=dataset.target
        )
        # The split holds the rows from here on: keeping the rows as read too would hold the table
        # twice in the driver for the whole sweep (a big table's memory, docs/performance.md).
        dataset = dataset.without_rows()
        return _Plan(config, dataset, split, metric, table, entity)

    def worker_tables(self, plan: _Plan) -> tuple:
        return (plan.table,)

    def check(self, plan: _Plan, cluster) -> _Plan:
        self._gpus(plan, cluster)
        return plan

    def _gpus(self, plan: _Plan, cluster) -> float:
        """What each GPU-family model asks Ray for (MlfleetError when the config asks for GPUs there are not)."""
        config = plan.config
        if not any(family(name).gpus for name, _ in config.models):
            return 0.0
        return ray_cluster.gpus_per_model(config.device, config.gpus_per_model, cluster)

    def open(self, plan: _Plan, settings: Settings, uri: str, cluster) -> tuple[_Opened, SweepRecorder]:
        # Into the object store once; the driver then reads its split from there (no copy), and the
        # private one it built goes, so the table is not held twice while the fleet trains.
        split_ref = ray.put(plan.split)
        plan = replace(plan, split=ray.get(split_ref))
        tasks.give_back_memory(plan.split.X_fit.size + plan.split.X_test.size)
        config, dataset, table = plan.config, plan.dataset, plan.table
        wants_gpus = any(family(name).gpus for name, _ in config.models)
        gpus = self._gpus(plan, cluster)
        tasks.warm(cluster.total_cpus, tracking_uri=uri)  # the workers' imports overlap the sweep's opening
        jobs = expand_jobs(
            config.models,
            first_id=config.first_id,
            seed=config.data.seed,
            max_cpus=cluster.max_cpus,
            max_gpus=cluster.max_gpus,
            gpus_per_model=gpus,
            rows=len(plan.split.y_fit),
            strategies=fleet_strategies(config.models),
        )
        if wants_gpus and not gpus and config.device == "auto":
            log.info("no GPU in the Ray cluster: the GPU families train on CPU (device=auto)")
        parent = runs.find_sweep(uri, config.resume) if config.resume else None
        if parent is not None:  # the sweep and its configuration are checked before anything is written
            resume.check_config(parent, config, dataset.digest)
        added = table.ensure()
        if added:
            log.info(
                "results table %s: added the columns %s (schema evolution; earlier rows read them as null)",
                redact(table.uri),
                ", ".join(added),
            )
        recorder = self._parent(plan, settings, uri, parent, len(jobs))
        spec = SweepSpec(
            recorder.model, plan.metric.name, config.n_trials, dataset.name, dataset.digest, dataset.classes
        )
        log.info(plan.split.plan.describe())
        log.info(_opening_line(plan, cluster, recorder, len(jobs)))
        if plan.split.train_pool:
            log.warning(sample_line(plan.split))
        if parent is None:
            return _Opened(plan, spec, jobs, split_ref=split_ref), recorder
        steps = resume.plan(recorder, spec, jobs, dataset.task)
        log.info(steps.describe(recorder.tracking.sweep_id))
        return _Opened(plan, spec, steps.to_train, steps.complete, split_ref), recorder

    def _parent(self, plan: _Plan, settings: Settings, uri: str, parent, n_jobs: int) -> SweepRecorder:
        config, dataset, entity = plan.config, plan.dataset, plan.entity
        if parent is not None:
            return SweepRecorder.reopen(
                plan.table, uri, settings, parent, entry_point=config.entry_point, dataset=entity
            )
        params = config.params()
        return open_parent(
            plan.table,
            (uri, settings),
            config,
            dataset=dataset,
            metric=plan.metric,
            split=plan.split,
            params={**params, "n_models": str(n_jobs)},
            tags={runs.CONFIG_TAG: json.dumps(params, sort_keys=True), **_sample_tags(plan.split)},
            entity=entity,
        )

    def body(self, opened: _Opened, context: Context) -> Closing:
        plan, recorder, cluster = opened.plan, context.recorder, context.cluster
        progress = Progress(len(opened.jobs), plan.metric, stream=context.stream)
        start, cpu0 = time.perf_counter(), time.process_time()
        controller = FleetController(opened, recorder, progress, cluster.total_cpus)
        try:
            controller.run() if opened.jobs else None
        finally:
            progress.close()
        outcomes = sorted([*opened.done, *controller.outcomes], key=lambda o: o.row.model_id)
        wall_s, driver_cpu_s = time.perf_counter() - start, time.process_time() - cpu0
        figures = sweep_figures(
            outcomes, wall_s=wall_s, cpus=cluster.total_cpus, metric=plan.metric, driver_cpu_s=driver_cpu_s
        )
        figures["n_not_started"] = float(controller.not_started)
        _compact(plan.table)
        ensemble, ensemble_uri = ("", "")
        if plan.config.ensemble:
            ensemble, ensemble_uri = _close_ensemble(recorder, plan, outcomes, figures)
        ctx = recorder.tracking
        report = SweepReport(
            ctx.sweep_id,
            tuple(outcomes),
            figures,
            stopped=controller.limits.stopped,
            not_started=controller.not_started,
            ensemble=ensemble,
            ensemble_model_uri=ensemble_uri,
            experiment_id=ctx.experiment_id,
            parent_run_id=ctx.parent_run_id,
            results=plan.table.uri,
            metric=plan.metric.name,
        )
        return Closing(
            report,
            figures,
            tags={selected.MODEL_TAG: ensemble_uri} if ensemble_uri else None,
            files={"results.csv": lambda path: rows_to_frame([o.row for o in outcomes]).to_csv(path, index=False)},
            failed=figures["n_failed"] > 0 or figures["n_not_started"] > 0,
            tolerate=True,  # the tracking store went away: the rows are in Delta, resume later
        )

    def summary(self, report: SweepReport) -> str:
        return summary_lines(report)


def _close_ensemble(recorder: SweepRecorder, plan: _Plan, outcomes: list[Outcome], figures: dict) -> tuple[str, str]:
    """The sweep's own ensemble (``ensemble=N``) over its finished models, logged under its parent run.

    Returns what it came to and its model's URI (empty when none was logged). A failure here is
    a warning: the models stand, and analyze builds an ensemble of its own.
    """
    from mlflow import MlflowClient

    from mlfleet.commands.analyze.report.summary import ranked

    candidates = ranked(rows_to_frame([o.row for o in outcomes]), plan.metric)
    if len(candidates) < 2:
        return "Ensemble selection was skipped: fewer than two models finished.", ""
    sweep_id = recorder.tracking.sweep_id
    try:
        client = MlflowClient(recorder.tracking.tracking_uri)
        result, note = selected.build(client, candidates, plan.split, plan.metric, max_members=plan.config.ensemble)
        if result is None or len(result.members) < 2:
            return note, ""
        logged = selected.log(
            recorder, result, plan.split, plan.metric, name=f"ensemble-{sweep_id}", tags={"sweep_id": sweep_id}
        )
    except Exception as exc:  # the sweep's models are recorded: its ensemble is an extra
        log.warning("the sweep's ensemble failed: %s", describe(exc))
        return f"Ensemble selection failed ({first_line(exc)}); the models stand, and analyze builds one.", ""
    figures.update(
        ensemble_val_score=result.val_score,
        ensemble_test_score=result.test_score,
        ensemble_gain=result.gain,
        ensemble_members=float(len(result.members)),
    )
    return f"{note} It is logged as {logged.model_uri}.", logged.model_uri


#: the parent run's tag saying that the models trained on a sample of the training rows (``sample=ROWS``)
SAMPLE_TAG = "training_sample"


def sample_line(split: Split) -> str:
    """What ``sample=ROWS`` did, in a line: the models train on a sample, and the rows scored are all there."""
    what = "stratified by class" if split.task == "classification" else "drawn at random"
    return (
        f"sample={split.n_train}: the models train on {split.n_train:,} of the {split.train_pool:,} training rows "
        f"({what}, seed {_seed_of(split)}); the {len(split.y_val):,} validation and {len(split.y_test):,} test rows "
        "are all kept, so scores compare with a sweep on every row"
    )


def _seed_of(split: Split) -> str:
    return dict(part.split("=", 1) for part in split.key.split(",")).get("seed", "?")


def _sample_tags(split: Split) -> dict[str, str]:
    """The parent run's tag of a sweep on a sample of its training rows (none for one on every row)."""
    if not split.train_pool:
        return {}
    return {SAMPLE_TAG: f"{split.n_train} of {split.train_pool} training rows"}


def _opening_line(plan: _Plan, cluster: ray_cluster.Cluster, recorder: SweepRecorder, n_jobs: int) -> str:
    dataset, ctx = plan.dataset, recorder.tracking
    return (
        f"sweep {ctx.sweep_id}: {n_jobs} models, {dataset.task} on {dataset.name} "
        f"({len(dataset.y)} rows, {dataset.X.shape[1]} columns), metric {plan.metric.name}; "
        f"Ray {cluster.address} with {cluster.nodes} node(s), {cluster.total_cpus:g} CPUs; "
        f"MLflow {redact(ctx.tracking_uri)} run {ctx.parent_run_id}; Delta {redact(plan.table.uri)}\n"
        f"  to continue this sweep after an interruption, run the same command with resume={ctx.sweep_id}"
    )


class _Limits:
    """The sweep's time limits, checked about once a second: which tasks to cancel, and why.

    ``model_timeout`` counts from when a model's task started (by the board's view, which a
    slow board delays but never empties), ``timeout`` from when the sweep began submitting.
    Cancelling a running task kills its worker; Ray does not retry it, and the driver records
    its run and row FAILED with the reason.
    """

    def __init__(self, config: FleetConfig, refs: dict[int, Any], board: tasks.BoardView) -> None:
        self.model_timeout, self.timeout = config.model_timeout, config.timeout
        self.refs, self.board = refs, board
        self.deadline = time.monotonic() + self.timeout if self.timeout else math.inf
        self.why: dict[int, str] = {}  # model id -> why it was cancelled
        self.at: dict[int, float] = {}  # model id -> when (monotonic)
        self.stopped = ""

    def check(self, finished: set[int]) -> None:
        if self.stopped:
            return
        if time.monotonic() > self.deadline:
            self.stopped = f"the sweep's timeout of {self.timeout:g} s passed"
            self._cancel(set(self.refs) - finished, f"cancelled: {self.stopped}")
        elif self.model_timeout:
            overdue = self.board.overdue(self.model_timeout) - finished
            self._cancel(overdue, f"timed out after {self.model_timeout:g} s")

    def _cancel(self, keys: set[int], why: str) -> None:
        for key in sorted(keys - set(self.why)):
            self.why[key], self.at[key] = why, time.monotonic()
            tasks.cancel(self.refs[key])


class FleetController:
    """The fleet's loop as an object: submit every job longest first, and handle each result as it comes.

    A result is an outcome (its row goes into the next batch), a task whose worker died (tried
    again with the run it opened, up to :data:`tasks.MAX_RETRIES`), a task cancelled by a time
    limit (FAILED, or "not started" on the board's word), or a task that died for good (its run
    and row FAILED). The state lives in the fields; nothing here calls MLflow or Delta but
    through the recorder.
    """

    def __init__(self, opened: _Opened, recorder: SweepRecorder, progress: Progress, cores: float = 1.0) -> None:
        self.opened, self.recorder, self.progress, self.cores = opened, recorder, progress, cores
        self.board = tasks.BoardView(tasks.open_board())
        self.spec_ref = ray.put(opened.spec)
        self.pending: dict[Any, ModelJob] = {}
        self.refs: dict[int, Any] = {}
        self.tries: dict[int, int] = {}
        self.tunings: dict[int, Tuning] = {}  # a time budget's studies, refitted by the models' tasks
        self.outcomes: list[Outcome] = []
        self.finished: set[int] = set()
        self.not_started = 0
        self.limits = _Limits(opened.plan.config, self.refs, self.board)
        self.rows = _Rows(self.outcomes, recorder, self.died)

    def run(self) -> None:
        """Every job as a task, longest first; under a time budget, rounds of tuning first (:mod:`.budget`)."""
        try:
            budget = self.opened.plan.config.time_budget
            if budget:
                BudgetController(self, budget).run()
            else:
                for job in longest_first(self.opened.jobs):
                    self.submit(job)
                self.run_pending()
        finally:
            self.board.close()

    def run_pending(self) -> None:
        """Handle the tasks as they finish, and write the last rows."""
        for done in tasks.as_completed(self.pending, on_tick=self.tick):
            self.handle(done)
        self.rows.write()

    def submit(self, job: ModelJob, previous_run: str = "", *, tuning: Tuning | None = None) -> None:
        """The model's task; the driver, not Ray, retries one whose worker died (it knows the earlier run).

        ``tuning``: the study a time budget ran for it, which the task refits (a retry refits it too).
        """
        if tuning is not None:
            self.tunings[job.model_id] = tuning
        self.tries[job.model_id] = self.tries.get(job.model_id, 0) + 1
        args = (job, self.opened.split_ref, self.spec_ref, self.board.board, self.tries[job.model_id], previous_run)
        ref = tasks.submit(
            _train_task,
            *args,
            self.tunings.get(job.model_id),
            cpus=job.cpus,
            gpus=job.gpus,
            name=job.run_name,
            spread=True,
            retries=0,
        )
        self.pending[ref] = job
        self.refs[job.model_id] = ref

    def skip(self, job: ModelJob, reason: str) -> None:
        """A model not trained by design (a time budget ended first): its SKIPPED row, no run."""
        self.finished.add(job.model_id)
        self.rows.add(job, len(self.outcomes))
        self.outcomes.append(skipped_outcome(job, self.opened.spec, self.opened.plan.split.task, reason))

    def failed_before_run(self, job: ModelJob, exc: BaseException, detail: str = "") -> None:
        """A model that failed before it had a run (a time budget's first round): its FAILED row."""
        self.finished.add(job.model_id)
        why = self.limits.why.get(job.model_id)
        outcome = self.died(job, TimeoutError(why) if why else exc, "", "" if why else detail)
        _log_outcome(outcome)
        self.outcomes.append(outcome)

    def tick(self, outcome: Outcome | None = None) -> None:
        self.board.poll()
        self.limits.check(self.finished)
        self.rows.write(due_only=True)
        row = outcome.row if outcome else None
        self.progress.update(
            done=len(self.outcomes),
            failed=sum(not o.row.ok and not o.row.skipped for o in self.outcomes),
            running=len(self.board.started() - self.finished),
            score=row.val_score if row and row.ok else None,  # the progress line's best: chosen on validation
            who=f"#{row.model_id} {row.family}" if row else "",
        )

    def handle(self, done: tasks.Done) -> None:
        job, limits = done.item, self.limits
        died = done.error is not None and tasks.worker_died(done.error) and job.model_id not in limits.why
        if died and self.tries[job.model_id] <= tasks.MAX_RETRIES:
            log.info("model %s (%s): its worker died (%s); trying again", job.model_id, job.family, done.error)
            previous = self.board.last_run(job.model_id) or self._running_run(job)
            self.board.forget(job.model_id)
            self.submit(job, previous)
            return
        self.finished.add(job.model_id)
        if done.error is not None and job.model_id in limits.why:
            # stopped in the queue: no run, no row; resume trains it
            if not self.board.surely_started(job.model_id, limits.at[job.model_id]):
                self.not_started += 1
                return
            done = replace(done, error=TimeoutError(limits.why[job.model_id]), detail="")
        if done.error is not None:  # the task died: worker crash, OOM kill, an error outside train_one
            run_id = self.board.last_run(job.model_id) or self._running_run(job)
            outcome = self.died(job, done.error, run_id, done.detail)
        else:
            outcome = done.value
            self.rows.add(job, len(self.outcomes))
        _log_outcome(outcome)
        self.outcomes.append(outcome)
        self.tick(outcome)

    def died(self, job: ModelJob, exc: BaseException, run_id: str, detail: str = "") -> Outcome:
        return record_death(self.recorder, self.opened.spec, self.opened.plan.split.task, job, exc, run_id, detail)

    def _running_run(self, job: ModelJob) -> str:
        """The run a dead try of ``job`` left RUNNING, from MLflow: it died before the board heard of it."""
        try:
            tries = self.recorder.model.runs().get(job.model_id, [])
            return next((r.info.run_id for r in tries if r.info.status == "RUNNING"), "")
        except Exception:  # the store is away: the retry logs a new run, resume marks the old one stale
            return ""


def record_death(
    recorder: SweepRecorder, spec: SweepSpec, task: str, job: ModelJob, exc: BaseException, run_id: str, detail=""
) -> Outcome:
    """The FAILED run and row of a model whose task died for good (its retries are spent), was
    cancelled, or whose row could not be written."""
    detail = detail or full_traceback(exc)
    row = lambda text: failed_row(job, spec, task, text, run_id=run_id)  # noqa: E731
    _, built = recorder.fail(run_id, describe(exc), detail, row=row, version=job.attempt)
    now = time.time()
    return Outcome(built, 0.0, 0.0, now, now, detail=detail)


def _train_task(
    job: ModelJob, split: Split, spec: SweepSpec, board, tries: int, previous_run: str, tuning: Tuning | None
) -> Outcome:
    """One model in its Ray task; it tells the board and never waits on it (see :class:`tasks.BoardState`)."""
    board.started.remote(job.model_id)
    try:
        return train_one(
            job,
            split,
            spec,
            node=tasks.node_name(),
            previous_run=previous_run,
            tries=tries,
            on_run=lambda run_id: board.run.remote(job.model_id, run_id),
            tuning=tuning,
        )
    finally:
        tasks.give_back_memory(split.X_fit.size + split.X_test.size)


#: the driver commits the finished models' rows once this many wait, or the oldest has waited this long
ROW_BATCH = 64
ROW_WAIT_S = 2.0


class _Rows:
    """The rows of finished models, written by the driver in one commit per batch.

    A commit costs tens of milliseconds whatever it holds, so the driver commits the rows the
    tasks return once :data:`ROW_BATCH` are waiting or the oldest has waited
    :data:`ROW_WAIT_S`, and at the end; each row is still its own transaction (its key at its
    attempt), so writing it twice leaves one. What the table cannot write in one commit it
    writes row by row (:meth:`~mlfleet.stores.tables.ResultsTable.commit_each`), and a row
    that cannot be written fails its model (a FAILED run and row saying why). Should the
    driver die or be interrupted first, the rows not written are rebuilt from their finished
    runs on resume.
    """

    def __init__(self, outcomes: list[Outcome], recorder: SweepRecorder, died) -> None:
        self.outcomes, self.recorder, self.died = outcomes, recorder, died
        self.waiting: list[tuple[ModelJob, int]] = []  # (job, index of its outcome)
        self.since = 0.0

    def add(self, job: ModelJob, index: int) -> None:
        if not self.waiting:
            self.since = time.monotonic()
        self.waiting.append((job, index))

    def write(self, *, due_only: bool = False) -> None:
        if not self.waiting:
            return
        if due_only and len(self.waiting) < ROW_BATCH and time.monotonic() - self.since < ROW_WAIT_S:
            return
        batch, self.waiting = self.waiting, []
        outcomes, recorder = self.outcomes, self.recorder
        rows = [outcomes[i].row for _, i in batch]
        start = time.perf_counter()
        errors = recorder.rows_or_errors(rows, [job.attempt for job, _ in batch])
        if any(errors):  # only a row that cannot be written fails its model
            for (job, i), row, error in zip(batch, rows, errors, strict=True):
                if error is not None:
                    outcomes[i] = self.died(job, error, row.mlflow_run_id)
            return
        share = (time.perf_counter() - start) / len(batch)
        for _, i in batch:
            outcomes[i] = replace(outcomes[i], delta_s=outcomes[i].delta_s + share)


def _compact(table: ResultsTable) -> None:
    """Compact the results table after the sweep, so that reading it stays fast as sweeps accumulate.

    Housekeeping: a failure (a concurrent sweep compacting too) is a warning, never the sweep's.
    """
    try:
        done = table.compact()
    except Exception as exc:
        log.warning("the results table was not compacted (%s); the next sweep tries again", describe(exc))
        return
    if done:
        log.info("results table: %s", done)


def _log_outcome(outcome: Outcome) -> None:
    row = outcome.row
    for note in outcome.notes:
        log.debug("model %s (%s): %s", row.model_id, row.family, note)
    if not row.ok:
        log.warning("model %s (%s) failed: %s", row.model_id, row.family, row.error)
        if outcome.detail.strip() and outcome.detail.strip() != row.error:  # a traceback, not the line again
            log.info("%s", outcome.detail.rstrip())


def sweep_figures(
    outcomes: list[Outcome], *, wall_s: float, cpus: float, metric: Metric, driver_cpu_s: float = 0.0
) -> dict[str, float]:
    """The sweep's figures: counts, best score, wall time, tracking cost, and how well the cores were used.

    Two figures that cannot exceed 100%:

    * ``cpu_utilisation``: the process CPU-seconds of the fleet (every model's whole task,
      fitting and recording, and the driver's own) / (wall x cores).
    * ``packing_efficiency``: the ideal packing of the measured model work / the wall. The
      ideal is the model work's CPU-seconds (each model's process CPU while it tuned and
      fitted: the cores it really used, not the cores it held) spread over every core, and
      never shorter than the longest model's tuning and fitting.

    The gap between them is the recording (tracking, rows) and the waiting; what is below
    ``cpu_utilisation`` is cores left idle. Ray's own processes are not counted.
    """
    every_ok = [o for o in outcomes if o.row.ok]
    ok = [o for o in every_ok if not o.resumed]  # what this run of the sweep did and cost
    trained = [o for o in outcomes if not o.resumed]
    tracking_s = sorted(o.tracking_s for o in ok)
    model_s = sum((o.row.tuning_s or 0.0) + (o.row.train_s or 0.0) for o in ok)
    fit_cpu_s = sum(o.cpu_s for o in trained)
    fleet_cpu_s = sum(o.task_cpu_s for o in trained) + driver_cpu_s
    longest = max(((o.row.tuning_s or 0.0) + (o.row.train_s or 0.0) for o in trained), default=0.0)
    ideal_wall_s = max(fit_cpu_s / cpus, longest) if cpus > 0 else float("nan")
    capacity = wall_s * cpus
    best = best_row([o.row for o in every_ok], metric.name)
    return {
        "n_models": float(len(outcomes)),
        "n_succeeded": float(len(every_ok)),
        "n_failed": float(sum(not o.row.ok and not o.row.skipped for o in outcomes)),
        "n_skipped": float(sum(o.row.skipped for o in outcomes)),
        "n_trained": float(len(trained)),
        "best_score": best.score if best is not None and best.score is not None else float("nan"),
        "best_val_score": best.val_score if best is not None else float("nan"),
        "wall_s": wall_s,
        "fit_cpu_s": fit_cpu_s,
        "fleet_cpu_s": fleet_cpu_s,
        "cpu_utilisation": fleet_cpu_s / capacity if capacity > 0 else float("nan"),
        "ideal_wall_s": ideal_wall_s,
        "packing_efficiency": ideal_wall_s / wall_s if wall_s > 0 else float("nan"),
        "tracking_s_median": statistics.median(tracking_s) if tracking_s else float("nan"),
        "tracking_s_p95": tracking_s[min(len(tracking_s) - 1, int(0.95 * len(tracking_s)))]
        if tracking_s
        else float("nan"),
        "tracking_share": sum(tracking_s) / model_s if model_s else float("nan"),
        "delta_s_median": statistics.median(o.delta_s for o in ok) if ok else float("nan"),
        **{f"{name}/{fam}": value for fam, cores in family_cores(trained).items() for name, value in cores.items()},
    }


def family_cores(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    """Per family of the finished models: the cores each held, and the cores it used fitting and over its task.

    ``cores_held``: the CPUs its tasks asked Ray for, weighted by how long each fitted;
    ``cores_used``: its process CPU-seconds while tuning and fitting / those seconds;
    ``task_cores_used``: the whole task's CPU-seconds (fitting and recording) / the task's wall.
    A family that holds more than it uses leaves cores idle (what sizing the cores avoids).
    """
    by_family: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.row.ok and not o.resumed:
            by_family.setdefault(o.row.family, []).append(o)
    cores = {}
    for fam, group in sorted(by_family.items()):
        fit_s = [(o.row.tuning_s or 0.0) + (o.row.train_s or 0.0) for o in group]
        task_s = sum(max(o.finished - o.started, 0.0) for o in group)
        if sum(fit_s) <= 0:
            continue
        cores[fam] = {
            "cores_held": sum((o.row.cpus or 0.0) * s for o, s in zip(group, fit_s, strict=True)) / sum(fit_s),
            "cores_used": sum(o.cpu_s for o in group) / sum(fit_s),
            "task_cores_used": sum(o.task_cpu_s for o in group) / task_s if task_s > 0 else float("nan"),
        }
    return cores


def best_row(rows: list, metric: str):
    """The finished row with the best validation score: what the sweep calls its best (None without one).

    Chosen on validation; its test score is what is reported. Ties go to the lower model id.
    """
    ok = [r for r in rows if r.ok and r.val_score is not None and r.score is not None]
    if not ok:
        return None
    sign = 1.0 if METRICS[metric].greater_is_better else -1.0
    return max(sorted(ok, key=lambda r: r.model_id), key=lambda r: sign * r.val_score)


def summary_lines(report: SweepReport) -> str:
    """A few lines for the terminal: what succeeded, the best model, where to look."""
    f = report.figures
    unstarted = f", {report.not_started} did not start" if report.not_started else ""
    if report.skipped:
        unstarted += f", {report.skipped} not trained (the time budget ended before their first trial)"
    lines = [
        f"sweep {report.sweep_id}: {int(f['n_succeeded'])} of {int(f['n_models']) + report.not_started} models "
        f"succeeded, {int(f['n_failed'])} failed{unstarted}, in {f['wall_s']:.1f} s "
        f"(CPU utilisation {f['cpu_utilisation']:.0%}; the ideal packing of the model work: "
        f"{f['ideal_wall_s']:.1f} s, {f['packing_efficiency']:.0%} of the wall)"
    ]
    held = family_cores(list(report.outcomes))
    if held:
        lines.append(
            "cores per model, held / used fitting / used over the task: "
            + ", ".join(
                f"{fam} {c['cores_held']:.2g} / {c['cores_used']:.2f} / {c['task_cores_used']:.2f}"
                for fam, c in held.items()
            )
        )
    best = report.best
    if best is not None:
        lines.append(
            f"best (on validation): model {best.model_id} ({best.family}, {best.feature_strategy}) "
            f"val {report.metric}={best.val_score:.4f}, test {report.metric}={best.score:.4f}, "
            f"model {best.model_uri}"
        )
    if report.ensemble:
        lines.append(f"ensemble: {report.ensemble}")
    lines += [
        f"failed: model {o.row.model_id} ({o.row.family}): {o.row.error}"
        for o in report.outcomes
        if not o.row.ok and not o.row.skipped
    ]
    lines.append(
        f"results: Delta {redact(report.results)}; "
        f"runs: experiment {report.experiment_id}, parent run {report.parent_run_id}"
    )
    if report.unclosed:
        lines.append(
            f"error: the sweep's parent run could not be closed ({report.unclosed}); when the tracking store is back, "
            f"resume={report.sweep_id}"
        )
    elif report.stopped:
        lines.append(
            f"stopped: {report.stopped}; {report.not_started} model(s) did not start; "
            f"to train what is not finished: the same command with resume={report.sweep_id}"
        )
    elif report.failed:
        lines.append(f"to train the failed models again: the same command with resume={report.sweep_id}")
    return "\n".join(lines)


__all__ = ["MlfleetError", "SweepReport", "run_sweep", "summary_lines", "sweep_figures"]
