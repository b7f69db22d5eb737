"""``logistic``: logistic regression; on regression, the elastic net (lasso to ridge)."""

from mlfleet.zoo._registry import Family, register


def build(task, params, seed, n_jobs):
    from sklearn.linear_model import ElasticNet, LogisticRegression

    if task == "classification":
        return LogisticRegression(
            C=params.get("C", 1.0), class_weight=params.get("class_weight"), max_iter=2000, random_state=seed
        )
    return ElasticNet(
        alpha=params.get("alpha", 0.01), l1_ratio=params.get("l1_ratio", 0.5), max_iter=5000, random_state=seed
    )


def space(trial, task):
    if task == "classification":
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
    return {
        "alpha": trial.suggest_float("alpha", 1e-4, 10.0, log=True),
        "l1_ratio": trial.suggest_float("l1_ratio", 0.0, 1.0),
    }


def defaults(task):
    """scikit-learn's regularisation for logistic regression; a light elastic net (standardised features)."""
    if task == "classification":
        return {"C": 1.0}
    return {"alpha": 0.01, "l1_ratio": 0.5}


LOGISTIC = register(
    Family(
        "logistic",
        build,
        space,
        defaults,
        cpus=1,
        cost=0.5,
        regression_note="ElasticNet (linear regression with L1/L2 penalties)",
        sparse=True,
        float32=("classification",),  # every solver fits float32 as it is; ElasticNet would fit y in float32
        balance="class_weight",
    )
)
