"""``lightgbm``: gradient-boosted trees from LightGBM (leaf-wise growth), on all the task's cores.

Tuning does not draw the number of rounds: each trial grows up to :data:`MAX_ROUNDS` and stops
when the validation rows stop improving, and the refit grows the rounds its best trial kept.
"""

import inspect

from mlfleet.zoo._registry import BOTH_TASKS, MAX_ROUNDS, MULTI_CORE, PATIENCE, Family, register


def build(task, params, seed, n_jobs):
    from lightgbm import LGBMClassifier, LGBMRegressor

    classification = task == "classification"
    cls = LGBMClassifier if classification else LGBMRegressor
    weights = {"class_weight": params.get("class_weight")} if classification else {}
    subsample = params.get("subsample", 1.0)
    return cls(
        **weights,
        n_estimators=params.get("n_estimators", 100),
        learning_rate=params.get("learning_rate", 0.1),
        num_leaves=params.get("num_leaves", 31),
        min_child_samples=params.get("min_child_samples", 20),
        colsample_bytree=params.get("colsample_bytree", 1.0),
        subsample=subsample,
        subsample_freq=1 if subsample < 1.0 else 0,  # LightGBM samples rows only with a frequency
        n_jobs=n_jobs,
        random_state=seed,
        verbose=-1,
    )


def space(trial, task):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
    }


def defaults(task):
    """The usual LightGBM starting point: learning rate 0.05, 31 leaves, 20 rows a leaf, 90% of the features."""
    return {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "colsample_bytree": 0.9,
        "subsample": 1.0,
    }


def fit_early(model, X, y, X_val, y_val):
    """Grow up to MAX_ROUNDS rounds, stopping PATIENCE rounds after the best on the validation rows.

    The fitted model predicts with its best round (LightGBM's own rule), so the trial is scored
    on the rounds the refit will grow.
    """
    import lightgbm

    model.set_params(n_estimators=MAX_ROUNDS)
    model.fit(X, y, **_validation(model, X_val, y_val), callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)])
    return {"n_estimators": int(model.best_iteration_)}


def _validation(model, X_val, y_val) -> dict:
    """The validation rows as this LightGBM's ``fit`` takes them (``eval_set`` is deprecated from 4.7 on)."""
    if "eval_X" in inspect.signature(model.fit).parameters:
        return {"eval_X": (X_val,), "eval_y": (y_val,)}
    return {"eval_set": [(X_val, y_val)]}


LIGHTGBM = register(
    Family(
        "lightgbm",
        build,
        space,
        defaults,
        cpus=MULTI_CORE,
        trees=300,
        cost=3.0,
        regression_note="LGBMRegressor",
        sparse=True,
        float32=BOTH_TASKS,  # LightGBM bins float32 as it is
        balance="class_weight",
        fit_early=fit_early,
    )
)
