"""A sweep with a time budget: trials go where they pay, and every model with a trial is refitted at the budget.

Every model first gets its family's defaults (one trial, round 0). Then rounds of successive
halving across the whole fleet, asynchronously (ASHA, Li et al. 2020): a model that has done
round ``r`` goes on to round ``r + 1`` (twice the trials of the round before) when its best
validation score is in the better half of the models that have done round ``r``; the others
are closed with what they have. No round starts a trial past the tuning deadline: the budget
less what refitting and logging every model is expected to take (from the trials' own times);
only a model's defaults may start later, until the budget's end (Ray's workers may start late),
and the cheapest model's defaults run however late: a budget never ends with no model.
Should a round still run a little past it, it is cancelled and the model keeps its earlier
rounds. Then every model with a trial is refitted on training and validation rows and logged
(FINISHED); a model the budget reached before its first trial gets a SKIPPED row saying so.

Pruning across models is what the AutoML tools we compared with do not do: they give each
model its own budget, or stop one model's trials on its own curve.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from mlfleet.errors import describe
from mlfleet.execution import tasks
from mlfleet.execution.progress import Progress
from mlfleet.metrics import resolve_metric
from mlfleet.training.jobs import ModelJob, longest_first
from mlfleet.training.outcome import Outcome, failed_row
from mlfleet.training.tuning import Tuning
from mlfleet.training.worker import study

log = logging.getLogger(__name__)

#: how much longer a refit takes than a trial (it fits training and validation rows), and its logging
REFIT_FACTOR, LOG_S = 1.5, 1.0
#: what the deadline reserves for the refits before any trial has been timed: this share of the budget
FIRST_RESERVE = 0.25
#: a round still running this long past the tuning deadline is cancelled (and its model keeps its earlier rounds)
GRACE_S = 5.0


def round_trials(level: int) -> int:
    """The trials of round ``level``: 1 (the defaults), then 1, 2, 4, ... (each round twice the one before)."""
    return 1 if level == 0 else 2 ** (level - 1)


@dataclass(frozen=True)
class _Round:
    """A round of a model's study in flight."""

    job: ModelJob
    level: int


class Rounds:
    """The state of successive halving across the fleet: each model's study, the rounds done, who goes on.

    Plain bookkeeping, no Ray: :class:`BudgetController` asks it what to run next.
    """

    def __init__(self, jobs: tuple[ModelJob, ...], n_trials: int, greater_is_better: bool) -> None:
        self.jobs = {j.model_id: j for j in jobs}
        self.queue = deque(longest_first(jobs))  # round 0, longest first
        self.n_trials, self.sign = n_trials, 1.0 if greater_is_better else -1.0
        self.tunings: dict[int, Tuning] = {}
        self.levels: dict[int, int] = {}  # rounds done
        self.reached: dict[int, dict[int, float]] = {}  # round -> {model: best score after it}
        self.busy: set[int] = set()
        self.closed: set[int] = set()  # no more rounds: failed, cut short, or its trials spent

    def done(self, model_id: int, tuning: Tuning) -> None:
        """A round of ``model_id`` came back with its study so far."""
        self.busy.discard(model_id)
        level = self.levels.get(model_id, 0) + 1
        self.levels[model_id], self.tunings[model_id] = level, tuning
        if not math.isnan(tuning.best_value):
            self.reached.setdefault(level - 1, {})[model_id] = tuning.best_value
        if len(tuning.trials) >= self.n_trials:
            self.closed.add(model_id)

    def close(self, model_id: int) -> None:
        """No more rounds for ``model_id`` (it failed, or its round was cut short)."""
        self.busy.discard(model_id)
        self.closed.add(model_id)

    def next(self) -> _Round | None:
        """The next round to run: a model's first (defaults) while any is waiting, then the promotable model
        of the highest round; when halving promotes none and no round is running, the best model still open
        (the budget's time goes to the best first). None when nothing may run now."""
        if self.queue:
            job = self.queue.popleft()
            self.busy.add(job.model_id)
            return _Round(job, 0)
        for level in sorted(self.reached, reverse=True):
            promotable = self._promotable(level)
            if promotable is not None:
                return self._promote(promotable)
        if self.busy:
            return None  # a running round may yet make a model promotable
        open_models = [m for m in self.tunings if m not in self.closed and not math.isnan(self.tunings[m].best_value)]
        if not open_models:
            return None
        return self._promote(min(open_models, key=lambda m: (-self.sign * self.tunings[m].best_value, m)))

    def _promote(self, model_id: int) -> _Round:
        self.busy.add(model_id)
        return _Round(self.jobs[model_id], self.levels[model_id])

    def _promotable(self, level: int) -> int | None:
        """The best model that has done round ``level`` and may go on: in the better half of those that did it."""
        scores = self.reached[level]
        ranked = sorted(scores, key=lambda m: (-self.sign * scores[m], m))
        for model_id in ranked[: math.ceil(len(ranked) / 2)]:
            waiting = self.levels.get(model_id) == level + 1 and model_id not in self.busy
            if waiting and model_id not in self.closed:
                return model_id
        return None

    def trials(self, level: int, model_id: int) -> int:
        done = len(self.tunings[model_id].trials) if model_id in self.tunings else 0
        return max(1, min(round_trials(level), self.n_trials - done))


