"""The stores: MLflow tracking and the registry, results tables (Delta through delta-rs, or Spark), the recorder.

Only this package, :mod:`mlfleet.execution` and the commands touch MLflow, Delta or Spark.
"""

from mlfleet.stores.recorder import Recorder
from mlfleet.stores.rows import RESULTS, ResultRow, TableSpec
from mlfleet.stores.tables import ResultsTable, open_results

__all__ = ["RESULTS", "Recorder", "ResultRow", "ResultsTable", "TableSpec", "open_results"]
