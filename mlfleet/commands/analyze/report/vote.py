"""The top-k vote: fitted models combined by scikit-learn's voting estimators, scored on a test split.

The members are already fitted; :class:`sklearn.frozen.FrozenEstimator` keeps them as they
are, so ``fit`` only records the class labels and refits nothing. Classification votes
with the mean of probabilities (``soft``) when every member has ``predict_proba``, and by
majority (``hard``) otherwise; regression takes the mean prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlfleet.metrics import Metric, predict_with_proba, score_all, task_metrics

#: a member whose score on the reproduced split differs more than this from its record is reported
REPRODUCE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Member:
    """One of the k best models: a label such as ``#12 RandomForestClassifier``, the fitted
    pipeline and the score its row records."""

    label: str
    model: object
    recorded: float


@dataclass(frozen=True)
class VoteResult:
    """The comparison of the vote with its members, one row each; ``voting`` is soft, hard or mean."""

    comparison: pd.DataFrame
    voting: str
    metric: str
    k: int
    vote_score: float
    best_score: float
    best_label: str
    greater_is_better: bool
    not_reproduced: tuple[str, ...] = ()
    model: object = None  # the fitted vote compared (predicting codes, like its members)

    @property
    def gain(self) -> float:
        """How much better the vote is than the best single model (negative: worse)."""
        diff = self.vote_score - self.best_score
        return diff if self.greater_is_better else -diff

    def verdict(self) -> str:
        """One sentence: the vote against the best single model."""
        best = f"the best single model, {self.best_label} ({self.best_score:.4f})"
        if np.isclose(self.gain, 0.0, atol=1e-12):
            how = f"ties with {best}"
        else:
            how = f"{'beats' if self.gain > 0 else 'falls short of'} {best}, by {abs(self.gain):.4f}"
        return (
            f"The {self.voting} vote of the top {self.k} scores {self.metric} {self.vote_score:.4f} "
            f"on the test split and {how}."
        )


def vote(members: list[Member], split, metric: Metric) -> VoteResult:
    """Score each member and their vote on ``split.X_test``; the first member is the best single model.

    ``split`` is the sweep's :class:`mlfleet.data.Split`. Returns the comparison table with
    one row per member and one per vote. Raises ValueError without members.
    """
    from mlfleet.training.voting import build_vote, voting_kind

    if not members:
        raise ValueError("the vote needs at least one member")
    task = split.task
    estimators = [(f"m{i}", m.model) for i, m in enumerate(members)]
    records = []
    not_reproduced = []
    for i, m in enumerate(members):
        pred, proba = predict_with_proba(m.model, split.X_test, task)
        scores = score_all(task, split.y_test, pred, proba, split.n_classes)
        if not np.isclose(scores[metric.name], m.recorded, rtol=0, atol=REPRODUCE_TOLERANCE):
            not_reproduced.append(f"{m.label}: {scores[metric.name]:.4f} here, {m.recorded:.4f} recorded")
        records.append(
            {"model": m.label, "role": "best single" if i == 0 else "member", "recorded": m.recorded, **scores}
        )
    # (label, role, voting): the first is the vote compared; a soft vote also shows the majority's
    voting = voting_kind(task, [m.model for m in members])
    labels = {"mean": "vote (mean)", "soft": "vote (mean probability)", "hard": "vote (majority)"}
    votes = [(labels[voting], "vote", voting)] + ([(labels["hard"], "other vote", "hard")] if voting == "soft" else [])
    head_model = None
    for label, role, kind in votes:
        # frozen members: fitting only learns the labels (from train + validation, which hold every class)
        ensemble = build_vote(estimators, task, split.X_fit, split.y_fit, voting=kind if kind != "mean" else "")
        head_model = head_model if head_model is not None else ensemble
        pred = ensemble.predict(split.X_test)
        proba = ensemble.predict_proba(split.X_test) if getattr(ensemble, "voting", "") == "soft" else None
        records.append(
            {
                "model": label,
                "role": role,
                "recorded": np.nan,
                **score_all(task, split.y_test, pred, proba, split.n_classes),
            }
        )
    comparison = pd.DataFrame(records, columns=["model", "role", "recorded", *task_metrics(task)])
    head = comparison[comparison["role"] == "vote"].iloc[0]
    best = comparison.iloc[0]
    return VoteResult(
        comparison=comparison,
        voting=voting,
        metric=metric.name,
        k=len(members),
        vote_score=float(head[metric.name]),
        best_score=float(best[metric.name]),
        best_label=str(best["model"]),
        greater_is_better=metric.greater_is_better,
        not_reproduced=tuple(not_reproduced),
        model=head_model,
    )
