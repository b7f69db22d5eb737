"""``naive_bayes``: Gaussian naive Bayes; on regression, Bayesian ridge regression.

scikit-learn has no naive Bayes regressor. BayesianRidge is the closest stand-in: a
Bayesian model with Gaussian assumptions, cheap, with a small search space of priors.
"""

from mlfleet.zoo._registry import Family, register


def build(task, params, seed, n_jobs):
    from sklearn.linear_model import BayesianRidge
    from sklearn.naive_bayes import GaussianNB

    if task == "classification":
        return GaussianNB(var_smoothing=params.get("var_smoothing", 1e-9))
    return BayesianRidge(alpha_1=params.get("alpha_1", 1e-6), lambda_1=params.get("lambda_1", 1e-6))


def space(trial, task):
    if task == "classification":
        return {"var_smoothing": trial.suggest_float("var_smoothing", 1e-12, 1e-2, log=True)}
    return {
        "alpha_1": trial.suggest_float("alpha_1", 1e-8, 1e-3, log=True),
        "lambda_1": trial.suggest_float("lambda_1", 1e-8, 1e-3, log=True),
    }


def defaults(task):
    """scikit-learn's own smoothing and priors."""
    if task == "classification":
        return {"var_smoothing": 1e-9}
    return {"alpha_1": 1e-6, "lambda_1": 1e-6}


NAIVE_BAYES = register(
    Family(
        "naive_bayes",
        build,
        space,
        defaults,
        cpus=1,
        cost=0.2,
        regression_note="BayesianRidge",
        float32=("classification",),  # GaussianNB fits float32 as it is; BayesianRidge would fit y in float32
    )
)
