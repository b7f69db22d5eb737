"""The model zoo: one registry of families, each for classification and regression.

| family | classification | regression |
| --- | --- | --- |
| logistic | LogisticRegression | ElasticNet |
| svm | SVC (probabilities) | SVR |
| random_forest | RandomForestClassifier | RandomForestRegressor |
| xgboost | XGBClassifier | XGBRegressor |
| gradient_boosting | GradientBoostingClassifier | GradientBoostingRegressor |
| naive_bayes | GaussianNB | BayesianRidge (no naive Bayes regressor exists) |
| mlp | TorchMLPClassifier | TorchMLPRegressor (PyTorch, GPU or CPU) |
"""

# Importing a family's module registers it; this order is the order users see.
from mlfleet.zoo import _linear  # noqa: F401, I001
from mlfleet.zoo import _svm  # noqa: F401
from mlfleet.zoo import _forest  # noqa: F401
from mlfleet.zoo import _xgboost  # noqa: F401
from mlfleet.zoo import _boosting  # noqa: F401
from mlfleet.zoo import _bayes  # noqa: F401
from mlfleet.zoo import _mlp  # noqa: F401
from mlfleet.zoo._registry import (
    FAMILIES,
    MULTI_CORE,
    Family,
    check_installed,
    cpu_families,
    family,
    gpu_families,
)

__all__ = ["FAMILIES", "MULTI_CORE", "Family", "check_installed", "cpu_families", "family", "gpu_families"]
