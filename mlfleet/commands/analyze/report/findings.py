"""Plain-language findings, each computed from the rows and the summary (never canned text)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlfleet.commands.analyze.report.summary import Summary, ranked
from mlfleet.metrics import Metric

#: a strategy whose effect is within this share of the scores' spread is called neutral
NEUTRAL_SHARE = 0.1
#: |Spearman rho| below this: time and score hardly relate
WEAK_RHO = 0.2


def findings(rows: pd.DataFrame, summary: Summary, metric: Metric) -> list[str]:
    """A few sentences a team asks for after a sweep: the best model, which type wins, which
    strategy helps, what the time buys, CPU against GPU, and what failed.

    Returns an empty list when no model finished.
    """
    good = ranked(rows, metric)
    if good.empty:
        return [f"No model finished with a value of {metric.name}: nothing to compare ({summary.counts()})."]
    out = [
        _best_model(good, metric),
        _winning_type(summary, metric),
        _strategy(summary, good, metric),
        _time(summary, good, metric),
    ]
    out += [_devices(summary, metric), _failures(rows, summary)]
    return [line for line in out if line]


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"


def _best_model(good: pd.DataFrame, metric: Metric) -> str:
    best = good.iloc[0]
    return (
        f"The best model is #{best.model_id} ({best.model_type}, feature strategy {best.feature_strategy}, "
        f"sweep {best.sweep_id}), chosen on validation {metric.name} {_fmt(best['val_score'])}; "
        f"on test it scores {_fmt(best[metric.name])}, trained in {best.time_s:.1f} s; "
        f"the top {min(10, len(good))} hold {good.head(10)['model_type'].nunique()} model type(s)."
    )


def _winning_type(summary: Summary, metric: Metric) -> str:
    table = summary.by_type.dropna(subset=["mean_score"])
    if len(table) < 2:
        return (
            f"Only one model type finished ({table.iloc[0].model_type}), so there is no type to compare it with."
            if len(table)
            else ""
        )
    first, second = table.iloc[0], table.iloc[1]
    gap = abs(first.mean_score - second.mean_score)
    return (
        f"{first.model_type} has the best mean {metric.name}, {_fmt(first.mean_score)} on test "
        f"(ranked by its mean on validation, {_fmt(first.mean_val_score)}) "
        f"over {int(first.n_models - first.n_failed)} model(s), "
        f"{_fmt(gap)} ahead of {second.model_type} ({_fmt(second.mean_score)}); "
        f"the spread within {first.model_type} is {_fmt(0.0 if np.isnan(first.std_score) else first.std_score)}."
    )


def _strategy(summary: Summary, good: pd.DataFrame, metric: Metric) -> str:
    table = summary.by_strategy.dropna(subset=["effect"]).sort_values("effect", ascending=False)
    if len(table) < 2:
        return ""
    spread = float(good["val_score"].std()) if len(good) > 1 else 0.0
    best, worst = table.iloc[0], table.iloc[-1]
    if spread == 0 or max(abs(best.effect), abs(worst.effect)) < NEUTRAL_SHARE * spread:
        return (
            f"No feature strategy stands out: against the mean of their own model type, every strategy is within "
            f"{_fmt(max(abs(best.effect), abs(worst.effect)))} {metric.name} of it."
        )
    return (
        f"Against the mean of their own model type on validation, feature strategy {best.feature_strategy} does "
        f"best ({best.effect:+.4f} {metric.name}, {_fmt(best.test_effect)} on test, {int(best.n_models)} model(s)) "
        f"and {worst.feature_strategy} worst ({worst.effect:+.4f}, {_fmt(worst.test_effect)} on test, "
        f"{int(worst.n_models)} model(s)); positive is better."
    )


def _time(summary: Summary, good: pd.DataFrame, metric: Metric) -> str:
    table = summary.by_type.dropna(subset=["mean_score", "mean_time_s"])
    parts = []
    if len(table) >= 2:
        best = table.iloc[0]
        fastest = table.sort_values("mean_time_s").iloc[0]
        if best.model_type == fastest.model_type:
            parts.append(f"The best type, {best.model_type}, is also the fastest ({best.mean_time_s:.2f} s per model).")
        else:
            ratio = best.mean_time_s / fastest.mean_time_s if fastest.mean_time_s > 0 else float("inf")
            parts.append(
                f"The fastest type, {fastest.model_type}, takes {fastest.mean_time_s:.2f} s per model "
                f"for a mean {metric.name} of "
                f"{_fmt(fastest.mean_score)}; the best, {best.model_type}, "
                f"takes {best.mean_time_s:.2f} s ({ratio:,.0f}x) "
                f"for {_fmt(best.mean_score)}."
            )
    timed = good.dropna(subset=["time_s"])
    if len(timed) >= 3 and timed["time_s"].nunique() > 1 and timed[metric.name].nunique() > 1:
        rho = timed["time_s"].rank().corr(timed[metric.name].rank())
        rho = rho if metric.greater_is_better else -rho
        if abs(rho) < WEAK_RHO:
            trend = "hardly relate"
        else:
            trend = (
                "go together: longer training, better scores"
                if rho > 0
                else "pull apart: longer training, worse scores"
            )
        parts.append(
            f"Across {len(timed)} models, training time and {metric.name} {trend} "
            f"(Spearman rank correlation of time with score quality {rho:+.2f})."
        )
    return " ".join(parts)


def _devices(summary: Summary, metric: Metric) -> str:
    table = summary.by_device.dropna(subset=["mean_score"])
    if table.empty:
        return ""
    parts = [
        f"{row.entry_point} on {row.device}: mean {metric.name} {_fmt(row.mean_score)} "
        f"in {row.mean_time_s:.2f} s per model ({int(row.n_models)} models)"
        for row in table.itertuples()
    ]
    note = ""
    if (table["device"] == "cpu").all() and table["entry_point"].str.contains("gpu").any():
        note = (
            " The GPU fleet trained on CPU here (no GPU was available), so this compares model families, not devices."
        )
    return "CPU against GPU: " + "; ".join(parts) + "." + note


def _failures(rows: pd.DataFrame, summary: Summary) -> str:
    if summary.n_failed == 0:
        return f"All {summary.n_models} models finished."
    failed = summary.failures
    families = ", ".join(f"{name} ({count})" for name, count in failed["family"].value_counts().items())
    common = failed["error"].value_counts()
    return (
        f"{summary.n_failed} of {summary.n_models} models failed: {families}; "
        f"the most common error ({common.iloc[0]}x): {common.index[0][:160]}"
    )
