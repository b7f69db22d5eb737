"""The model zoo: one registry of families, each for classification and regression.

| family | classification | regression |
| --- | --- | --- |
| logistic | LogisticRegression | ElasticNet |
| svm | SVC (probabilities) | SVR |
| random_forest | RandomForestClassifier | RandomForestRegressor |
| xgboost | XGBClassifier | XGBRegressor |
| gradient_boosting | GradientBoostingClassifier | GradientBoostingRegressor |
| naive_bayes | GaussianNB | BayesianRidge (no naive Bayes regressor exists) |
"""

from mlfleet.zoo import _bayes, _boosting, _forest, _linear, _svm, _xgboost  # noqa: F401  (registration)
from mlfleet.zoo._registry import FAMILIES, MULTI_CORE, Family, cpu_families, family

__all__ = ["FAMILIES", "MULTI_CORE", "Family", "cpu_families", "family"]
