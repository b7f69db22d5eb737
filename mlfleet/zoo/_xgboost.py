"""``xgboost``: gradient-boosted trees from XGBoost (hist), on all the task's cores.

Tuning does not draw the number of rounds: each trial grows up to :data:`MAX_ROUNDS` and stops
when the validation rows stop improving, and the refit grows the rounds its best trial kept.
"""

from mlfleet.zoo._registry import BOTH_TASKS, MAX_ROUNDS, MULTI_CORE, PATIENCE, Family, register


def build(task, params, seed, n_jobs):
    from xgboost import XGBClassifier, XGBRegressor

    cls = XGBClassifier if task == "classification" else XGBRegressor
    return cls(
        n_estimators=params.get("n_estimators", 100),
        max_depth=params.get("max_depth", 6),
        learning_rate=params.get("learning_rate", 0.1),
        subsample=params.get("subsample", 1.0),
        colsample_bytree=params.get("colsample_bytree", 1.0),
        min_child_weight=params.get("min_child_weight", 1.0),
        scale_pos_weight=params.get("scale_pos_weight", 1.0),
        tree_method="hist",
        n_jobs=n_jobs,
        random_state=seed,
        verbosity=0,
    )


def space(trial, task):
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 10.0, log=True),
    }


def defaults(task):
    """XGBoost's own defaults (depth 6, learning rate 0.1, no sampling)."""
    return {"max_depth": 6, "learning_rate": 0.1, "subsample": 1.0, "colsample_bytree": 1.0, "min_child_weight": 1.0}


def fit_early(model, X, y, X_val, y_val):
    """Grow up to MAX_ROUNDS rounds, stopping PATIENCE rounds after the best on the validation rows.

    The fitted model predicts with its best round (XGBoost's own rule), so the trial is scored
    on the rounds the refit will grow.
    """
    model.set_params(n_estimators=MAX_ROUNDS, early_stopping_rounds=PATIENCE)
    model.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
    return {"n_estimators": int(model.best_iteration) + 1}


XGBOOST = register(
    Family(
        "xgboost",
        build,
        space,
        defaults,
        cpus=MULTI_CORE,
        trees=300,
        cost=4.0,
        regression_note="XGBRegressor",
        sparse=True,
        float32=BOTH_TASKS,  # XGBoost keeps its matrix in float32
        balance="scale_pos_weight",
        fit_early=fit_early,
    )
)
