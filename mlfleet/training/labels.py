"""Labels in, labels out: a classifier trained on codes, logged to predict the original labels.

The fleet trains on codes ``0..k-1`` (XGBoost refuses text labels, and every model of a sweep
then scores on the same encoding). What is logged is the trained pipeline inside
scikit-learn's own label decoder: a one-member :class:`~sklearn.ensemble.VotingClassifier`
over the :class:`~sklearn.frozen.FrozenEstimator` pipeline, fitted on the labels only. It
predicts the labels as they were in the file (text, booleans, integers), its ``classes_``
are those labels (``predict_proba``'s columns in that order), and it holds scikit-learn types
alone, so skops saves it and it loads wherever scikit-learn does. A one-member vote predicts
exactly what its member predicts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

#: the name of the one member of a labelled model
MEMBER = "model"


def label_array(classes: Sequence) -> np.ndarray:
    """The labels as a numpy array of their own kind (text, bool or int)."""
    values = list(classes)
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=object)
    return np.asarray(values)


def with_labels(model: Any, classes: Sequence, X) -> Any:
    """``model`` (predicting codes ``0..k-1`` of ``classes``) as a classifier predicting ``classes``.

    ``X`` is any rows the model accepts (fitting reads only their count): the decoder is
    fitted on one row per class.
    """
    from mlfleet.training.voting import build_vote, voting_kind

    labels = label_array(classes)
    rows = X.iloc[np.arange(len(labels)) % len(X)].reset_index(drop=True)
    return build_vote([(MEMBER, model)], "classification", rows, labels, voting=voting_kind("classification", [model]))


def is_labelled(model: Any) -> bool:
    """Whether ``model`` is a decoder made by :func:`with_labels`."""
    from sklearn.ensemble import VotingClassifier

    return isinstance(model, VotingClassifier) and [name for name, _ in model.estimators] == [MEMBER]


def codes_model(model: Any) -> Any:
    """The pipeline that predicts codes: inside a decoder of :func:`with_labels`, else ``model`` itself.

    What analyze votes with and scores against the encoded split (models logged before
    labels were kept predict codes already).
    """
    if not is_labelled(model):
        return model
    return model.estimators_[0].estimator  # FrozenEstimator(pipeline).estimator


def classes_json(classes: Sequence) -> str:
    """The label map as the row's ``classes_json``: the labels in code order (empty for regression)."""
    return json.dumps(list(classes)) if classes else ""
