"""The ``analyze`` command: read the fleet back, summarise, select an ensemble, crown the champion.

:func:`run_analysis` is plan, then write: :mod:`~mlfleet.commands.analyze.plan` checks the
inputs and reads both stores (writing nothing); :mod:`~mlfleet.commands.analyze.steps` makes
the analysis run, the summary and plots (the pure functions of
:mod:`~mlfleet.commands.analyze.report`), the ensemble, the champion, the summary table and
the report files.
"""

from __future__ import annotations

import logging
from typing import TextIO

from mlfleet import logs
from mlfleet.commands.analyze import steps
from mlfleet.commands.analyze.plan import plan_analysis
from mlfleet.commands.analyze.types import AnalysisReport, Clock, Plan
from mlfleet.config import AnalysisConfig
from mlfleet.redaction import redact
from mlfleet.settings import process_setup, read

log = logging.getLogger(__name__)

__all__ = ["AnalysisConfig", "AnalysisReport", "Plan", "plan_analysis", "run_analysis"]


def run_analysis(config: AnalysisConfig, *, stream: TextIO | None = None) -> AnalysisReport:
    """Analyse the sweeps of ``config``; return the report.

    Raises MlfleetError on bad input, before anything is written.
    """
    with logs.console(stream):
        found = read()
        clock = Clock()
        plan = plan_analysis(config, found, clock)
        process_setup(hide_links=redact(plan.uri) != plan.uri)
        for note in plan.notes:
            log.info("note: %s", note)
        recorder = steps.open_run(plan, config, found)
        try:
            report, metrics = steps.analyse(recorder, plan, clock)
            with clock("logging"):
                recorder.close(metrics=metrics, artifacts=sorted(p for p in plan.output.iterdir() if p.is_file()),
                               failed=False, tags={"mlfleet.outcome": "analysed"})  # fmt: skip
        except BaseException as exc:
            recorder.abort("interrupted" if isinstance(exc, KeyboardInterrupt) else f"analysis error: {exc!r}")
            raise
        log.info(steps.summary_lines(report))
        return report
