"""The model zoo: one registry of families, each for classification and regression.

| family | classification | regression |
| --- | --- | --- |
| logistic | LogisticRegression | ElasticNet |
| svm | SVC (probabilities) | SVR |
| random_forest | RandomForestClassifier | RandomForestRegressor |
| xgboost | XGBClassifier | XGBRegressor |
| gradient_boosting | GradientBoostingClassifier | GradientBoostingRegressor |
| naive_bayes | GaussianNB | BayesianRidge (no naive Bayes regressor exists) |
| lightgbm | LGBMClassifier | LGBMRegressor |
| hist_gradient_boosting | HistGradientBoostingClassifier | HistGradientBoostingRegressor |
| extra_trees | ExtraTreesClassifier | ExtraTreesRegressor |
| mlp | TorchMLPClassifier | TorchMLPRegressor (PyTorch, GPU or CPU) |
"""

# Importing a family's module registers it; this order is the order users see. The default CPU
# fleet's six come first, in its order; families added later go after them.
from mlfleet.zoo import _linear  # noqa: F401, I001
from mlfleet.zoo import _svm  # noqa: F401
from mlfleet.zoo import _forest  # noqa: F401
from mlfleet.zoo import _xgboost  # noqa: F401
from mlfleet.zoo import _boosting  # noqa: F401
from mlfleet.zoo import _bayes  # noqa: F401
from mlfleet.zoo import _lightgbm  # noqa: F401
from mlfleet.zoo import _hist_boosting  # noqa: F401
from mlfleet.zoo import _extra_trees  # noqa: F401
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
