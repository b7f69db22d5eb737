"""The benchmark's pictures: wall time per mode, a timeline of workers, the metric along the ladder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_walls(walls: dict[str, float], ceiling: float, path: Path) -> Path:
    """Bars of each mode's wall time, with the time the ceiling speedup would give."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    modes = list(walls)
    ax.bar(modes, [walls[m] for m in modes], color=["#888888", "#1f77b4", "#ff7f0e"][: len(modes)])
    if "sequential" in walls:
        ax.axhline(
            walls["sequential"] / ceiling, color="k", ls="--", lw=1, label=f"sequential / ceiling ({ceiling:.2f}x)"
        )
        ax.legend(loc="upper right", fontsize=8)
    for i, m in enumerate(modes):
        ax.text(i, walls[m], f"{walls[m]:.1f} s", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("wall time (s)")
    ax.set_title("The same models, three ways")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_timeline(timelines: dict[str, list], path: Path) -> Path:
    """For each mode, which model ran when on which worker (one lane per worker process)."""
    fig, axes = plt.subplots(len(timelines), 1, figsize=(9, 1.6 + 1.2 * len(timelines)), sharex=False, squeeze=False)
    for ax, (mode, fitted) in zip(axes[:, 0], timelines.items(), strict=True):
        origin = min(f.start for f in fitted)
        lanes = {w: i for i, w in enumerate(sorted({f.worker for f in fitted}))}
        for f in fitted:
            ax.barh(
                lanes[f.worker],
                f.end - f.start,
                left=f.start - origin,
                height=0.7,
                color=plt.cm.viridis(f.index / max(1, len(fitted) - 1)),
            )
            ax.text(
                f.start - origin + (f.end - f.start) / 2,
                lanes[f.worker],
                str(f.index),
                ha="center",
                va="center",
                fontsize=7,
                color="w",
            )
        ax.set_yticks(range(len(lanes)), [f"worker {i + 1}" for i in range(len(lanes))], fontsize=8)
        ax.set_title(f"{mode}: model index on each worker", fontsize=9)
    axes[-1, 0].set_xlabel("seconds since the mode started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ladder(values: list, metrics: dict[str, list[float]], param: str, path: Path) -> Path:
    """Each test metric against the swept hyperparameter, as the labs drew RMSE and R² against trees."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, (name, ys) in zip(axes[0], metrics.items(), strict=True):
        ax.plot(values, ys, marker="o", ms=3)
        ax.set_xlabel(param)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
