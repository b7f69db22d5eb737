"""``gradient_boosting``: scikit-learn's (single-threaded) gradient boosting."""

from mlfleet.zoo._registry import Family, register


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
        "n_estimators": trial.suggest_int("n_estimators", 50, 200, step=25),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 5),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
    }


GRADIENT_BOOSTING = register(
    Family("gradient_boosting", build, space, cpus=1, cost=4.0, regression_note="GradientBoostingRegressor")
)
