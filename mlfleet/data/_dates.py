"""The date-parts transformer: a column of dates becomes its year, month, day of week and hour."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlfleet.data._columns import DATE_PARTS


class DateParts(TransformerMixin, BaseEstimator):
    """Year, month, day of week and hour of each date column, as numbers (missing where unparsed).

    Part of the logged pipeline, so the model reads dates as the file holds them (text or typed).
    """

    def fit(self, X, y=None):
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X):
        frame = pd.DataFrame(X)
        parts = []
        for i in range(frame.shape[1]):
            column = frame.iloc[:, i]
            if not pd.api.types.is_datetime64_any_dtype(column):
                column = pd.to_datetime(column.astype("string"), errors="coerce", format="mixed")
            for part in DATE_PARTS:
                parts.append(getattr(column.dt, part).astype("float64").to_numpy(na_value=np.nan))
        return np.column_stack(parts) if parts else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        names = input_features if input_features is not None else range(self.n_features_in_)
        return np.asarray([f"{c}_{part}" for c in names for part in DATE_PARTS], dtype=object)
