"""What a benchmark trains: a family, a ladder of hyperparameters, presets of the seed labs."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlfleet.config import BenchmarkConfig
from mlfleet.errors import MlfleetError
from mlfleet.zoo import cpu_families, family


@dataclass(frozen=True)
class Preset:
    """A seed lab, reproduced: the model family, its ladder and fixed parameters, the data."""

    model: str
    n_models: int
    ladder: str
    params: str
    data: str
    target: str = ""
    task: str = "auto"
    note: str = ""


PRESETS: dict[str, Preset] = {
    "california_rf30": Preset(
        "random_forest",
        30,
        "n_estimators=50:340",
        "max_depth=20,min_samples_split=5",
        "california_housing",
        task="regression",
        note="offline, pass data=path/to/california-housing.csv target=median_house_value",
    ),
    "wine_rf10": Preset(
        "random_forest",
        10,
        "n_estimators=50:230",
        "",
        "",
        target="quality>=6",
        task="classification",
        note="pass data=path/to/winequality-red.csv (good wine: quality >= 6)",
    ),
    "diabetes_gb20": Preset(
        "gradient_boosting",
        20,
        "n_estimators=50:240,learning_rate=0.05:0.145,max_depth=2:4",
        "",
        "diabetes",
        task="regression",
    ),
}


def apply_preset(config: BenchmarkConfig) -> BenchmarkConfig:
    """``config`` with its preset's model, ladder, parameters and data filled in.

    Data given explicitly wins over the preset's (California housing offline needs a path).
    Raises MlfleetError for an unknown preset or a preset whose data must be given.
    """
    if not config.preset:
        return config
    preset = PRESETS.get(config.preset)
    if preset is None:
        raise MlfleetError(f"unknown preset {config.preset!r}; known presets: {', '.join(PRESETS)}")
    source = config.data.source if config.data.source not in ("", "synthetic") else preset.data
    if not source:
        raise MlfleetError(f"preset {config.preset} needs its data: {preset.note}")
    data = replace(
        config.data, source=source, target=config.data.target or preset.target, task=preset.task, test_size=0.2, seed=42
    )
    return replace(
        config, model=preset.model, n_models=preset.n_models, ladder=preset.ladder, params=preset.params, data=data
    )


@dataclass(frozen=True)
class ModelSpec:
    """One model of the benchmark: its index, the family's parameters, its seed."""

    index: int
    params: dict[str, Any]
    seed: int
    cost: float


def expand_ladder(config: BenchmarkConfig, task: str) -> tuple[ModelSpec, ...]:
    """The ``n_models`` specs: each ladder parameter runs evenly from its low to its high end.

    ``ladder`` is ``name=low:high[,name=low:high...]`` (whole numbers stay whole); ``params``
    is ``name=value,...`` fixed for every model. Raises MlfleetError for an unknown family,
    ``n_models`` below 1, bad syntax, or a parameter the family's estimator does not have.
    """
    if config.model not in cpu_families():
        raise MlfleetError(f"unknown model family {config.model!r}; known: {', '.join(cpu_families())}")
    if config.n_models < 1:
        raise MlfleetError(f"n_models must be at least 1, but got n_models={config.n_models}")
    estimator = family(config.model).build(task, {}, 0, 1)
    accepted = set(estimator.get_params())
    ladder = _parse(config.ladder, "ladder", ranged=True)
    fixed = _parse(config.params, "params", ranged=False)
    for name in [*ladder, *fixed]:
        if name not in accepted:
            raise MlfleetError(
                f"ladder or params name {name!r} is not a parameter of {type(estimator).__name__}; "
                f"its parameters: {', '.join(sorted(accepted))}"
            )
    steps = {name: _steps(low, high, config.n_models) for name, (low, high) in ladder.items()}
    specs = []
    for i in range(config.n_models):
        params = {**fixed, **{name: values[i] for name, values in steps.items()}}
        specs.append(ModelSpec(i, params, config.data.seed + i, _cost(params)))
    return tuple(specs)


def _parse(text: str, what: str, *, ranged: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        match = re.fullmatch(r"(\w+)=(.+)", part)
        if not match:
            raise MlfleetError(
                f"{what} entries are name={'low:high' if ranged else 'value'}, but got {part!r} in {what}={text!r}"
            )
        name, value = match.groups()
        if ranged:
            low, sep, high = value.partition(":")
            try:
                out[name] = (_number(low), _number(high if sep else low))
            except ValueError:
                raise MlfleetError(f"ladder ends must be numbers, but got {part!r} in ladder={text!r}") from None
        else:
            out[name] = _value(value)
    return out


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _value(text: str) -> Any:
    try:
        return _number(text)
    except ValueError:
        return {"None": None, "True": True, "False": False}.get(text, text)


def _steps(low, high, n: int) -> list:
    values = np.linspace(low, high, n)
    if isinstance(low, int) and isinstance(high, int):
        return [int(round(v)) for v in values]
    return [round(float(v), 6) for v in values]


def _cost(params: dict[str, Any]) -> float:
    """Expected relative work, to submit the longest first: more and deeper trees cost more."""
    return float(params.get("n_estimators", 100)) * float(params.get("max_depth") or 8)
