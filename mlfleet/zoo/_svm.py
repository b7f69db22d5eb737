"""``svm``: an RBF support-vector machine (SVC with probabilities, SVR)."""

from mlfleet.zoo._registry import Family, register


def build(task, params, seed, n_jobs):
    from sklearn.svm import SVC, SVR

    C, gamma = params.get("C", 1.0), params.get("gamma", "scale")
    if task == "classification":
        return SVC(C=C, gamma=gamma, class_weight=params.get("class_weight"), probability=True, random_state=seed)
    return SVR(C=C, gamma=gamma, epsilon=params.get("epsilon", 0.1))


def space(trial, task):
    params = {
        "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
        "gamma": trial.suggest_float("gamma", 1e-4, 1.0, log=True),
    }
    if task == "regression":
        params["epsilon"] = trial.suggest_float("epsilon", 1e-3, 1.0, log=True)
    return params


def defaults(task):
    """scikit-learn's C and epsilon; gamma near its ``scale`` (1 / features) for a few dozen standardised features."""
    params = {"C": 1.0, "gamma": 0.05}
    if task == "regression":
        params["epsilon"] = 0.1
    return params


SVM = register(
    Family("svm", build, space, defaults, cpus=1, cost=2.0, regression_note="SVR", sparse=True, balance="class_weight")
)
