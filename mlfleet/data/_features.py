"""Preprocessing of raw rows and the feature-selection strategies a model is built with.

Everything here is a scikit-learn transformer, so it becomes part of the logged pipeline:
the model accepts raw rows like the input file's (text columns, missing values, dates).
Which columns get which treatment is the column plan's (:mod:`mlfleet.data._columns`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlfleet.data._columns import MAX_LEVELS, MIN_LEVEL_SHARE, ColumnPlan, plan_columns
from mlfleet.errors import MlfleetError

#: the seven strategies, in the order models are assigned them
STRATEGIES = ("all", "variance", "kbest", "mutual_info", "l1", "tree", "pca")

SELECTED_SHARE = 50  # percent of features the ranking strategies keep


#: strategies that read sparse input as it is (PCA and mutual information need dense)
SPARSE_STRATEGIES = ("all", "variance", "kbest", "l1", "tree")
#: the output stays sparse when under this share of its cells are non-zero (scikit-learn's default)
SPARSE_DENSITY = 0.3
#: columns per part of the preprocessor, by role, for a big table: a part's transient memory is a
#: few times its columns' (a median imputer sorts a copy of its numbers and their int64 order, four
#: times their memory; a most-frequent imputer and the one-hot encoder make a Python string of every
#: text cell, twice), so a big table's columns are prepared a few at a time. The features are the
#: same as one part per role makes.
PART_COLUMNS = {"numeric": 8, "boolean": 2, "categorical": 2}
#: a role whose columns hold more cells than this in the rows a model is fitted on is prepared in
#: parts (a part costs a few milliseconds a fit, so a small table keeps one part per role)
PART_CELLS = 4_000_000


def build_preprocessor(
    plan: ColumnPlan | pd.DataFrame, *, sparse: bool = False, seed: int = 0, float32: bool = False, rows: int = 0
):
    """The transformer that turns raw rows into features, one part per column role of ``plan``.

    ``plan`` is a :class:`ColumnPlan` (or a frame, planned here). With ``sparse`` the output
    is a sparse matrix when the one-hot parts make it mostly zeros; otherwise it is dense.
    Columns the plan drops (identifiers, constants, ``drop=``) are not read. With ``float32``
    every part hands its features on as float32 (half the memory of float64): numbers are
    imputed and scaled in float64 first, so a column far from zero keeps its precision. ``rows``:
    the most rows it will be fitted on; a role whose columns hold more than :data:`PART_CELLS`
    cells in them is prepared in parts of :data:`PART_COLUMNS` columns (``num``, ``num_1``, ...).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler, TargetEncoder

    from mlfleet.data._dates import DateParts

    if isinstance(plan, pd.DataFrame):
        plan = plan_columns(plan)
    dtype = np.float32 if float32 else np.float64
    # np.float32 called on an array casts it; a numpy type, so skops loads it without trusting any code
    narrowed = [("float32", FunctionTransformer(np.float32, feature_names_out="one-to-one"))] if float32 else []

    def scaled(*steps):
        # the imputer always returns a new array, so the scaler may scale it in place
        scale = StandardScaler(copy=False)
        return Pipeline([*steps, ("impute", SimpleImputer(strategy="median")), ("scale", scale), *narrowed])

    def two_levels():
        # one 0/1 column per pair (the first level, sorted, is dropped); a level never seen reads 0
        onehot = OneHotEncoder(drop="if_binary", handle_unknown="ignore", sparse_output=False, dtype=dtype)
        return Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("onehot", onehot)])

    def levels():
        onehot = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=MIN_LEVEL_SHARE,
            max_categories=MAX_LEVELS,
            sparse_output=True,
            dtype=dtype,
        )
        return Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("onehot", onehot)])

    parts = []
    for name, role, make in (
        ("num", "numeric", scaled),
        ("bool", "boolean", two_levels),
        ("cat", "categorical", levels),
    ):
        columns = plan.columns(role)
        size = PART_COLUMNS[role] if rows * len(columns) > PART_CELLS else max(1, len(columns))
        for start in range(0, len(columns), size):
            parts.append((name if start == 0 else f"{name}_{start // size}", make(), columns[start : start + size]))
    if many := plan.columns("high_cardinality"):
        # cross-fitted in fit_transform: each training row is encoded by folds that did not see it
        folds = (StratifiedKFold if plan.class_shares else KFold)(n_splits=5, shuffle=True, random_state=seed)
        encoder = TargetEncoder(cv=folds)
        parts.append(("target_enc", Pipeline([("encode", encoder), ("scale", StandardScaler()), *narrowed]), many))
    if dates := plan.columns("datetime"):
        parts.append(("dates", scaled(("parts", DateParts())), dates))
    if not parts:
        raise MlfleetError("no usable feature columns: every column was dropped (identifiers, constants or drop=)")
    return ColumnTransformer(
        parts,
        remainder="drop",
        sparse_threshold=SPARSE_DENSITY if sparse else 0.0,
        verbose_feature_names_out=False,
    )


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
            # saga: liblinear refuses three classes or more in scikit-learn 1.9
            LogisticRegression(l1_ratio=1.0, solver="saga", C=0.1, max_iter=2000, random_state=seed)
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
