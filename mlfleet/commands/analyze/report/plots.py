"""The analysis plots as PNG files, drawn with matplotlib's object API on the Agg canvas.

``Figure`` objects are used instead of pyplot: no global backend, no figure left open in a
long-lived process, and nothing needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlfleet.commands.analyze.report.summary import Summary, ranked
from mlfleet.metrics import Metric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
PLOTS = {
    "score_by_type": "Score by model type",
    "time_vs_score": "Training time against score",
    "score_by_strategy": "Score by feature strategy",
    "cpu_vs_gpu": "CPU against GPU",
}
#: every plot's title, those of :data:`PLOTS` and the ensemble's (drawn with it, when there is one)
TITLES = {**PLOTS, "ensemble": "The ensemble against its members"}


def plot_all(rows: pd.DataFrame, summary: Summary, metric: Metric, folder: Path) -> dict[str, Path]:
    """Draw every plot of :data:`PLOTS` into ``folder``; returns ``{name: png path}``."""
    good = ranked(rows, metric)
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {
        "score_by_type": score_by_type(good, metric),
        "time_vs_score": time_vs_score(good, metric),
        "score_by_strategy": score_by_strategy(summary.by_strategy, metric),
        "cpu_vs_gpu": cpu_vs_gpu(good, summary.by_device, metric),
    }
    return {name: _save(fig, folder / f"{name}.png") for name, fig in drawn.items()}


def _figure(**size) -> Figure:
    """A new figure; matplotlib loads here, not when a command that may never draw imports this module."""
    from matplotlib.figure import Figure

    return Figure(**size)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _empty(fig: Figure, ax, metric: Metric):
    ax.text(
        0.5, 0.5, f"no finished model with a value of {metric.name}", ha="center", va="center", transform=ax.transAxes
    )
    ax.set_axis_off()
    return fig


def _direction(metric: Metric) -> str:
    return f"{metric.name} ({'higher' if metric.greater_is_better else 'lower'} is better)"


def score_by_type(good: pd.DataFrame, metric: Metric) -> Figure:
    """Box plot of the test score per model type, best median validation score first."""
    fig = _figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    if good.empty:
        return _empty(fig, ax, metric)
    medians = good.groupby("model_type")["val_score"].median().sort_values(ascending=not metric.greater_is_better)
    data = [good.loc[good["model_type"] == name, metric.name].to_numpy() for name in medians.index]
    ax.boxplot(data, tick_labels=list(medians.index), showmeans=True)
    for i, values in enumerate(data, start=1):  # the points themselves: a box of two models hides them
        ax.scatter(
            np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, s=12, alpha=0.6, color="tab:blue"
        )
    ax.set_ylabel(_direction(metric))
    ax.set_title(f"{metric.name} by model type ({len(good)} models)")
    ax.tick_params(axis="x", labelrotation=25)
    return fig


def time_vs_score(good: pd.DataFrame, metric: Metric) -> Figure:
    """Training time (log axis) against score, one colour per model type."""
    fig = _figure(figsize=(8, 5))
    ax = fig.add_subplot()
    timed = good[good["time_s"] > 0]
    if timed.empty:
        return _empty(fig, ax, metric)
    colours = _colours(sorted(timed["model_type"].unique()))
    for name, part in timed.groupby("model_type"):
        ax.scatter(
            part["time_s"], part[metric.name], label=f"{name} ({len(part)})", color=colours[name], s=28, alpha=0.8
        )
    best = timed.iloc[0]
    ax.annotate(
        f"best #{best.model_id}",
        (best.time_s, best[metric.name]),
        textcoords="offset points",
        xytext=(6, 6),
        fontsize=8,
    )
    ax.set_xscale("log")
    ax.set_xlabel("training time, tuning + refit (s, log scale)")
    ax.set_ylabel(_direction(metric))
    ax.set_title(f"Training time against {metric.name}")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    return fig


def score_by_strategy(table: pd.DataFrame, metric: Metric) -> Figure:
    """Bar chart of the mean score per feature strategy, with the spread as error bars."""
    fig = _figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    table = table.dropna(subset=["mean_score"])
    if table.empty:
        return _empty(fig, ax, metric)
    ax.bar(
        table["feature_strategy"],
        table["mean_score"],
        yerr=table["std_score"].fillna(0),
        capsize=4,
        color="tab:green",
        alpha=0.8,
    )
    for x, (mean, n) in enumerate(zip(table["mean_score"], table["n_models"] - table["n_failed"], strict=True)):
        ax.annotate(f"n={int(n)}", (x, mean), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    _zoom(ax, table["mean_score"], table["std_score"].fillna(0))
    ax.set_ylabel(f"mean {_direction(metric)}")
    ax.set_title(f"{metric.name} by feature strategy (error bars: standard deviation)")
    return fig


def cpu_vs_gpu(good: pd.DataFrame, table: pd.DataFrame, metric: Metric) -> Figure:
    """Score per fleet and device (box plot) beside the mean training time per model (bars)."""
    fig = _figure(figsize=(10, 4.5))
    left, right = fig.subplots(1, 2)
    if good.empty:
        right.set_axis_off()
        return _empty(fig, left, metric)
    labels = [f"{e}\non {d}" for e, d in zip(table["entry_point"], table["device"], strict=True)]
    data = [
        good.loc[(good["entry_point"] == e) & (good["device"] == d), metric.name].to_numpy()
        for e, d in zip(table["entry_point"], table["device"], strict=True)
    ]
    keep = [i for i, values in enumerate(data) if len(values)]
    left.boxplot([data[i] for i in keep], tick_labels=[labels[i] for i in keep], showmeans=True)
    left.set_ylabel(_direction(metric))
    left.set_title(f"{metric.name} by fleet and device")
    right.bar([labels[i] for i in keep], table["mean_time_s"].iloc[keep], color="tab:orange", alpha=0.8)
    right.set_ylabel("mean training time per model (s)")
    right.set_title("time per model")
    return fig


def plot_ensemble(comparison: pd.DataFrame, metric: Metric, path: Path) -> Path:
    """Horizontal bars of test ``metric`` for each member of the ensemble, the best single model and the ensemble."""
    fig = _figure(figsize=(8, 0.45 * len(comparison) + 1.5))
    ax = fig.add_subplot()
    colours = {"member": "tab:gray", "best single": "tab:blue", "ensemble": "tab:red"}
    ax.barh(
        comparison["model"],
        comparison[metric.name],
        color=[colours.get(r, "tab:gray") for r in comparison["role"]],
        alpha=0.85,
    )
    for y, value in enumerate(comparison[metric.name]):
        if np.isnan(value):  # a model without probabilities has no roc_auc or log_loss
            ax.annotate(
                "n/a",
                (0, y),
                xycoords=("axes fraction", "data"),
                xytext=(3, -3),
                textcoords="offset points",
                fontsize=8,
            )
            continue
        ax.annotate(f"{value:.4f}", (value, y), textcoords="offset points", xytext=(3, -3), fontsize=8)
    _zoom(ax, comparison[metric.name], pd.Series(0.0, index=comparison.index), horizontal=True)
    ax.invert_yaxis()
    ax.set_xlabel(_direction(metric))
    ax.set_title("The ensemble against its members on the test split (chosen on validation)")
    return _save(fig, path)


def _zoom(ax, values: pd.Series, errors: pd.Series, horizontal: bool = False) -> None:
    """Limit the value axis to the data, so that differences of a few hundredths show."""
    valid = values.notna()
    if not valid.any():
        return
    low, high = float((values - errors)[valid].min()), float((values + errors)[valid].max())
    pad = max((high - low) * 0.25, 1e-3)
    (ax.set_xlim if horizontal else ax.set_ylim)(low - pad, high + pad)


def _colours(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}
