"""The recorder: a model's life in both stores, in one place.

Whatever trains a model (a fleet's Ray task, an ensemble's member, a benchmark's mode), its
record goes through a :class:`Recorder`: the nested MLflow run started (or an earlier
attempt's run reused), the run finished with its parameters, metrics, search history and
logged model, or failed (run FAILED with the one-line ``error`` tag and the full traceback
as ``error.txt``), and its row written to the results table, once per key and generation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlfleet.errors import describe
from mlfleet.stores import tracking
from mlfleet.stores.tables import ResultsTable
from mlfleet.stores.tracking import TrackingContext


@dataclass(frozen=True)
class Recorder:
    """Records models of one parent run into its tracking store and, where given, its table.

    ``table`` is None when this process does not write the rows (a Spark table, which only the
    driver can write, or an ensemble, whose driver writes all its rows in one commit). A
    recorder travels to Ray workers: everything in it is plain data.
    """

    tracking: TrackingContext
    table: ResultsTable | None = None

    def warm(self) -> None:
        """Import the model-logging code and open the store, once per process (outside any model's timing)."""
        tracking.clear_run_env()
        tracking.warm_process(self.tracking.tracking_uri)

    def start(self, run_name: str, tags: dict[str, str], *, previous: str = "", attempt: int = 1) -> str:
        """The model's nested run, RUNNING (``previous``: an earlier attempt's run, reused when it logged nothing)."""
        return tracking.start_child(self.tracking, run_name=run_name, tags=tags, previous=previous, attempt=attempt)

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
    ) -> str:
        """Log everything of a trained model (named ``name`` in the Models view) and end its run FINISHED.

        Returns the logged model's URI.
        """
        return tracking.finish_child(
            self.tracking,
            run_id,
            params=params,
            metrics=metrics,
            history=dict(history or {}),
            tags=dict(tags or {}),
            model=model,
            input_example=input_example,
            name=name,
        )

    def fail(
        self,
        run_id: str,
        error: str,
        detail: str = "",
        *,
        row: Callable[[str], Any] | None = None,
        version: int = 1,
    ) -> tuple[str, Any]:
        """End the run FAILED (``error`` tag, ``detail`` as ``error.txt``) and write the model's FAILED row.

        ``row(error)`` builds the row from the final error text: when the store refuses to
        mark the run, the row says that too. Returns ``(error, row or None)``.
        """
        if run_id:
            try:
                tracking.fail_child(self.tracking, run_id, error, detail)
            except Exception as exc:  # the store went away: the row still says what happened
                error = f"{error}; the run could not be marked FAILED either ({describe(exc)})"
        built = row(error) if row is not None else None
        if built is not None:
            self.write([built], version=version)
        return error, built

    def write(self, rows: Sequence, *, version: int = 1, app_id: str = "") -> bool:
        """Write ``rows`` (one commit) as generation ``version`` of their transaction; False when skipped."""
        if self.table is None or not rows:
            return False
        return self.table.append(rows, app_id, version=version)

    def nested(
        self, name: str, *, tags: dict[str, str], metrics: dict[str, float], history: dict[str, list[float]]
    ) -> str:
        """A finished nested run of figures only (a benchmark's mode); returns its id."""
        return tracking.log_nested(self.tracking, name=name, tags=tags, metrics=metrics, history=history)

    def run(self, run_id: str):
        return tracking.get_run(self.tracking, run_id)
