"""``hist_gradient_boosting``: scikit-learn's histogram gradient boosting (LightGBM's method).

It reads missing values as they are and runs on the task's cores through OpenMP (bounded by
the worker's thread limit; it has no ``n_jobs``). Dense input only. Tuning does not draw the
number of rounds: each trial grows up to :data:`MAX_ROUNDS` and stops when the validation rows
stop improving, and the refit grows the rounds its best trial kept.
"""

from mlfleet.zoo._registry import MAX_ROUNDS, MULTI_CORE, PATIENCE, Family, register


def build(task, params, seed, n_jobs):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    classification = task == "classification"
    cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    weights = {"class_weight": params.get("class_weight")} if classification else {}
    return cls(
        **weights,
        max_iter=params.get("max_iter", 100),
        learning_rate=params.get("learning_rate", 0.1),
        max_leaf_nodes=params.get("max_leaf_nodes", 31),
        min_samples_leaf=params.get("min_samples_leaf", 20),
        l2_regularization=params.get("l2_regularization", 0.0),
        max_features=params.get("max_features", 1.0),
        early_stopping=False,  # "auto" would hold rows out on large tables; only tuning stops early
        random_state=seed,
    )


def space(trial, task):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 0.0, 1.0),
        "max_features": trial.suggest_float("max_features", 0.5, 1.0),
    }


def defaults(task):
    """scikit-learn's defaults (learning rate 0.1, 31 leaves, 20 rows a leaf, no penalty, every feature)."""
    return {
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
        "max_features": 1.0,
    }


def fit_early(model, X, y, X_val, y_val):
    """Grow up to MAX_ROUNDS rounds, stopping after PATIENCE without gain in the validation rows' loss.

    The rounds kept include the last PATIENCE (the estimator keeps them), as the trial was scored with them.
    """
    model.set_params(max_iter=MAX_ROUNDS, early_stopping=True, n_iter_no_change=PATIENCE)
    model.fit(X, y, X_val=X_val, y_val=y_val)
    return {"max_iter": int(model.n_iter_)}


HIST_GRADIENT_BOOSTING = register(
    Family(
        "hist_gradient_boosting",
        build,
        space,
        defaults,
        cpus=MULTI_CORE,
        trees=300,
        cost=3.0,
        regression_note="HistGradientBoostingRegressor",
        balance="class_weight",
        fit_early=fit_early,
    )
)
