"""One skeleton for every command that trains on Ray: what is the same in a sweep, an ensemble and a benchmark.

:func:`run_command` is the template, as scikit-learn's ``BaseSearchCV.fit`` is one: the
console, the settings read once, the command's plan (every check, nothing written), the
checked tracking store, Ray, the multi-node guard, the command's checks with Ray up (what Ray
tasks read and decide, still nothing written), the store made ready, the parent run, the
command's body, the parent closed or aborted, Ray left as it was found, the summary lines.
A command gives only what is its own (:class:`Command`): its plan, how its parent run opens,
its body and its summary.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlfleet import logs
from mlfleet.errors import describe
from mlfleet.execution import cluster as ray_cluster
from mlfleet.execution import guard
from mlfleet.redaction import redact
from mlfleet.settings import Settings, process_setup, read
from mlfleet.stores import store
from mlfleet.stores.recorder import SweepRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CommandReport:
    """What every command's report says of where it went: the experiment, its parent run, its table, its metric."""

    experiment_id: str
    parent_run_id: str
    results: str
    metric: str


@dataclass(frozen=True)
class Context:
    """What the skeleton hands a command's body: its settings, the tracking store, Ray and the recorder."""

    settings: Settings
    uri: str
    cluster: ray_cluster.Cluster
    recorder: SweepRecorder
    stream: TextIO | None = None  # the console (the progress line's)


@dataclass(frozen=True)
class Closing:
    """What a body leaves for the parent run, and the report (``unclosed`` builds it when the store refused).

    ``files`` maps a file name to what writes it (given its path): the run's artifacts.
    """

    report: Any
    metrics: dict[str, float]
    files: dict[str, Callable[[Path], Any]] = field(default_factory=dict)
    failed: bool = False
    tags: dict[str, str] | None = None
    tolerate: bool = False  # a store that refuses the close is the report's news, not an error

    def unclosed(self, why: str) -> Any:
        from dataclasses import replace

        return replace(self.report, unclosed=why)


class Command:
    """What a command gives the skeleton (see the module's docstring): a subclass overrides the hooks.

    ``workers_log``: its Ray tasks log runs themselves (then the tracking store must be shared).
    """

    workers_log = True

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def address(self) -> str:
        return self.config.address

    @property
    def experiment(self) -> str:
        return self.config.experiment

    def plan(self, settings: Settings) -> Any:
        """Check everything the user can get wrong and read what the command needs; write nothing."""
        raise NotImplementedError

    def check(self, plan: Any, cluster: ray_cluster.Cluster) -> Any:
        """What can only be checked or read with Ray up (its GPUs; rows read in a Ray task), before anything is
        written; returns the plan, with what it learnt (the plan itself by default)."""
        return plan

    def worker_tables(self, plan: Any) -> tuple:
        """The tables Ray tasks write themselves (the guard asks they be shared): none, the driver writes rows."""
        return ()

    def open(self, plan: Any, settings: Settings, uri: str, cluster: ray_cluster.Cluster) -> tuple[Any, SweepRecorder]:
        """The parent run (and what the plan learned with Ray up); nothing before this is written."""
        raise NotImplementedError

    def body(self, plan: Any, context: Context) -> Closing:
        raise NotImplementedError

    def summary(self, report: Any) -> str:
        """The lines the terminal shows at the end."""
        raise NotImplementedError


def run_command(command: Command, *, stream: TextIO | None = None) -> Any:
    """Run ``command`` through the skeleton; returns its report.

    Raises MlfleetError on bad input before anything is written. Should the body fail or be
    interrupted, the runs it started and the parent end FAILED (KILLED) and the error goes on.
    """
    with logs.console(stream) as out:
        settings = read()
        plan = command.plan(settings)
        uri = store.checked_store(command.experiment, settings)
        process_setup(hide_links=redact(uri) != uri)
        cluster = ray_cluster.connect(command.address)
        try:
            guard.check_shared_stores(
                cluster,
                settings,
                tracking_uri=uri if command.workers_log else "",
                tables=command.worker_tables(plan),
            )
            plan = command.check(plan, cluster)
            store.prepare(uri, settings)
            plan, recorder = command.open(plan, settings, uri, cluster)
            try:
                closing = command.body(plan, Context(settings, uri, cluster, recorder, out))
            except BaseException as exc:
                recorder.abort("interrupted" if isinstance(exc, KeyboardInterrupt) else f"driver error: {exc!r}")
                raise
            report = _close(recorder, closing)
        finally:
            ray_cluster.disconnect(cluster)
        log.info(command.summary(report))
        return report


def _close(recorder: SweepRecorder, closing: Closing) -> Any:
    """The parent run closed with the body's figures and files.

    A file that cannot be written is the command's error: the parent is aborted (FAILED), not
    left RUNNING. A store that refuses the close is the report's news when ``tolerate``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        try:
            for name, write in closing.files.items():
                paths.append(Path(tmp) / name)
                write(paths[-1])
        except BaseException as exc:
            recorder.abort(f"driver error: {exc!r}")
            raise
        try:
            recorder.close(metrics=closing.metrics, artifacts=paths, failed=closing.failed, tags=closing.tags)
        except Exception as exc:
            if not closing.tolerate:
                recorder.abort(f"driver error: {exc!r}")  # best effort: the store may be what failed
                raise
            return closing.unclosed(describe(exc))  # the rows are in their table: resume later
    return closing.report


def open_parent(
    table,
    context: tuple[str, Settings],
    config: Any,
    *,
    dataset: Any,
    metric: Any,
    split: Any,
    params: dict[str, str],
    tags: dict[str, str] | None = None,
    role: str = "sweep",
    entity: Any = None,
) -> SweepRecorder:
    """The parent run of a command that trains on a dataset: its parameters, the data's tags (task, metric, name,
    digest, split, columns) and its column plan (``columns.json``), under a new id of the command's."""
    from mlfleet.ids import new_id

    uri, settings = context
    return SweepRecorder.open(
        table,
        uri=uri,
        settings=settings,
        experiment=config.experiment,
        sweep_id=new_id(config.entry_point),
        entry_point=config.entry_point,
        params=params,
        tags={
            "task": dataset.task,
            "primary_metric": metric.name,
            "dataset": dataset.name,
            "dataset_digest": dataset.digest,
            "split": split.key,
            **split.plan.tags(),
            **(tags or {}),
        },
        dataset=entity,
        documents=split.plan.documents(),
        role=role,
    )
