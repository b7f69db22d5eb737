"""The members' weights in the vote; the vote itself is :func:`mlfleet.training.voting.build_vote`
(scikit-learn's voting estimators over the frozen, prefit members)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlfleet.config import WEIGHTS
from mlfleet.errors import MlfleetError
from mlfleet.metrics import Metric
from mlfleet.training.voting import build_vote, voting_kind

__all__ = ["build_vote", "member_weights", "voting_kind"]


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
