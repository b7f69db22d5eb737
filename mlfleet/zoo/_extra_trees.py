"""``extra_trees``: scikit-learn's extremely randomised trees, on all the cores its task holds.

Split thresholds are drawn at random rather than searched, so a tree is cheaper than a random
forest's and the trees differ more; deeper trees than the forest's suit it.
"""

from mlfleet.zoo._forest import MAX_TREES, build_forest
from mlfleet.zoo._registry import BOTH_TASKS, MULTI_CORE, Family, register


def build(task, params, seed, n_jobs):
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    return build_forest(ExtraTreesClassifier, ExtraTreesRegressor, task, params, seed, n_jobs)


def space(trial, task):
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, MAX_TREES, step=25),
        "max_depth": trial.suggest_int("max_depth", 4, 20),
        "min_samples_split": trial.suggest_int("min_samples_split", 2, 10),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 5),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5, 1.0]),
    }


def defaults(task):
    """scikit-learn's defaults (every feature for regression), the trees as many and as deep as the space allows."""
    return {
        "n_estimators": MAX_TREES,
        "max_depth": 20,
        "min_samples_split": 2,
        "min_samples_leaf": 1,
        "max_features": "sqrt" if task == "classification" else 1.0,
    }


EXTRA_TREES = register(
    Family(
        "extra_trees",
        build,
        space,
        defaults,
        cpus=MULTI_CORE,
        trees=MAX_TREES,
        cost=4.0,
        regression_note="ExtraTreesRegressor",
        sparse=True,
        float32=BOTH_TASKS,  # trees split on float32 whatever they are given
        balance="class_weight",
    )
)
