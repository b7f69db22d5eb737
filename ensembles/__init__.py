"""Partition ensembles (the ``ensemble`` entry point): N data shards, N models, one vote.

The design card's face of :mod:`mlfleet.commands.ensemble`, where the library lives::

    from ensembles import EnsembleConfig, run_ensemble

    report = run_ensemble(EnsembleConfig(partitions=8, model="xgboost"))
"""

from mlfleet.commands.ensemble import *  # noqa: F403
from mlfleet.commands.ensemble import __all__  # noqa: F401
