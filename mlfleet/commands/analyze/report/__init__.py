"""The analysis of a fleet: summary tables, findings, plots, the ensemble and the report.

Plain functions over DataFrames, fitted estimators and arrays; nothing here touches MLflow
or Delta (:mod:`mlfleet.commands.analyze` reads the stores and calls these).
"""

from mlfleet.commands.analyze.report.ensemble import Candidate, EnsembleResult, select
from mlfleet.commands.analyze.report.findings import findings
from mlfleet.commands.analyze.report.join import RUN_COLUMNS, StoreCheck, join_stores
from mlfleet.commands.analyze.report.plots import PLOTS, TITLES, plot_all, plot_ensemble
from mlfleet.commands.analyze.report.render import Document, Section, markdown_table, render_html, render_markdown
from mlfleet.commands.analyze.report.summary import (
    Summary,
    by_strategy,
    by_type,
    efficiency,
    ranked,
    summarize,
    type_table,
    with_time,
)

__all__ = [
    "PLOTS",
    "TITLES",
    "RUN_COLUMNS",
    "Candidate",
    "Document",
    "EnsembleResult",
    "Section",
    "StoreCheck",
    "Summary",
    "by_strategy",
    "by_type",
    "efficiency",
    "findings",
    "join_stores",
    "markdown_table",
    "plot_all",
    "plot_ensemble",
    "ranked",
    "render_html",
    "render_markdown",
    "summarize",
    "select",
    "type_table",
    "with_time",
]
