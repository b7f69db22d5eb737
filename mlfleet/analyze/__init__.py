"""The analysis of sweeps (the ``analyze`` entry point): the store side.

Reads runs from MLflow and rows from Delta, runs the pure summaries, plots and reports of
:mod:`mlfleet.analysis`, votes the top-k models and moves the champion alias in the registry.
"""

from mlfleet.analyze._run import DEFAULT_K, AnalysisConfig, parse_sweeps, run_analysis

__all__ = ["DEFAULT_K", "AnalysisConfig", "parse_sweeps", "run_analysis"]
