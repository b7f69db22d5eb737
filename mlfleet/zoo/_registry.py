"""The model zoo's registry: a family is a builder, a search space and its resources."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlfleet.errors import MlfleetError

#: what a family asks Ray for when it can use several cores; capped to the largest node
MULTI_CORE = 4


@dataclass(frozen=True)
class Family:
    """One kind of model, for classification and regression.

    ``build(task, params, seed, n_jobs)`` returns an unfitted scikit-learn estimator;
    ``space(trial, task)`` draws a parameter dict from an Optuna trial; ``cost`` is the
    relative expected work of one tuned model, used to submit the longest first.
    """

    name: str
    build: Callable[[str, Mapping[str, Any], int, int], Any]
    space: Callable[[Any, str], dict[str, Any]]
    cpus: int = 1
    gpus: float = 0.0
    cost: float = 1.0
    device: str = "cpu"
    regression_note: str = ""
    #: fixed, untuned parameters of the family's n-th model (the MLP's architectures)
    variant: Callable[[int], dict[str, Any]] | None = None
    #: whether ``fit`` takes ``eval_set=(X_val, y_val)`` for early stopping
    uses_eval_set: bool = False
    #: whether the estimator reads a sparse matrix as it is (the features stay sparse for it)
    sparse: bool = False
    #: the most trees its search draws (an ensemble of trees): with the training rows, what
    #: sizes the cores a model is given (:func:`mlfleet.training.jobs.cores_for`)
    trees: int = 0
    #: how it weighs rare classes: "class_weight" (scikit-learn's balanced), "scale_pos_weight"
    #: (XGBoost, two classes), or "" (it has no such setting)
    balance: str = ""
    #: raises MlfleetError, naming what to install, when the family's library is not installed here
    check_installed: Callable[[], None] | None = None

    def fixed_params(self, index: int) -> dict[str, Any]:
        return self.variant(index) if self.variant else {}

    def model_type(self, task: str) -> str:
        """The estimator's class name for ``task``, e.g. ``RandomForestClassifier``."""
        return type(self.build(task, {}, 0, 1)).__name__


FAMILIES: dict[str, Family] = {}


def register(fam: Family) -> Family:
    FAMILIES[fam.name] = fam
    return fam


def family(name: str) -> Family:
    """The registered family ``name``; raises MlfleetError naming the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise MlfleetError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


def check_installed(names) -> None:
    """Raise MlfleetError when a family of ``names`` needs a library that is not installed (before anything runs)."""
    for name in dict.fromkeys(names):
        fam = family(name)
        if fam.check_installed is not None:
            fam.check_installed()


def cpu_families() -> tuple[str, ...]:
    return tuple(name for name, fam in FAMILIES.items() if fam.device == "cpu")


def gpu_families() -> tuple[str, ...]:
    return tuple(name for name, fam in FAMILIES.items() if fam.device == "gpu")
