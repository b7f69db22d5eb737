"""The stores: the MLflow tracking store, runs, the model format and the registry; results tables (Delta
through delta-rs, or Spark); and the recorder, the one writer of a command's runs and rows.

Only this package, :mod:`mlfleet.execution` and the commands touch MLflow, Delta or Spark.
"""

from mlfleet.stores.recorder import ModelRecorder, SweepRecorder
from mlfleet.stores.rows import RESULTS, ResultRow, TableSpec
from mlfleet.stores.tables import ResultsTable, open_results

__all__ = ["RESULTS", "ModelRecorder", "ResultRow", "ResultsTable", "SweepRecorder", "TableSpec", "open_results"]
