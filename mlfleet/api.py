"""The Python API: each entry point as a function, for notebooks and jobs.

    import mlfleet

    report = mlfleet.train_cpu(models="random_forest:4,svm:2", n_trials=5)
    print(report.sweep_id, report.exit_code)
    mlfleet.analyze(k=3)

Each function takes the command's config (:mod:`mlfleet.config`) or its parameters by name,
as text or as values (``models="svm:2"`` or ``models=(("svm", 2),)``), and returns the
command's report. Bad input raises :class:`~mlfleet.errors.MlfleetError` before anything is
written. The command's lines go to the ``mlfleet`` logger (see :func:`mlfleet.logs.setup`),
or to ``stream`` when one is given.
"""

from __future__ import annotations

from typing import Any, TextIO

from mlfleet.config import AnalysisConfig, BenchmarkConfig, EnsembleConfig, FleetConfig, GpuFleetConfig, from_values


def _config(config_type: type, config: Any, values: dict[str, Any]) -> Any:
    if config is not None and values:
        raise TypeError("give a config or parameters by name, not both")
    if config is not None:
        if not isinstance(config, config_type):
            raise TypeError(f"expected a {config_type.__name__}, got {type(config).__name__}")
        return config
    return from_values(config_type, values)


def train_cpu(config: FleetConfig | None = None, *, stream: TextIO | None = None, **params: Any):
    """Train the CPU fleet (``mlfleet train-cpu``); returns a :class:`~mlfleet.commands.sweep.SweepReport`."""
    from mlfleet.commands.sweep import run_sweep

    return run_sweep(_config(FleetConfig, config, params), stream=stream)


def train_gpu(config: GpuFleetConfig | None = None, *, stream: TextIO | None = None, **params: Any):
    """Train the MLP fleet (``mlfleet train-gpu``); returns a :class:`~mlfleet.commands.sweep.SweepReport`."""
    from mlfleet.commands.sweep import run_sweep

    return run_sweep(_config(GpuFleetConfig, config, params), stream=stream)


def benchmark(config: BenchmarkConfig | None = None, *, stream: TextIO | None = None, **params: Any):
    """Sequential against parallel training (``mlfleet benchmark``); returns a BenchmarkReport."""
    from mlfleet.commands.speedup import run_benchmark

    return run_benchmark(_config(BenchmarkConfig, config, params), stream=stream)


def ensemble(config: EnsembleConfig | None = None, *, stream: TextIO | None = None, **params: Any):
    """A partition ensemble against one model on all data (``mlfleet ensemble``); returns an EnsembleReport."""
    from ensembles import run_ensemble

    return run_ensemble(_config(EnsembleConfig, config, params), stream=stream)


def analyze(config: AnalysisConfig | None = None, *, stream: TextIO | None = None, **params: Any):
    """Read the sweeps back, vote, register the champion (``mlfleet analyze``); returns an AnalysisReport."""
    from mlfleet.commands.analyze import run_analysis

    return run_analysis(_config(AnalysisConfig, config, params), stream=stream)
