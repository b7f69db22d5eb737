"""Partition ensembles: N data shards, N models, one vote (the ``ensemble`` entry point).

The training split is cut into shards (random, stratified by class, or one per value of a
column), one model of a zoo family is fitted per shard as a Ray task, and scikit-learn's
voting estimators combine them. The same family fitted once on all the training rows is the
yardstick: test scores, training wall time and a one-line verdict.
"""

from ensembles._compare import comparison_figures, plot_comparison, verdict
from ensembles._config import DEFAULT_ENSEMBLE_RESULTS, DEFAULT_FAMILY, DEFAULT_PARTITIONS, WEIGHTS, EnsembleConfig
from ensembles._fit import Fitted, Scores, fit_rows, score_model, shard_split
from ensembles._partition import (
    MIN_SHARD_ROWS,
    Shard,
    check_partitions,
    class_counts,
    column_shards,
    make_shards,
    random_shards,
    stratified_shards,
)
from ensembles._run import EnsembleReport, check_family, run_ensemble
from ensembles._table import EnsembleRow, append_rows, ensure_table, read_rows
from ensembles._table import schema as row_schema
from ensembles._vote import build_vote, member_weights, voting_kind

__all__ = [
    "DEFAULT_ENSEMBLE_RESULTS",
    "DEFAULT_FAMILY",
    "DEFAULT_PARTITIONS",
    "MIN_SHARD_ROWS",
    "WEIGHTS",
    "EnsembleConfig",
    "EnsembleReport",
    "EnsembleRow",
    "Fitted",
    "Scores",
    "Shard",
    "append_rows",
    "build_vote",
    "check_family",
    "check_partitions",
    "class_counts",
    "column_shards",
    "comparison_figures",
    "ensure_table",
    "fit_rows",
    "make_shards",
    "member_weights",
    "plot_comparison",
    "random_shards",
    "read_rows",
    "row_schema",
    "run_ensemble",
    "score_model",
    "shard_split",
    "stratified_shards",
    "verdict",
    "voting_kind",
]
