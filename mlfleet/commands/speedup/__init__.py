"""The ``benchmark`` command's library: sequential against parallel training on the same work.

The same models, one after another, as Ray tasks through the fleet's scheduler and with
joblib, beside the machine's own ceiling measured in the same run. (The timing scripts of
the project itself are the top-level ``benchmarks/`` folder.)
"""

from mlfleet.commands.speedup.run import BENCHMARKS, BenchmarkReport, BenchmarkRow, run_benchmark
from mlfleet.commands.speedup.spec import PRESETS, apply_preset, expand_ladder

__all__ = ["BENCHMARKS", "PRESETS", "BenchmarkReport", "BenchmarkRow", "apply_preset", "expand_ladder", "run_benchmark"]
