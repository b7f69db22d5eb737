"""A live progress line: done, failed and running models, elapsed, ETA, the best score so far."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from mlfleet.metrics import Metric


class Progress:
    """Redraws one line on a terminal; in a log (not a TTY), prints a line per finished model."""

    def __init__(
        self,
        total: int,
        metric: Metric,
        *,
        stream: TextIO | None = None,
        label: str = "models",
        min_interval: float = 0.5,
    ):
        self.total, self.metric, self.label = total, metric, label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.start = time.monotonic()
        self.done = self.failed = self.running = 0
        self.best: tuple[float, str] | None = None
        self._last_draw = 0.0
        self._last_done = -1

    def update(self, *, done: int, failed: int, running: int, score: float | None = None, who: str = "") -> None:
        """Record the counts (``done`` includes ``failed``) and a new score, if any; redraw when due."""
        self.done, self.failed, self.running = done, failed, running
        if score is not None and score == score and (self.best is None or self.metric.better(score, self.best[0])):
            self.best = (score, who)
        now = time.monotonic()
        if self.tty and now - self._last_draw >= self.min_interval:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()
            self._last_draw = now
        elif not self.tty and done != self._last_done:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
        self._last_done = done

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        width = len(str(self.total))
        parts = [
            f"[{self.done:>{width}}/{self.total} {self.label}]",
            f"failed {self.failed}",
            f"running {self.running}",
            f"{_clock(elapsed)} elapsed",
        ]
        if 0 < self.done < self.total:
            parts.append(f"ETA {_clock(elapsed / self.done * (self.total - self.done))}")
        if self.best is not None:
            parts.append(f"best val {self.metric.name} {self.best[0]:.4f} ({self.best[1]})")
        return " | ".join(parts)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60:02d}:{seconds % 60:02d}"
    )
