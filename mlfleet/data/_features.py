"""Preprocessing of raw rows and the feature-selection strategies a model is built with.

Everything here is a scikit-learn transformer, so it becomes part of the logged pipeline:
the model accepts raw rows like the input file's (text columns, missing values).
"""

from __future__ import annotations

import pandas as pd

from mlfleet.errors import MlfleetError

#: the seven strategies, in the order models are assigned them
STRATEGIES = ("all", "variance", "kbest", "mutual_info", "l1", "tree", "pca")

SELECTED_SHARE = 50  # percent of features the ranking strategies keep


def build_preprocessor(X: pd.DataFrame):
    """Impute and scale numeric columns; impute and one-hot encode the others."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    parts = []
    if numeric:
        parts.append(
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)
        )
    if categorical:
        parts.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False)


def build_selector(strategy: str, task: str, seed: int):
    """The transformer for ``strategy`` (one of :data:`STRATEGIES`) on preprocessed features.

    Raises MlfleetError for an unknown strategy.
    """
    from sklearn.decomposition import PCA
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
    from sklearn.feature_selection import (
        SelectFromModel,
        SelectPercentile,
        VarianceThreshold,
        f_classif,
        f_regression,
        mutual_info_classif,
        mutual_info_regression,
    )
    from sklearn.linear_model import Lasso, LogisticRegression

    classification = task == "classification"
    if strategy == "all":
        return "passthrough"
    if strategy == "variance":
        # On standardised numbers this drops constant columns; on one-hot columns, rare levels.
        return VarianceThreshold(threshold=0.05)
    if strategy == "kbest":
        return SelectPercentile(f_classif if classification else f_regression, percentile=SELECTED_SHARE)
    if strategy == "mutual_info":
        # mutual_info_* draw jitter from numpy's global generator, which the task seeds.
        return SelectPercentile(
            mutual_info_classif if classification else mutual_info_regression, percentile=SELECTED_SHARE
        )
    if strategy == "l1":
        model = (
            LogisticRegression(l1_ratio=1.0, solver="liblinear", C=0.1, random_state=seed)
            if classification
            else Lasso(alpha=0.05, random_state=seed)
        )
        # "median" would keep every feature when most coefficients are zero; "mean" keeps the strong ones.
        return SelectFromModel(model, threshold="mean")
    if strategy == "tree":
        # Shallow trees rank features as well here and keep the logged pipeline small.
        trees = (ExtraTreesClassifier if classification else ExtraTreesRegressor)(
            n_estimators=50, max_depth=6, random_state=seed, n_jobs=1
        )
        return SelectFromModel(trees, threshold="median")
    if strategy == "pca":
        return PCA(n_components=0.95, svd_solver="full", random_state=seed)
    raise MlfleetError(f"unknown feature strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
