"""The Python API: each entry point as a function, for notebooks and jobs.

    import mlfleet

    report = mlfleet.train_cpu(models="random_forest:4,svm:2", n_trials=5)
    print(report.sweep_id, report.exit_code)
    mlfleet.analyze(k=3)

Each function takes the command's config (:mod:`mlfleet.config`) or its parameters by name,
as text or as values (``models="svm:2"`` or ``models=(("svm", 2),)``), and returns the
command's report. Bad input raises :class:`~mlfleet.errors.MlfleetError` before anything is
written. The command's lines go to the ``mlfleet`` logger (see :func:`mlfleet.logs.setup`),
or to ``stream`` when one is given. The functions are made from the command table the
``mlfleet`` command is made from (:data:`mlfleet.commands.ENTRIES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from mlfleet.commands import ENTRIES, Entry
from mlfleet.config import from_values


def _config(config_type: type, config: Any, values: dict[str, Any]) -> Any:
    if config is not None and values:
        raise TypeError("give a config or parameters by name, not both")
    if config is not None:
        if not isinstance(config, config_type):
            raise TypeError(f"expected a {config_type.__name__}, got {type(config).__name__}")
        return config
    return from_values(config_type, values)


def _function(entry: Entry) -> Callable[..., Any]:
    def run(config: Any = None, *, stream: TextIO | None = None, **params: Any):
        return entry.function()(_config(entry.config, config, params), stream=stream)

    run.__name__ = run.__qualname__ = entry.name
    run.__doc__ = (
        f"{entry.summary} (``mlfleet {entry.name.replace('_', '-')}``)\n\n"
        f"Takes a :class:`~mlfleet.config.{entry.config.__name__}` or its parameters by name; returns the report."
    )
    return run


train_cpu = _function(ENTRIES[0])
train_gpu = _function(ENTRIES[1])
benchmark = _function(ENTRIES[2])
ensemble = _function(ENTRIES[3])
analyze = _function(ENTRIES[4])
