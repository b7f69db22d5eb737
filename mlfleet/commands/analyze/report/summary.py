"""The summary tables of a fleet: top models, by model type, CPU against GPU, by feature
strategy, efficiency and failures, all from the results rows (one per model).

A model's training time is ``tuning_s + train_s``: the Optuna study plus the refit, what it
cost to get that model. Scores are the rows' values of the analysed metric.

Choosing uses validation, reporting uses test: models rank by ``val_score`` (the metric they
were tuned on, on the validation split, at tuning time), and the test score of each is shown
beside it; groups rank by their mean validation score. A test score never orders anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlfleet.metrics import Metric
from mlfleet.stores.rows import SKIPPED

TOP = 10


@dataclass(frozen=True)
class Summary:
    """Every summary table of one analysis, each a DataFrame ordered best first."""

    def counts(self) -> str:
        """``6 models (1 failed, 2 skipped by the time budget)``."""
        skipped = f", {self.n_skipped} skipped by the time budget" if self.n_skipped else ""
        return f"{self.n_models} models ({self.n_failed} failed{skipped})"

    metric: str
    greater_is_better: bool
    n_models: int
    n_failed: int  # FAILED (or never started): a time budget's SKIPPED models are not failures
    n_skipped: int
    top: pd.DataFrame
    by_type: pd.DataFrame
    by_device: pd.DataFrame
    by_strategy: pd.DataFrame
    efficiency: pd.DataFrame
    failures: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables under the titles a report shows them with, in reading order."""
        return {
            f"Top {len(self.top)} models": self.top,
            "By model type": self.by_type,
            "CPU against GPU": self.by_device,
            "By feature strategy": self.by_strategy,
            "Efficiency": self.efficiency,
            "Failed models": self.failures,
        }


