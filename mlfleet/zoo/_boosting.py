"""``gradient_boosting``: scikit-learn's (single-threaded) gradient boosting.

Tuning does not draw the number of rounds: early stopping decides them, on a tenth of the
training rows that the estimator holds out itself (it takes no validation set), and the refit
grows the rounds its best trial kept.
"""

import math

import numpy as np

from mlfleet.zoo._registry import BOTH_TASKS, PATIENCE, Family, register

#: the most rounds a trial grows: fewer than the multi-threaded boosters, as it runs on one core
MAX_ROUNDS = 500
#: the share of the training rows the estimator holds out to stop on
HELD_OUT = 0.1


def build(task, params, seed, n_jobs):
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    cls = GradientBoostingClassifier if task == "classification" else GradientBoostingRegressor
    return cls(
        n_estimators=params.get("n_estimators", 100),
        learning_rate=params.get("learning_rate", 0.1),
        max_depth=params.get("max_depth", 3),
        subsample=params.get("subsample", 1.0),
        random_state=seed,
    )


def space(trial, task):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 5),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
    }


def defaults(task):
    """scikit-learn's defaults (learning rate 0.1, depth 3, no subsampling)."""
    return {"learning_rate": 0.1, "max_depth": 3, "subsample": 1.0}


def fit_early(model, X, y, X_val, y_val):
    """Grow up to MAX_ROUNDS rounds, stopping after PATIENCE without gain on the rows it holds out.

    The rounds kept include the last PATIENCE (the estimator keeps them), as the trial was scored
    with them. Too few rows of a class to hold some out: its own rounds, without stopping.
    """
    if can_hold_out(model, y):
        model.set_params(n_estimators=MAX_ROUNDS, n_iter_no_change=PATIENCE, validation_fraction=HELD_OUT)
    model.fit(X, y)
    return {"n_estimators": int(model.n_estimators_)}


def can_hold_out(model, y) -> bool:
    """Whether a classifier can hold out a stratified share of ``y``: every class twice, and as many
    held-out rows as classes (a regressor always can)."""
    from sklearn.base import is_classifier

    if not is_classifier(model):
        return True
    counts = np.unique(y, return_counts=True)[1]
    return counts.min() >= 2 and math.ceil(HELD_OUT * len(y)) >= len(counts)


GRADIENT_BOOSTING = register(
    Family(
        "gradient_boosting",
        build,
        space,
        defaults,
        cpus=1,
        cost=4.0,
        regression_note="GradientBoostingRegressor",
        fit_early=fit_early,
        float32=BOTH_TASKS,  # its trees read float32 whatever they are given
    )
)
