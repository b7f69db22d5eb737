"""The members' weights, and the comparison of the ensemble with the single all-data model: figures, a
verdict, a plot. (The vote itself is :func:`mlfleet.training.voting.build_vote`.)"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlfleet.config import WEIGHTS
from mlfleet.errors import MlfleetError
from mlfleet.metrics import Metric


def comparison_figures(
    metric: Metric,
    *,
    member_scores: Sequence[float | None],
    n_members: int,
    ensemble: Mapping[str, float] | None,
    single: Mapping[str, float] | None,
    ensemble_wall_s: float,
    single_wall_s: float,
    members_fit_s: float,
    members_cpu_s: float,
) -> dict[str, float]:
    """The parent run's metrics: every test metric of the ensemble and the single model, the
    members' primary scores (mean, min, max; None for a failed member), the members that voted,
    the walls of both training waves, their ratio, and how parallel the members' wave was (fit
    seconds and CPU seconds per second of wall).

    A side that failed (``None``) leaves its metrics out; NaNs are left for the caller to drop.
    """
    figures: dict[str, float] = {}
    for prefix, scores in (("ensemble", ensemble), ("single", single)):
        for name, value in (scores or {}).items():
            figures[f"{prefix}_{name}"] = value
    finite = [s for s in member_scores if s is not None and math.isfinite(s)]
    if finite:
        figures[f"member_{metric.name}_mean"] = sum(finite) / len(finite)
        figures[f"member_{metric.name}_min"] = min(finite)
        figures[f"member_{metric.name}_max"] = max(finite)
    if ensemble and single:
        figures[f"ensemble_minus_single_{metric.name}"] = ensemble[metric.name] - single[metric.name]
    figures.update(
        n_members=float(n_members),
        ensemble_train_wall_s=ensemble_wall_s,
        single_train_wall_s=single_wall_s,
        train_speedup=single_wall_s / ensemble_wall_s if ensemble_wall_s > 0 else math.nan,
        members_fit_s=members_fit_s,
        members_cpu_s=members_cpu_s,
        members_parallelism=members_fit_s / ensemble_wall_s if ensemble_wall_s > 0 else math.nan,
        members_cpu_per_wall=members_cpu_s / ensemble_wall_s if ensemble_wall_s > 0 else math.nan,
    )
    return figures


def verdict(
    metric: Metric,
    ensemble_score: float | None,
    single_score: float | None,
    *,
    n_members: int,
    ensemble_wall_s: float,
    single_wall_s: float,
) -> str:
    """One line: which model scores better on the test split and by how much, and which trained faster.

    For example ``ensemble of 8 wins on test f1: 0.9210 (ensemble) vs 0.9105 (single model), a
    difference of +0.0105 (1.2%); training took 3.1 s for 8 members in parallel vs 9.4 s for the
    single model (the ensemble 3.0x faster)``.
    """
    if (
        ensemble_score is None
        or single_score is None
        or not (math.isfinite(ensemble_score) and math.isfinite(single_score))
    ):
        missing = "the ensemble" if ensemble_score is None or not math.isfinite(ensemble_score) else "the single model"
        return f"no verdict: {missing} has no {metric.name} score"
    gap = ensemble_score - single_score
    relative = abs(gap) / abs(single_score) if single_score else math.inf
    if abs(gap) < 1e-12:
        head = f"a tie: {metric.name} {ensemble_score:.4f} for the ensemble of {n_members} and for the single model"
    else:
        ensemble_wins = metric.better(ensemble_score, single_score)
        winner = f"ensemble of {n_members} wins" if ensemble_wins else "single model wins"
        head = (
            f"{winner} on test {metric.name}: {ensemble_score:.4f} (ensemble) vs {single_score:.4f} (single model), "
            f"a difference of {gap:+.4f} ({relative:.1%})"
        )
    return (
        f"{head}; training took {ensemble_wall_s:.1f} s for {n_members} members in parallel "
        f"vs {single_wall_s:.1f} s for the single model ({_pace(ensemble_wall_s, single_wall_s)})"
    )


def _pace(ensemble_wall_s: float, single_wall_s: float) -> str:
    if ensemble_wall_s <= 0 or single_wall_s <= 0:
        return "no speed comparison"
    ratio = single_wall_s / ensemble_wall_s
    return f"the ensemble {ratio:.1f}x faster" if ratio >= 1 else f"the ensemble {1 / ratio:.1f}x slower"


def plot_comparison(
    path: Path,
    metric: Metric,
    *,
    member_scores: Sequence[float | None],
    ensemble_score: float | None,
    single_score: float | None,
    title: str,
) -> Path:
    """A bar chart of every member's test score, the ensemble's and the single model's; saved as PNG at ``path``.

    Uses matplotlib's Agg canvas directly, so it draws without a display and leaves pyplot's
    global state alone. Returns ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [f"m{i}" for i in range(len(member_scores))] + ["ensemble", "single"]
    values = [_plottable(s) for s in member_scores] + [_plottable(ensemble_score), _plottable(single_score)]
    colours = ["#9ecae1"] * len(member_scores) + ["#e6550d", "#31a354"]
    fig = Figure(figsize=(max(6.0, 0.5 * len(labels) + 2), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bars = ax.bar(labels, values, color=colours)
    for bar, value in zip(bars, values, strict=True):
        if not math.isnan(value):
            ax.annotate(
                f"{value:.3f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8
            )
    finite = [v for v in values if not math.isnan(v)]
    if finite:
        low, high = min(finite), max(finite)
        pad = (high - low) * 0.3 or abs(high) * 0.05 or 0.05
        ax.set_ylim(low - pad if low - pad > 0 or low < 0 else 0, high + pad)
    ax.set_ylabel(f"test {metric.name} ({'higher' if metric.greater_is_better else 'lower'} is better)")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=9)
    ax.tick_params(axis="x", labelrotation=45 if len(labels) > 12 else 0)
    fig.savefig(path, dpi=110)
    return path


def _plottable(value: float | None) -> float:
    return math.nan if value is None or not math.isfinite(value) else float(value)


def member_weights(mode: str, val_scores: Sequence[float], metric: Metric) -> tuple[float, ...]:
    """Each member's weight in the vote, summing to 1.

    ``equal`` gives 1/n each. ``validation`` weighs by the member's score on the validation
    split: the score itself for metrics where higher is better (a negative r2 counts as 0),
    its inverse for errors (rmse, mae, log_loss). When no member earns a positive weight the
    weights fall back to equal. Raises MlfleetError for another mode or no members.
    """
    if mode not in WEIGHTS:
        raise MlfleetError(f"weights must be one of {', '.join(WEIGHTS)}, but got weights={mode!r}")
    n = len(val_scores)
    if n == 0:
        raise MlfleetError("the vote needs at least one member, but none was trained")
    if mode == "equal":
        return (1.0 / n,) * n
    raw = [_merit(s, metric) for s in val_scores]
    total = sum(raw)
    if total <= 0:
        return (1.0 / n,) * n
    return tuple(w / total for w in raw)


def _merit(score: float, metric: Metric) -> float:
    if score is None or not math.isfinite(score):
        return 0.0
    if metric.greater_is_better:
        return max(score, 0.0)
    return 1.0 / max(score, 1e-12)
