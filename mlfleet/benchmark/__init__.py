"""Sequential against parallel training, measured honestly (the ``benchmark`` entry point).

The same models, one after another, as Ray tasks through the fleet's scheduler and with
joblib, beside the machine's own ceiling measured in the same run.
"""

from mlfleet.benchmark._run import DEFAULT_TABLE, BenchmarkReport, BenchmarkRow, run_benchmark
from mlfleet.benchmark._spec import MODES, PRESETS, BenchmarkConfig, apply_preset, expand_ladder

__all__ = [
    "DEFAULT_TABLE",
    "MODES",
    "PRESETS",
    "BenchmarkConfig",
    "BenchmarkReport",
    "BenchmarkRow",
    "apply_preset",
    "expand_ladder",
    "run_benchmark",
]
