"""A vote of models fitted elsewhere: scikit-learn's VotingClassifier / VotingRegressor over frozen members.

:class:`sklearn.frozen.FrozenEstimator` keeps each prefit pipeline as it is, so the voting
estimator's ``fit`` only learns the class labels and refits nothing. The result holds
scikit-learn types alone: it saves with skops and loads where scikit-learn does. Used by the
ensemble command (its members fitted on shards) and by ensemble selection (the weighted mix of a
fleet's models, in analyze and at a sweep's close).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlfleet.errors import MlfleetError


def voting_kind(task: str, members: Sequence[Any]) -> str:
    """``soft`` when every classifier gives probabilities, ``hard`` otherwise; ``mean`` for regressors."""
    return voting_of(task, [hasattr(m, "predict_proba") for m in members])


def voting_of(task: str, probabilities: Sequence[bool]) -> str:
    """:func:`voting_kind` of members known by whether each gives probabilities (models that are elsewhere)."""
    if task == "regression":
        return "mean"
    return "soft" if all(probabilities) else "hard"


def build_vote(
    members: Sequence[tuple[str, Any]], task: str, X, y, *, weights: Sequence[float] | None = None, voting: str = ""
):
    """A fitted vote over prefit ``members`` (``(name, fitted model)`` pairs).

    ``X, y`` are rows holding every class (the training rows): fitting only reads the labels.
    ``voting`` (soft, hard) defaults to :func:`voting_kind`. Raises MlfleetError when there is
    no member or the weights do not match them.
    """
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.frozen import FrozenEstimator

    if not members:
        raise MlfleetError("the vote needs at least one member, but none was trained")
    if weights is not None and len(weights) != len(members):
        raise MlfleetError(
            f"the vote needs one weight per member, but got {len(weights)} weights for {len(members)} members"
        )
    frozen = [(name, FrozenEstimator(model)) for name, model in members]
    weights = list(weights) if weights is not None else None
    if task == "regression":
        vote = VotingRegressor(frozen, weights=weights)
    else:
        vote = VotingClassifier(frozen, voting=voting or voting_kind(task, [m for _, m in members]), weights=weights)
    vote.fit(X, y)
    # The members by name again (predicting never reads it): skops saves every reference to a member
    # as a copy of its own, so without it a logged vote is 2x its members instead of 3x, and saves in 2/3
    # the time. They stay in ``estimators_``, and by name in ``estimators``.
    del vote.named_estimators_
    return vote
