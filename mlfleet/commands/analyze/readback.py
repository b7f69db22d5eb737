"""Reading a fleet back: sweeps and model runs from MLflow, rows from the Delta results table,
and the per-type summary table written beside it.

Sweeps are found by tags (``mlfleet.role`` = ``sweep`` or ``model``, ``sweep_id``) with
``search_runs``, page by page; rows with delta-rs, or through the driver's SparkSession when
``results`` names a Spark table (:mod:`mlfleet.stores.spark`), whose summary table then goes into
the same catalog and schema.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from mlfleet.errors import MlfleetError, first_line
from mlfleet.stores import runs
from mlfleet.stores.rows import RESULTS, TableSpec
from mlfleet.stores.tables import ResultsTable

SUMMARY_TABLE = "model_training_summary"


@dataclass(frozen=True)
class SweepInfo:
    """One sweep as the two stores know it; ``parent_run_id`` is empty when only the table has it."""

    sweep_id: str
    entry_point: str
    started: float
    parent_run_id: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    task: str = ""
    primary_metric: str = ""
    dataset: str = ""
    dataset_digest: str = ""
    n_rows: int = 0

    @property
    def split(self) -> str:
        """The split's :func:`~mlfleet.data.split_key` from the parameters its parent run recorded ('' without)."""
        from mlfleet.data import split_key

        try:
            return split_key(
                test_size=float(self.params["test_size"]),
                val_size=float(self.params["val_size"]),
                seed=int(self.params["seed"]),
            )
        except (KeyError, ValueError):
            return ""


def unquote(value: str) -> str:
    """A parameter as the command saw it: ``mlflow run`` records an empty string as ``''``."""
    if value[:1] in ("'", '"'):
        try:
            parts = shlex.split(value)
        except ValueError:
            return value
        return parts[0] if len(parts) == 1 else value
    return value


def model_runs(client, experiment_id: str, sweep_ids: list[str]) -> pd.DataFrame:
    """One row per model run of the sweeps: run_id, sweep_id, model_id, run_status and every metric.

    A run without a ``model_id`` tag has model_id -1 (it still shows in the mismatch report).
    Runs of earlier attempts that a retry or a resume superseded (tag ``mlfleet.stale``) are
    left out: the model's result is the run that replaced them.
    """
    records = []
    for sweep_id in sweep_ids:
        for run in runs.sweep_model_runs(client, experiment_id, sweep_id):
            tags = run.data.tags
            if runs.STALE_TAG in tags:  # superseded by a retry or a resume (see mlfleet.commands.resume)
                continue
            records.append(
                {
                    "run_id": run.info.run_id,
                    "sweep_id": sweep_id,
                    "model_id": int(tags.get("model_id", -1)),
                    "run_status": run.info.status,
                    **run.data.metrics,
                }
            )
    frame = pd.DataFrame(records)
    if frame.empty:
        frame = pd.DataFrame(columns=["run_id", "sweep_id", "model_id", "run_status"])
    return frame


def read_rows(table: ResultsTable, experiment_id: str) -> pd.DataFrame:
    """The results rows of one experiment. Raises MlfleetError when ``table`` holds no results table."""
    if not table.exists():
        raise MlfleetError(
            f"{table.what} is {table.missing_text()}; "
            "pass results=LOCATION where train_cpu or train_gpu wrote their rows"
        )
    try:
        frame = table.read()
    except MlfleetError:
        raise
    except Exception as exc:  # a table of another program, or a damaged log
        raise MlfleetError(f"{table.what} cannot be read as a Delta table: {first_line(exc)}") from None
    frame = frame.assign(**{c: default for c, default in LATER_COLUMNS.items() if c not in frame.columns})
    missing = [c for c in RESULTS.schema().names if c not in frame.columns]
    if missing:
        raise MlfleetError(
            f"{table.what} is a Delta table without the columns {', '.join(missing)}; "
            "pass the results table of mlfleet's sweeps"
        )
    return frame[frame["experiment_id"] == experiment_id].reset_index(drop=True)


#: columns later versions added to the results rows (an older table reads them as their default)
LATER_COLUMNS = {"val_score": float("nan"), "classes_json": ""}


def with_validation(rows: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every finished model's ``val_score``, and ``val_from_run`` where it came from the run.

    Rows written before the column existed take their run's ``best_val_<primary metric>``;
    ``val_from_run`` flags them (the report lists them).
    """
    out = rows.copy()
    out["val_score"] = pd.to_numeric(out["val_score"], errors="coerce")
    out["val_from_run"] = False
    gaps = out["val_score"].isna() & (out["status"] == "FINISHED")
    if not gaps.any() or runs.empty:
        return out
    by_run = runs.set_index("run_id")
    for i in out.index[gaps]:
        run_id, name = out.at[i, "mlflow_run_id"], f"best_val_{out.at[i, 'primary_metric']}"
        if run_id in by_run.index and name in by_run.columns and pd.notna(by_run.at[run_id, name]):
            out.at[i, "val_score"] = float(by_run.at[run_id, name])
            out.at[i, "val_from_run"] = True
    return out


def known_sweeps(parents: list, rows: pd.DataFrame) -> dict[str, SweepInfo]:
    """Every sweep either store knows, by id: the parent run's tags and params where it has one,
    else what its rows say."""
    sweeps: dict[str, SweepInfo] = {}
    by_sweep = {sid: part for sid, part in rows.groupby("sweep_id")} if not rows.empty else {}
    for run in parents:
        tags = run.data.tags
        sid = tags.get("sweep_id", "")
        part = by_sweep.get(sid)
        sweeps[sid] = SweepInfo(
            sweep_id=sid,
            entry_point=tags.get("entry_point", ""),
            started=run.info.start_time / 1000,
            parent_run_id=run.info.run_id,
            params={k: unquote(v) for k, v in run.data.params.items()},
            task=tags.get("task", ""),
            primary_metric=tags.get("primary_metric", ""),
            dataset=tags.get("dataset", ""),
            dataset_digest=tags.get("dataset_digest", ""),
            n_rows=0 if part is None else len(part),
        )
    for sid, part in by_sweep.items():
        if sid in sweeps:
            continue
        first = part.iloc[0]
        sweeps[sid] = SweepInfo(
            sweep_id=sid,
            entry_point=str(first.entry_point),
            started=part["started_at"].min().timestamp(),
            task=str(first.task),
            primary_metric=str(first.primary_metric),
            dataset=str(first.dataset),
            dataset_digest=str(first.dataset_digest),
            n_rows=len(part),
        )
    return sweeps


@dataclass(frozen=True)
class SummaryRow:
    """One model type of one analysis: a row of the summary table (key ``(analysis_id, model_type)``)."""

    analysis_id: str
    analyzed_at: datetime
    experiment_id: str
    sweep_ids: str
    dataset: str
    dataset_digest: str
    metric: str
    model_type: str
    family: str
    n_models: int
    n_failed: int
    mean_score: float | None
    std_score: float | None
    best_score: float | None
    worst_score: float | None
    mean_time_s: float | None
    total_time_s: float | None
    time_share: float | None
    score_per_s: float | None


SUMMARY = TableSpec(SUMMARY_TABLE, SummaryRow, ("analysis_id", "model_type"), prefix="mlfleet-analysis")