class BudgetController:
    """The fleet's loop under a time budget: the rounds of :class:`Rounds` as Ray tasks, then the refits.

    The refits run through the fleet's own controller (``fleet``): each model's task refits its
    best trial and logs it, and its row goes into the batches as any model's does.
    """

    def __init__(self, fleet, budget_s: float) -> None:
        self.fleet, self.budget_s = fleet, budget_s
        opened = fleet.opened
        self.metric = resolve_metric(opened.spec.metric, opened.plan.split.task)
        self.rounds = Rounds(opened.jobs, opened.spec.n_trials, self.metric.greater_is_better)
        self.start = time.monotonic()
        self.pending: dict[Any, _Round] = {}
        self.cancelled: set[int] = set()
        # the cheapest model's defaults run however late Ray starts its task: a budget never ends with nothing
        self.sure = min(opened.jobs, key=lambda j: (j.cost, j.model_id)).model_id if opened.jobs else None

    def _first_by(self, planned: _Round) -> float:
        """Until when (monotonic) a round's defaults may start: the budget's end, never for the sure model's."""
        if planned.level == 0 and planned.job.model_id == self.sure:
            return math.inf
        return self.start + self.budget_s

    @property
    def progress(self) -> Progress:
        return self.fleet.progress

    def run(self) -> None:
        """Tune in rounds until the tuning deadline or until no round may run, then refit every model."""
        self._fill()
        while self.pending:
            for done in tasks.as_completed(self.pending, on_tick=self._tick):
                self._handle(done)
                self._fill()
        used = time.monotonic() - self.start
        log.info(
            "time budget: %.0f of %.0f s tuned, %d trials over %d models; refitting the %d with a trial",
            used, self.budget_s, sum(len(t.trials) for t in self.rounds.tunings.values()), len(self.rounds.jobs),
            sum(t.best is not None for t in self.rounds.tunings.values()),
        )  # fmt: skip
        self._finish()

    def deadline(self) -> float:
        """When the last round may start a trial (monotonic): the budget less the refits' expected wall."""
        timed = [t.trial_seconds for t in self.rounds.tunings.values() if t.trial_seconds > 0]
        if not timed:
            reserve = FIRST_RESERVE * self.budget_s
        else:
            typical = sorted(timed)[len(timed) // 2]
            tunings = self.rounds.tunings
            each = {
                m: REFIT_FACTOR * (tunings[m].trial_seconds if m in tunings else typical) + LOG_S
                for m in self.rounds.jobs
            }
            # a refit holds its job's cores: the refits' core-seconds over the cores
            core_s = sum(each[m] * job.cpus for m, job in self.rounds.jobs.items())
            reserve = max(max(each.values()), core_s / max(1.0, self.fleet.cores))
        return self.start + max(0.0, self.budget_s - reserve)

    def _fill(self) -> None:
        """Start every round that may run now (each a task; Ray queues what the cores cannot take yet)."""
        while time.monotonic() < self.deadline() and not self.fleet.limits.stopped:
            planned = self.rounds.next()
            if planned is None:
                return
            self._submit(planned)

    def _submit(self, planned: _Round) -> None:
        job = planned.job
        previous = self.rounds.tunings.get(job.model_id)
        now = time.monotonic()
        deadline, budget_end = time.time() + (self.deadline() - now), time.time() + (self._first_by(planned) - now)
        args = (job, self.fleet.opened.split_ref, self.fleet.spec_ref, self.fleet.board.board)
        trials = self.rounds.trials(planned.level, job.model_id)
        ref = tasks.submit(
            _round_task, *args, trials, previous, deadline, budget_end, cpus=job.cpus, gpus=job.gpus, name=job.run_name
        )
        self.pending[ref] = planned
        self.fleet.refs[job.model_id] = ref

    def _tick(self) -> None:
        self.fleet.board.poll()
        in_flight = {p.job.model_id for p in self.pending.values()}
        self.fleet.limits.check(set(self.rounds.jobs) - in_flight)  # model_timeout limits each round
        now, deadline = time.monotonic(), self.deadline()
        for ref, planned in self.pending.items():  # a round long past its deadline (a first round's: the budget's end)
            late = now > (self._first_by(planned) if planned.level == 0 else deadline) + GRACE_S
            if late and planned.job.model_id not in self.cancelled:
                self.cancelled.add(planned.job.model_id)
                tasks.cancel(ref)
        best = [t.best_value for t in self.rounds.tunings.values() if not math.isnan(t.best_value)]
        top = (max if self.metric.greater_is_better else min)(best) if best else None
        self.progress.update(done=0, failed=0, running=len(self.pending), score=top, who="tuning")

    def _handle(self, done: tasks.Done) -> None:
        planned, model_id = done.item, done.item.job.model_id
        self.fleet.board.forget(model_id)  # the next round (or the refit) starts model_timeout's clock anew
        if done.error is None:
            self.rounds.done(model_id, done.value)
            return
        cut = model_id in self.cancelled
        self.rounds.close(model_id)
        if not cut and model_id not in self.rounds.tunings:  # its first round failed: nothing to refit
            self.fleet.failed_before_run(planned.job, done.error, done.detail)
        elif not cut:
            log.warning("model %s: round %d failed (%s); it keeps its earlier rounds", model_id, planned.level,
                        describe(self.fleet.limits.why.get(model_id) or done.error))  # fmt: skip
        if model_id not in self.fleet.finished:
            self.fleet.limits.why.pop(model_id, None)  # a round cut by model_timeout: its refit is limited anew

    def _finish(self) -> None:
        """Refit and log every model with a completed trial; a SKIPPED row for those the budget reached first."""
        fleet, reason = self.fleet, f"not trained: the time budget of {self.budget_s:g} s ended before its first trial"
        trained = {m for m, t in self.rounds.tunings.items() if t.best is not None}
        failed = {o.row.model_id for o in fleet.outcomes}
        if fleet.limits.stopped:  # the sweep's timeout passed: nothing more starts, resume trains the rest
            fleet.not_started += len(set(self.rounds.jobs) - failed)
            fleet.rows.write()
            return
        for model_id, job in self.rounds.jobs.items():
            if model_id in trained:
                fleet.submit(job, tuning=self.rounds.tunings[model_id])
            elif model_id not in failed:
                fleet.skip(job, reason)
        fleet.run_pending()


def _round_task(
    job: ModelJob, split, spec, board, trials: int, previous: Tuning | None, deadline: float, budget_end: float
) -> Tuning:
    """One round of a model's study in its Ray task (it tells the board it started, never waits on it).

    A first round's defaults trial may start until the budget's end: on a small budget Ray's
    workers can start after the tuning deadline, and a model fitted late beats none.
    """
    board.started.remote(job.model_id)
    metric = resolve_metric(spec.metric, split.task)
    return study(
        job, split, metric, trials, previous=previous, deadline=deadline, first_by=budget_end, fail_ids=spec.fail_ids
    )


def skipped_outcome(job: ModelJob, spec, task: str, reason: str) -> Outcome:
    """The outcome of a model a time budget did not reach: a SKIPPED row, no run."""
    row = failed_row(job, spec, task, reason, status="SKIPPED")
    now = time.time()
    return Outcome(row, 0.0, 0.0, now, now)
