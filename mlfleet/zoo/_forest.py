"""``random_forest``: scikit-learn's random forest, on all the cores its task holds."""

from mlfleet.zoo._registry import MULTI_CORE, Family, register


def build(task, params, seed, n_jobs):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    classification = task == "classification"
    cls = RandomForestClassifier if classification else RandomForestRegressor
    weights = {"class_weight": params.get("class_weight")} if classification else {}
    return cls(
        **weights,
        n_estimators=params.get("n_estimators", 100),
        max_depth=params.get("max_depth"),
        min_samples_split=params.get("min_samples_split", 2),
        min_samples_leaf=params.get("min_samples_leaf", 1),
        max_features=params.get("max_features", "sqrt" if classification else 1.0),
        n_jobs=n_jobs,
        random_state=seed,
    )


def space(trial, task):
    return {
        # Bounded so that a logged forest stays small: skops spends ~3 ms per tree to save one.
        "n_estimators": trial.suggest_int("n_estimators", 50, 150, step=25),
        "max_depth": trial.suggest_int("max_depth", 3, 12),
        "min_samples_split": trial.suggest_int("min_samples_split", 2, 10),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 5),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5]),
    }


def defaults(task):
    """As many and as deep trees as the space allows, scikit-learn's leaves and features (half for regression)."""
    return {
        "n_estimators": 150,
        "max_depth": 12,
        "min_samples_split": 2,
        "min_samples_leaf": 1,
        "max_features": "sqrt" if task == "classification" else 0.5,
    }


RANDOM_FOREST = register(
    Family(
        "random_forest",
        build,
        space,
        defaults,
        cpus=MULTI_CORE,
        trees=150,
        cost=6.0,
        regression_note="RandomForestRegressor",
        sparse=True,
        balance="class_weight",
    )
)
