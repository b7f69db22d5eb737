"""The vote: scikit-learn's VotingClassifier / VotingRegressor over members fitted elsewhere.

scikit-learn's voting estimators fit their members themselves; ours were fitted on their own
shards in Ray tasks. Setting the attributes ``fit`` would set (``estimators_``,
``named_estimators_``, ``le_``, ``classes_``) turns the prefit pipelines into a fitted
voting estimator with no class of our own, so skops saves and loads it with scikit-learn
types alone and ``mlflow.pyfunc.load_model`` needs nothing of mlfleet to predict with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlfleet.errors import MlfleetError
from mlfleet.metrics import Metric

from ensembles._config import WEIGHTS


def voting_kind(task: str, members: Sequence[Any]) -> str:
    """``soft`` when every classifier gives probabilities, ``hard`` otherwise; ``mean`` for regressors."""
    if task == "regression":
        return "mean"
    return "soft" if all(hasattr(m, "predict_proba") for m in members) else "hard"


def member_weights(mode: str, val_scores: Sequence[float], metric: Metric) -> tuple[float, ...]:
    """Each member's weight in the vote, summing to 1.

    ``equal`` gives 1/n each. ``validation`` weighs by the member's score on the validation
    split: the score itself for metrics where higher is better (a negative r2 counts as 0),
    its inverse for errors (rmse, mae, log_loss). When no member earns a positive weight the
    weights fall back to equal. Raises MlfleetError for another mode or no members.
    """
    if mode not in WEIGHTS:
        raise MlfleetError(f"weights must be one of {', '.join(WEIGHTS)}, but got weights={mode!r}")
    n = len(val_scores)
    if n == 0:
        raise MlfleetError("the vote needs at least one member, but none was trained")
    if mode == "equal":
        return (1.0 / n,) * n
    raw = [_merit(s, metric) for s in val_scores]
    total = sum(raw)
    if total <= 0:
        return (1.0 / n,) * n
    return tuple(w / total for w in raw)


def _merit(score: float, metric: Metric) -> float:
    if score is None or not math.isfinite(score):
        return 0.0
    if metric.greater_is_better:
        return max(score, 0.0)
    return 1.0 / max(score, 1e-12)


def build_vote(members: Sequence[tuple[str, Any]], task: str, *, n_classes: int = 0, weights: Sequence[float] | None = None, voting: str = ""):
    """A fitted VotingClassifier (soft or hard) or VotingRegressor over prefit ``members``.

    ``members`` are ``(name, fitted pipeline)`` pairs whose classifiers predict the class
    codes ``0..n_classes-1`` (as every model of the fleet does), so the label encoder is the
    identity on those codes. ``voting`` defaults to :func:`voting_kind`. Raises
    MlfleetError when there is no member or the weights do not match them.
    """
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch

    if not members:
        raise MlfleetError("the vote needs at least one member, but none was trained")
    if weights is not None and len(weights) != len(members):
        raise MlfleetError(f"the vote needs one weight per member, but got {len(weights)} weights for {len(members)} members")
    names = [name for name, _ in members]
    fitted = [model for _, model in members]
    weights = list(weights) if weights is not None else None
    if task == "regression":
        vote = VotingRegressor(estimators=list(members), weights=weights)
    else:
        voting = voting or voting_kind(task, fitted)
        vote = VotingClassifier(estimators=list(members), voting=voting, weights=weights)
        vote.le_ = LabelEncoder().fit(np.arange(n_classes))
        vote.classes_ = vote.le_.classes_
    vote.estimators_ = fitted
    vote.named_estimators_ = Bunch(**dict(zip(names, fitted)))
    return vote
