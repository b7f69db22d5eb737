"""The shared types of an analysis: its plan (what it read and where it writes), the report, the clock.

In a module of their own, so that planning, the writing steps and the report's document
import them without importing one another.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlfleet.commands.analyze import report
from mlfleet.commands.analyze.readback import SweepInfo
from mlfleet.metrics import Metric
from mlfleet.redaction import redact
from mlfleet.stores import registry
from mlfleet.stores.tables import ResultsTable

REPORT_FILES = ("report.html", "summary.md", "models.csv", "mismatches.csv", "analysis.json")


@dataclass(frozen=True)
class Plan:
    """An analysis checked and ready: what it reads (already read) and where it writes."""

    analysis_id: str
    uri: str
    experiment_id: str
    experiment_name: str
    table: ResultsTable
    summary: ResultsTable
    sweeps: tuple[SweepInfo, ...]
    rows: pd.DataFrame
    runs: pd.DataFrame
    metric: Metric
    k: int
    registered_model: str
    output: Path
    notes: tuple[str, ...] = ()

    @property
    def sweep_ids(self) -> tuple[str, ...]:
        return tuple(s.sweep_id for s in self.sweeps)

    @property
    def results(self) -> str:
        """The results table, as reports and tags show it."""
        return redact(self.table.uri)

    @property
    def summary_table(self) -> str:
        return redact(self.summary.uri)


class Clock:
    """Seconds spent per phase, summed over repeated phases."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class AnalysisReport:
    """What an analysis found and wrote; ``timings`` are seconds per phase."""

    plan: Plan
    run_id: str
    files: tuple[Path, ...]
    summary: report.Summary
    check: report.StoreCheck
    findings: tuple[str, ...]
    ensemble: report.EnsembleResult | None
    ensemble_note: str
    decision: registry.Decision | None
    champion_note: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0: the analysis ran to the end (mismatches and failed models are findings, not errors)."""
        return 0
