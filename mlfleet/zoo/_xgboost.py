"""``xgboost``: gradient-boosted trees from XGBoost (hist), on all the task's cores."""

from mlfleet.zoo._registry import MULTI_CORE, Family, register


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
        "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
        "max_depth": trial.suggest_int("max_depth", 2, 8),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 10.0, log=True),
    }


XGBOOST = register(
    Family(
        "xgboost",
        build,
        space,
        cpus=MULTI_CORE,
        trees=300,
        cost=4.0,
        regression_note="XGBRegressor",
        sparse=True,
        balance="scale_pos_weight",
    )
)
