"""The model zoo's registry: a family is a builder, a search space and its resources."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlfleet.errors import MlfleetError

#: what a family asks Ray for when it can use several cores; capped to the largest node
MULTI_CORE = 4
#: boosting rounds without a gain on the validation rows before a boosted family stops
PATIENCE = 50
#: the most boosting rounds a boosted family may grow before early stopping ends it
MAX_ROUNDS = 1000

#: ``fit_early(model, X_train, y_train, X_val, y_val)``: fit ``model`` on the training rows,
#: stopping when the validation rows stop improving; returns the parameters that make a refit
#: without validation rows grow the same rounds (``{"n_estimators": 137}``)
FitEarly = Callable[[Any, Any, Any, Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class Family:
    """One kind of model, for classification and regression.

    ``build(task, params, seed, n_jobs)`` returns an unfitted scikit-learn estimator;
    ``space(trial, task)`` draws a parameter dict from an Optuna trial; ``defaults(task)`` is a
    known-good point of that space, in its names and values (the study's first trial);
    ``cost`` is the relative expected work of one tuned model, used to submit the longest first.
    """

    name: str
    build: Callable[[str, Mapping[str, Any], int, int], Any]
    space: Callable[[Any, str], dict[str, Any]]
    defaults: Callable[[str], dict[str, Any]]
    cpus: int = 1
    gpus: float = 0.0
    cost: float = 1.0
    device: str = "cpu"
    regression_note: str = ""
    #: fixed, untuned parameters of the family's n-th model (the MLP's architectures)
    variant: Callable[[int], dict[str, Any]] | None = None
    #: how it stops early on the validation rows during tuning (:data:`FitEarly`); None: a plain fit
    fit_early: FitEarly | None = None
    #: whether the estimator reads a sparse matrix as it is (the features stay sparse for it)
    sparse: bool = False
    #: the tasks whose estimator trains on float32 features as they are (no float64 copy of its own) and
    #: predicts what it predicted from float64: its features are made float32, half the memory. Not
    #: libsvm or scikit-learn's histogram boosting (they copy float32 into float64), nor a linear or
    #: Bayesian regressor (it would fit the target in float32 and return float32 values)
    float32: tuple[str, ...] = ()
    #: the most trees its search draws (an ensemble of trees; for boosting that stops early, a
    #: typical count rather than :data:`MAX_ROUNDS`): with the training rows, what sizes the
    #: cores a model is given (:func:`mlfleet.training.jobs.cores_for`)
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


#: both tasks (for :attr:`Family.float32`)
BOTH_TASKS = ("classification", "regression")

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
