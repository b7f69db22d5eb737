"""mlfleet: train a fleet of models in parallel on Ray and account for every one.

Each model is tuned with Optuna, logged as a nested MLflow run and mirrored as a row of a
Delta Lake table. The ``mlfleet`` command (:mod:`mlfleet.cli`) and the functions below
(:mod:`mlfleet.api`) run the same commands:

    import mlfleet
    report = mlfleet.train_cpu(models="random_forest:4", n_trials=5)
"""

from mlfleet.errors import MlfleetError

__version__ = "0.2.0"

_API = ("train_cpu", "train_gpu", "benchmark", "ensemble", "analyze")

__all__ = ["MlfleetError", "__version__", *_API]


def __getattr__(name: str):
    # the API imports its command only when called; ``import mlfleet`` stays light
    if name in _API:
        from mlfleet import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlfleet' has no attribute {name!r}")
