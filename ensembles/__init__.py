"""Partition ensembles: N data shards, N models, one vote (the ``ensemble`` entry point).

The training split is cut into shards (random, stratified by class, or one per value of a
column), one model of a zoo family is fitted per shard as a Ray task, and scikit-learn's
voting estimators combine them. The same family fitted once on all the training rows is the
yardstick: test scores, training wall time and a one-line verdict.
"""

from ensembles._compare import comparison_figures, plot_comparison, verdict
from ensembles._ensemble import EnsembleReport, check_family, run_ensemble
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
from ensembles._rows import ENSEMBLES, EnsembleRow
from ensembles._vote import build_vote, member_weights, voting_kind
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
    "build_vote",
    "check_family",
    "check_partitions",
    "class_counts",
    "column_shards",
    "comparison_figures",
    "fit_rows",
    "make_shards",
    "member_weights",
    "plot_comparison",
    "random_shards",
    "run_ensemble",
    "score_model",
    "shard_split",
    "stratified_shards",
    "verdict",
    "voting_kind",
]