def with_time(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``time_s`` (tuning + refit seconds; NaN for a model that never finished)."""
    out = rows.copy()
    out["time_s"] = out["tuning_s"].astype(float) + out["train_s"].astype(float)
    return out


#: the column every ranking orders by
RANK_BY = "val_score"


def ranked(rows: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The finished rows that have a value of ``metric``, best validation score first, with ``rank`` and ``time_s``.

    Rows without a validation score (none recorded, none on the run) rank last; ties keep a
    stable order by sweep and model id, so the same rows always rank the same.
    """
    ok = with_time(rows[(rows["status"] == "FINISHED") & rows[metric.name].notna()])
    ok[RANK_BY] = pd.to_numeric(ok[RANK_BY], errors="coerce") if RANK_BY in ok else np.nan
    ok = ok.sort_values(["sweep_id", "model_id"], kind="stable")
    ok = ok.sort_values(RANK_BY, ascending=not metric.greater_is_better, kind="stable", na_position="last")
    ok = ok.reset_index(drop=True)
    ok.insert(0, "rank", np.arange(1, len(ok) + 1))
    return ok


def summarize(rows: pd.DataFrame, metric: Metric, top: int = TOP) -> Summary:
    """All summary tables of ``rows`` (results rows, failed ones included) on ``metric``."""
    good = ranked(rows, metric)
    timed = with_time(rows)
    failed = timed[~timed["status"].isin(["FINISHED", SKIPPED])]
    return Summary(
        metric=metric.name,
        greater_is_better=metric.greater_is_better,
        n_models=len(rows),
        n_failed=len(failed),
        n_skipped=int((rows["status"] == SKIPPED).sum()),
        top=good.head(top)[
            [
                "rank",
                "sweep_id",
                "model_id",
                "model_type",
                "family",
                "feature_strategy",
                "device",
                RANK_BY,
                metric.name,
                "time_s",
                "mlflow_run_id",
            ]
        ].reset_index(drop=True),
        by_type=by_type(rows, metric),
        by_device=_grouped(timed, good, ["entry_point", "device"], metric),
        by_strategy=by_strategy(rows, metric),
        efficiency=efficiency(rows, metric),
        failures=failed[["sweep_id", "model_id", "model_type", "family", "feature_strategy", "error"]]
        .sort_values(["sweep_id", "model_id"])
        .reset_index(drop=True),
    )


def by_type(rows: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Per model type: models, failures, mean, spread (std), best and worst score, mean time."""
    good = ranked(rows, metric)
    out = _grouped(with_time(rows), good, ["model_type"], metric)
    families = rows.groupby("model_type")["family"].agg(lambda s: ",".join(sorted(set(s))))
    out.insert(1, "family", out["model_type"].map(families))
    return out


def by_strategy(rows: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Per feature strategy: mean and spread, and ``effect``: the mean gap to each model's own type.

    Strategies are dealt round-robin across families, so a raw mean mixes the strategy with
    the families it happened to meet; the effect compares each model only with its own type.
    ``effect`` is measured on validation scores (what a choice of strategy would rest on),
    ``test_effect`` beside it on test. Their sign follows the metric: positive is always better.
    """
    good = ranked(rows, metric)
    out = _grouped(with_time(rows), good, ["feature_strategy"], metric)
    if good.empty:
        out["effect"] = pd.Series(dtype=float)
        return out
    sign = 1.0 if metric.greater_is_better else -1.0
    for column, name in ((RANK_BY, "effect"), (metric.name, "test_effect")):
        gap = sign * (good[column] - good.groupby("model_type")[column].transform("mean"))
        out[name] = out["feature_strategy"].map(gap.groupby(good["feature_strategy"]).mean())
    return out


def efficiency(rows: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Per model type: total time and its share, mean time, mean validation and test score, ``score_per_s``.

    ``score_per_s`` is the mean validation score per second of mean training time; for a
    metric where lower is better it is ``1 / score`` per second, so that higher is always
    more efficient. Ordered most efficient first (the test mean is shown, never ordered by).
    """
    good = ranked(rows, metric)
    total = good["time_s"].sum()
    groups = good.groupby("model_type")
    out = pd.DataFrame(
        {
            "n_models": groups.size(),
            "total_time_s": groups["time_s"].sum(),
            "time_share": groups["time_s"].sum() / total if total > 0 else np.nan,
            "mean_time_s": groups["time_s"].mean(),
            "mean_val_score": groups[RANK_BY].mean(),
            "mean_score": groups[metric.name].mean(),
        }
    )
    val = out["mean_val_score"]
    quality = val if metric.greater_is_better else 1.0 / val.replace(0, np.nan)
    out["score_per_s"] = quality / out["mean_time_s"].replace(0, np.nan)
    return out.sort_values("score_per_s", ascending=False).reset_index(names="model_type")


def type_table(summary: Summary) -> pd.DataFrame:
    """The per-type summary in one table: :attr:`Summary.by_type` with the time share and
    ``score_per_s`` of :attr:`Summary.efficiency` (what the summary Delta table holds)."""
    extra = summary.efficiency[["model_type", "time_share", "score_per_s"]]
    return summary.by_type.merge(extra, on="model_type", how="left")


def _grouped(timed: pd.DataFrame, good: pd.DataFrame, keys: list[str], metric: Metric) -> pd.DataFrame:
    """Counts over all rows and score figures over the finished ones, best mean validation score first.

    ``best_score`` and ``worst_score`` are the test scores of the group's best and worst
    models on validation (``good`` is ranked by it): the extremes of test would be a choice
    made on test.
    """
    counts = timed.groupby(keys).agg(
        n_models=("model_id", "size"), n_failed=("status", lambda s: int((~s.isin(["FINISHED", SKIPPED])).sum()))
    )
    scores = good.groupby(keys)[metric.name]
    best, worst = scores.first(), scores.last()  # ranked best first on validation
    figures = pd.DataFrame(
        {
            "mean_val_score": good.groupby(keys)[RANK_BY].mean(),
            "mean_score": scores.mean(),
            "std_score": scores.std(),
            "best_score": best,
            "worst_score": worst,
            "mean_time_s": good.groupby(keys)["time_s"].mean(),
            "total_time_s": good.groupby(keys)["time_s"].sum(),
        }
    )
    out = counts.join(figures, how="left")
    out = out.sort_values("mean_val_score", ascending=not metric.greater_is_better, na_position="last", kind="stable")
    return out.reset_index()
