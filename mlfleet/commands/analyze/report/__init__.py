"""The analysis of a fleet: summary tables, findings, plots, the top-k vote and the report.

Plain functions over DataFrames, fitted estimators and arrays; nothing here touches MLflow
or Delta (:mod:`mlfleet.analyze` reads the stores and calls these).
"""

from mlfleet.analysis._findings import findings
from mlfleet.analysis._join import RUN_COLUMNS, StoreCheck, join_stores
from mlfleet.analysis._plots import PLOTS, plot_all, plot_vote
from mlfleet.analysis._report import Document, Section, markdown_table, render_html, render_markdown
from mlfleet.analysis._summary import Summary, by_strategy, by_type, efficiency, ranked, summarize, type_table, with_time
from mlfleet.analysis._vote import Member, VoteResult, vote

__all__ = [
    "PLOTS",
    "RUN_COLUMNS",
    "Document",
    "Member",
    "Section",
    "StoreCheck",
    "Summary",
    "VoteResult",
    "by_strategy",
    "by_type",
    "efficiency",
    "findings",
    "join_stores",
    "markdown_table",
    "plot_all",
    "plot_vote",
    "ranked",
    "render_html",
    "render_markdown",
    "summarize",
    "type_table",
    "vote",
    "with_time",
]
