"""mlfleet: train a fleet of models in parallel on Ray and account for every one.

Each model is tuned with Optuna, logged as a nested MLflow run and mirrored as a row of a
Delta Lake table. The entry points in ``entrypoints/`` are thin commands over this library.
"""

from mlfleet.errors import MlfleetError

__version__ = "0.1.0"

__all__ = ["MlfleetError", "__version__"]
