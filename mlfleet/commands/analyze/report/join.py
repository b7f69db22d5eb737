"""The two stores side by side: results rows joined with MLflow runs on the run id, and what
does not match (rows without a run, runs without a row, scores or statuses that differ)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

#: scores are copied from one float to another, so anything beyond rounding is a real difference
SCORE_TOLERANCE = 1e-9
MISMATCH_COLUMNS = ["kind", "sweep_id", "model_id", "run_id", "detail"]
#: the columns a runs frame carries (one row per MLflow run of a model)
RUN_COLUMNS = ["run_id", "sweep_id", "model_id", "run_status", "run_score"]


@dataclass(frozen=True)
class StoreCheck:
    """The rows that have their run (``joined``, with ``run_status`` and ``run_score``) and
    every mismatch (``mismatches``: kind, sweep_id, model_id, run_id, detail)."""

    joined: pd.DataFrame
    mismatches: pd.DataFrame

    def count(self, kind: str) -> int:
        return int((self.mismatches["kind"] == kind).sum())

    def sentence(self) -> str:
        """One line: the stores agree, or how many of each mismatch there are."""
        if self.mismatches.empty:
            return f"MLflow and Delta agree: {len(self.joined)} models, each a run and a row with the same score."
        counts = self.mismatches["kind"].value_counts()
        return (
            "MLflow and Delta disagree: "
            + ", ".join(f"{n} {kind}" for kind, n in counts.items())
            + " (see the mismatches table)."
        )


def join_stores(rows: pd.DataFrame, runs: pd.DataFrame, metric: str) -> StoreCheck:
    """Join ``rows`` (results rows) and ``runs`` (:data:`RUN_COLUMNS`) on the run id.

    ``runs.run_score`` is the run's value of ``metric`` (NaN when it has none); a row and a
    run disagree when exactly one of them has a score or the two differ beyond rounding, or
    when one finished and the other did not.
    """
    # a left join keeps the rows' dtypes (an outer join would turn their integer columns to float)
    left = rows.merge(
        runs[["run_id", "run_status", "run_score"]], left_on="mlflow_run_id", right_on="run_id", how="left"
    )
    found = left["run_id"].notna()
    never = left["mlflow_run_id"].fillna("").astype(str) == ""  # a model skipped or failed before its run opened
    problems: list[dict] = []
    for r in left[~found & ~never].itertuples():
        problems.append(
            _problem(
                "row without a run",
                r.sweep_id,
                r.model_id,
                r.mlflow_run_id,
                "the results table has this row, but MLflow has no active run with its id (deleted, or another store)",
            )
        )
    for r in runs[~runs["run_id"].isin(rows["mlflow_run_id"])].itertuples():
        problems.append(
            _problem(
                "run without a row",
                r.sweep_id,
                r.model_id,
                r.run_id,
                "MLflow has this model's run, but the results table has no row for it",
            )
        )
    both = left[found]
    for r in both.itertuples():
        row_score, run_score = getattr(r, metric), r.run_score
        if not _same(row_score, run_score):
            problems.append(
                _problem(
                    "score differs", r.sweep_id, r.model_id, r.run_id, f"{metric}: row {row_score}, run {run_score}"
                )
            )
        if (r.status == "FINISHED") != (r.run_status == "FINISHED"):
            problems.append(
                _problem("status differs", r.sweep_id, r.model_id, r.run_id, f"row {r.status}, run {r.run_status}")
            )
    joined = both.drop(columns=["run_id"]).reset_index(drop=True)
    mismatches = pd.DataFrame(problems, columns=MISMATCH_COLUMNS)
    return StoreCheck(
        joined=joined,
        mismatches=mismatches.sort_values(["kind", "sweep_id", "model_id"], kind="stable").reset_index(drop=True),
    )


def _problem(kind: str, sweep_id, model_id, run_id, detail: str) -> dict:
    model_id = None if model_id is None or (isinstance(model_id, float) and math.isnan(model_id)) else int(model_id)
    return {"kind": kind, "sweep_id": sweep_id, "model_id": model_id, "run_id": run_id, "detail": detail}


def _same(a, b) -> bool:
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    return math.isclose(float(a), float(b), rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE)
