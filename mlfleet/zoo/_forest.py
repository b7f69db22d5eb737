"""``random_forest``: scikit-learn's random forest, on all the cores its task holds."""

from mlfleet.zoo._registry import BOTH_TASKS, MULTI_CORE, Family, register

#: the most trees a forest's search draws: skops spends ~3 ms per tree to save a logged one
MAX_TREES = 150


def build_forest(classifier, regressor, task, params, seed, n_jobs):
    """A forest of ``classifier`` or ``regressor`` (random forest, extra trees) with ``params``."""
    classification = task == "classification"
    weights = {"class_weight": params.get("class_weight")} if classification else {}
    return (classifier if classification else regressor)(
        **weights,
        n_estimators=params.get("n_estimators", 100),
        max_depth=params.get("max_depth"),
        min_samples_split=params.get("min_samples_split", 2),
        min_samples_leaf=params.get("min_samples_leaf", 1),
        max_features=params.get("max_features", "sqrt" if classification else 1.0),
        n_jobs=n_jobs,
        random_state=seed,
    )


def build(task, params, seed, n_jobs):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    return build_forest(RandomForestClassifier, RandomForestRegressor, task, params, seed, n_jobs)


def space(trial, task):
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, MAX_TREES, step=25),
        "max_depth": trial.suggest_int("max_depth", 3, 12),
        "min_samples_split": trial.suggest_int("min_samples_split", 2, 10),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 5),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5]),
    }


def defaults(task):
    """As many and as deep trees as the space allows, scikit-learn's leaves and features (half for regression)."""
    return {
        "n_estimators": MAX_TREES,
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
        trees=MAX_TREES,
        cost=6.0,
        regression_note="RandomForestRegressor",
        sparse=True,
        float32=BOTH_TASKS,  # trees split on float32 whatever they are given
        balance="class_weight",
    )
)
