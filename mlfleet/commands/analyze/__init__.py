"""The ``analyze`` command: read the fleet back, summarise, vote, crown the champion.

:func:`run_analysis` is plan, then write: :mod:`~mlfleet.commands.analyze.plan` checks the
inputs and reads both stores (writing nothing); :mod:`~mlfleet.commands.analyze.steps` makes
the analysis run, the summary and plots (the pure functions of
:mod:`~mlfleet.commands.analyze.report`), the top-k vote, the champion, the summary table and
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

log = logging.getLogger(__name__)

__all__ = ["AnalysisConfig", "AnalysisReport", "Plan", "plan_analysis", "run_analysis"]


def run_analysis(config: AnalysisConfig, *, stream: TextIO | None = None) -> AnalysisReport:
    """Analyse the sweeps of ``config``; return the report.

    Raises MlfleetError on bad input, before anything is written.
    """
    from mlflow import MlflowClient

    with logs.console(stream):
        clock = Clock()
        plan = plan_analysis(config, clock)
        for note in plan.notes:
            log.info("note: %s", note)
        client = MlflowClient(tracking_uri=plan.uri)
        run_id, created_here = steps.open_run(client, plan, config)
        try:
            report = steps.analyse(client, plan, run_id, clock)
        except BaseException as exc:
            if created_here:
                client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        if created_here:
            client.set_terminated(run_id, "FINISHED")
        log.info(steps.summary_lines(report))
        return report
