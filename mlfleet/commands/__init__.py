"""The commands: one orchestration per entry point, and the one table the CLI and the Python API are made from.

Each :class:`Entry` names its config (:mod:`mlfleet.config`, the single source of its
parameters) and the library function that runs it, imported when the command runs (so
``mlfleet --help`` stays fast).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlfleet.config import AnalysisConfig, BenchmarkConfig, EnsembleConfig, FleetConfig, GpuFleetConfig


@dataclass(frozen=True)
class Entry:
    """An entry point: its config, the library function that runs it, what it does and an example."""

    name: str
    config: type
    run: str  # "module:function" inside mlfleet, imported when the command runs
    summary: str
    example: str

    def function(self) -> Callable[..., Any]:
        """The library function of this entry point (``run(config, *, stream=None) -> report``)."""
        module, _, name = self.run.partition(":")
        return getattr(importlib.import_module(module), name)


ENTRIES = (
    Entry(
        "train_cpu",
        FleetConfig,
        "mlfleet.commands.sweep:run_sweep",
        "Train the CPU fleet: one Optuna-tuned model per job, each a nested MLflow run and a Delta row.",
        "mlfleet train-cpu --models random_forest:4,svm:2 --n_trials 5",
    ),
    Entry(
        "train_gpu",
        GpuFleetConfig,
        "mlfleet.commands.sweep:run_sweep",
        "Train the PyTorch MLP fleet, a GPU (or a fraction) per model, CPU when there is none.",
        "mlfleet train-gpu --models mlp:4 --gpus_per_model 0.25",
    ),
    Entry(
        "benchmark",
        BenchmarkConfig,
        "mlfleet.commands.speedup:run_benchmark",
        "Measure sequential against parallel training on identical work, with the machine's ceiling.",
        "mlfleet benchmark --preset diabetes_gb20",
    ),
    Entry(
        "ensemble",
        EnsembleConfig,
        "mlfleet.commands.ensemble:run_ensemble",
        "Shard the training data, one model per shard, a vote; compared with one model on all data.",
        "mlfleet ensemble --partitions 8 --model xgboost --weights validation",
    ),
    Entry(
        "analyze",
        AnalysisConfig,
        "mlfleet.commands.analyze:run_analysis",
        "Read the sweeps back: summary, plots, report, the ensemble, and the champion registered.",
        "mlfleet analyze --k 3 --registered_model fleet-champion",
    ),
)


def entry(name: str) -> Entry:
    """The entry point ``name`` (``train_cpu`` or ``train-cpu``)."""
    return next(e for e in ENTRIES if e.name == name.replace("-", "_"))
