"""The recorder: the only code that writes a command's runs and rows, in two levels.

* :class:`ModelRecorder`: one model's run, wherever the model trains (a Ray worker or the
  driver): started (or an earlier attempt's run reused), finished with its parameters,
  metrics, search history, validation predictions and logged pipeline, failed (FAILED, the
  one-line ``error`` tag and the traceback as ``error.txt``), or marked stale. Plain data: it
  travels to the workers.
* :class:`SweepRecorder`: the driver's. The command's parent run (opened or reopened,
  closed, aborted: it ends the runs it started), the model runs it starts itself, a model's
  FAILED row, and every row of every table, in batches (:meth:`SweepRecorder.rows`).

A fleet, a resume, an ensemble, a benchmark and an analysis write through these and nothing
else, the way Ray Tune's trial loop leaves every write to its logger callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlfleet.errors import describe
from mlfleet.settings import Settings, process_setup
from mlfleet.stores import runs, store
from mlfleet.stores.runs import ParentRun, TrackingContext
from mlfleet.stores.tables import ResultsTable


@dataclass(frozen=True)
class ModelRecorder:
    """Records the models of one parent run into its tracking store (see the module's docstring)."""

    tracking: TrackingContext

    def warm(self) -> None:
        """Ready this process for logging, once (outside any model's timing): its environment, imports, the store."""
        process_setup()
        store.warm(self.tracking.tracking_uri)

    def start(self, run_name: str, tags: dict[str, str], *, previous: str = "", attempt: int = 1, role="model") -> str:
        """The model's nested run, RUNNING (``previous``: an earlier attempt's run, reused when it logged nothing)."""
        return runs.start(self.tracking, run_name=run_name, tags=tags, previous=previous, attempt=attempt, role=role)

    def finish(
        self,
        run_id: str,
        *,
        params: dict[str, Any],
        metrics: dict[str, float],
        history: dict[str, Sequence[float]] | None = None,
        tags: dict[str, str] | None = None,
        model: Any = None,
        input_example: Any = None,
        name: str = "model",
        validation_predictions: Any = None,
        trusted: list[str] | None = None,
    ) -> str:
        """Log everything of a trained model (named ``name`` in the Models view), end its run FINISHED; its URI."""
        return runs.finish(
            self.tracking,
            run_id,
            params=params,
            metrics=metrics,
            history=dict(history or {}),
            tags=dict(tags or {}),
            model=model,
            input_example=input_example,
            name=name,
            validation_predictions=validation_predictions,
            trusted=trusted,
        )

    def fail(self, run_id: str, error: str, detail: str = "") -> str:
        """End the run FAILED; returns the error, saying so when the store refused that too."""
        if not run_id:
            return error
        try:
            runs.fail(self.tracking, run_id, error, detail)
        except Exception as exc:  # the store went away: the row still says what happened
            return f"{error}; the run could not be marked FAILED either ({describe(exc)})"
        return error

    def stale(self, run_id: str, why: str, *, end: bool = True) -> None:
        """Mark an earlier attempt's run as superseded (and end it FAILED)."""
        runs.mark_stale(self.tracking, run_id, why, end=end)

    def figures(self, run_id: str, *, metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None):
        """Add metrics and tags to a run, finished or not."""
        runs.log_figures(self.tracking, run_id, metrics=metrics, tags=tags)

    def nested(
        self, name: str, *, tags: dict[str, str], metrics: dict[str, float], history: dict[str, list[float]]
    ) -> str:
        """A finished nested run of figures only (a benchmark's mode); returns its id."""
        return runs.log_nested(self.tracking, name=name, tags=tags, metrics=metrics, history=history)

    def evaluate(self, run_id: str, model_uri: str, data: Any, *, targets: str, model_type: str) -> dict:
        """``mlflow.models.evaluate`` of a logged model into a run; its metrics."""
        return runs.evaluate(self.tracking, run_id, model_uri, data, targets=targets, model_type=model_type)

    def run(self, run_id: str):
        return runs.get(self.tracking, run_id)

    def runs(self) -> dict[int, list]:
        """The sweep's model runs by model id."""
        return runs.model_runs(self.tracking)


@dataclass
class SweepRecorder:
    """The driver's recorder: the parent run, the runs it started, and the rows (see the module's docstring).

    ``table`` is where the command's model rows go (None: it writes none).
    """

    parent: ParentRun
    table: ResultsTable | None = None
    started: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, table: ResultsTable | None, **parent: Any) -> SweepRecorder:
        """A new parent run (or ``mlflow run``'s own): see :func:`mlfleet.stores.runs.open_parent`."""
        return cls(runs.open_parent(**parent), table)

    @classmethod
    def reopen(cls, table: ResultsTable | None, uri: str, settings: Settings, parent_run, **kw: Any) -> SweepRecorder:
        """The parent run of a sweep being resumed, RUNNING again."""
        return cls(runs.reopen_parent(uri, settings, parent_run, **kw), table)

    @property
    def tracking(self) -> TrackingContext:
        return self.parent.context

    @property
    def model(self) -> ModelRecorder:
        """The model recorder of this parent run (what the workers get)."""
        return ModelRecorder(self.tracking)

    def start(self, run_name: str, tags: dict[str, str], *, role: str = "model") -> str:
        """A model run the driver starts itself (an ensemble's member): ended FAILED should the command abort."""
        run_id = self.model.start(run_name, tags, role=role)
        self.started.append(run_id)
        return run_id

    def fail(
        self, run_id: str, error: str, detail: str = "", *, row: Callable[[str], Any] | None = None, version: int = 1
    ) -> tuple[str, Any]:
        """End a model's run FAILED and write its FAILED row; returns ``(error, row or None)``.

        ``row(error)`` builds the row from the final error text: when the store refuses to mark
        the run, the row says that too.
        """
        error = self.model.fail(run_id, error, detail)
        built = row(error) if row is not None else None
        if built is not None:
            self.rows([built], [version])
        return error, built

    def rows(self, rows: Sequence, versions: Sequence[int] | None = None, *, table: ResultsTable | None = None) -> int:
        """Write ``rows`` to ``table`` (default: the command's), each its own transaction at its version, in one
        commit where the table can; returns how many were written (a row written before is skipped)."""
        target = table if table is not None else self.table
        if target is None or not rows:
            return 0
        return target.commit_batch(list(rows), list(versions) if versions is not None else [1] * len(rows))

    def rows_or_errors(self, rows: Sequence, versions: Sequence[int]) -> list[Exception | None]:
        """Write what can be written of ``rows`` (each its own transaction, in one commit where the table can);
        the error of each row that could not be written, None for the others."""
        if self.table is None or not rows:
            return [None] * len(rows)
        return self.table.commit_each(list(rows), list(versions))

    def rows_of_one_transaction(self, rows: Sequence, app_id: str, *, table: ResultsTable | None = None) -> bool:
        """Write ``rows`` in one commit as the single transaction ``app_id`` (an analysis's summary, a benchmark's
        modes): a repeated write of it leaves one copy. Returns whether this call wrote them."""
        target = table if table is not None else self.table
        return bool(target is not None and rows and target.append(list(rows), app_id))

    def stale(self, run_id: str, why: str, *, end: bool = True) -> None:
        self.model.stale(run_id, why, end=end)

    def close(
        self,
        *,
        metrics: dict[str, float],
        artifacts: Sequence[Path] = (),
        failed: bool,
        tags: dict[str, str] | None = None,
    ) -> None:
        """The command's figures, tags and files on the parent run; the parent ended (when this process made it)."""
        runs.close_parent(self.parent, metrics=metrics, artifacts=list(artifacts), failed=failed, tags=tags)

    def abort(self, reason: str) -> None:
        """The command failed or was interrupted: the runs it started end FAILED (KILLED), then the parent.

        Best effort: the store itself may be what failed, and one more error would hide the first.
        """
        interrupted = reason == "interrupted"
        try:
            runs.close_open(self.tracking, self.started, reason, "KILLED" if interrupted else "FAILED")
            runs.abort_parent(self.parent, reason)
        except Exception:  # noqa: S110
            pass
