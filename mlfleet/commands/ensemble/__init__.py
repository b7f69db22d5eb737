"""The ``ensemble`` command: N data shards, N models, one vote, against one model on all the data.

The training split is cut into shards (random, stratified by class, or one per value of a
column), one model of a zoo family is fitted per shard as a Ray task, and scikit-learn's
voting estimators combine them. The same family fitted once on all the training rows is the
yardstick: test scores, training wall time and a one-line verdict. A Parquet or Delta table too
big for the driver is read where it trains: each member's task reads its own shard
(:mod:`mlfleet.commands.ensemble.sharded`).
"""

from mlfleet.commands.ensemble.compare import comparison_figures, member_weights, plot_comparison, verdict
from mlfleet.commands.ensemble.members import Fitted, Scores, score_model, shard_split
from mlfleet.commands.ensemble.partition import (
    MIN_SHARD_ROWS,
    Shard,
    check_partitions,
    class_counts,
    column_shards,
    make_shards,
    random_shards,
    stratified_shards,
)
from mlfleet.commands.ensemble.rows import ENSEMBLES, EnsembleRow
from mlfleet.commands.ensemble.run import EnsembleReport, check_family, run_ensemble
from mlfleet.config import EnsembleConfig

__all__ = [
    "ENSEMBLES",
    "MIN_SHARD_ROWS",
    "EnsembleConfig",
    "EnsembleReport",
    "EnsembleRow",
    "Fitted",
    "Scores",
    "Shard",
    "check_family",
    "check_partitions",
    "class_counts",
    "column_shards",
    "comparison_figures",
    "make_shards",
    "member_weights",
    "plot_comparison",
    "random_shards",
    "run_ensemble",
    "score_model",
    "shard_split",
    "stratified_shards",
    "verdict",
]
