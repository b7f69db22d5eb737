"""The fleet's ensemble: greedy selection (Caruana et al., 2004) over every model's validation predictions.

Every model kept its predictions on the validation rows from its tuning-time fit (trained on
the training rows alone); :func:`~mlfleet.training.selection.select_ensemble` picks, with
replacement, the weighted mix of them that scores best on those rows. The ensemble is then a
weighted soft vote (a weighted mean for regression) of the members as they were logged,
refitted on training and validation rows, as AutoGluon's ``refit_full`` models are: the
weights come from validation predictions, and the test rows score the result once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlfleet.metrics import Metric, predict_with_proba, score_all, task_metrics
from mlfleet.training.selection import select_ensemble
from mlfleet.training.voting import build_vote


@dataclass(frozen=True)
class Candidate:
    """A finished model: a label such as ``#12 LGBMClassifier``, its recorded validation score and its
    predictions on the validation rows."""

    label: str
    val_score: float
    predictions: np.ndarray
    run_id: str = ""
    model_uri: str = ""


@dataclass(frozen=True)
class EnsembleResult:
    """The selected ensemble against its members and the best single model, on validation and test."""

    comparison: pd.DataFrame  # one row per member, the best single model and the ensemble
    members: tuple[str, ...]
    weights: tuple[float, ...]
    member_runs: tuple[str, ...]
    member_uris: tuple[str, ...]
    metric: str
    greater_is_better: bool
    val_score: float
    test_score: float
    best_label: str
    best_val: float
    best_test: float
    model: object = None  # the weighted vote, predicting codes as its members do

    @property
    def gain(self) -> float:
        """How much better the ensemble is than the best single model on validation (negative: worse)."""
        diff = self.val_score - self.best_val
        return diff if self.greater_is_better else -diff

    @property
    def wins(self) -> bool:
        """Whether the ensemble (of two members or more) beats the best single model on validation."""
        return len(self.members) > 1 and self.gain > 1e-12

    def verdict(self) -> str:
        """One sentence: the ensemble against the best single model, chosen on validation, reported on test."""
        shown = ", ".join(f"{m} ({w:.2f})" for m, w in zip(self.members, self.weights, strict=True))
        if len(self.members) == 1:
            return (
                f"Ensemble selection kept the best single model alone, {self.best_label} "
                f"(validation {self.metric} {self.best_val:.4f}): no mix of models scored better on validation."
            )
        how = "beats" if self.wins else "does not beat"
        return (
            f"The ensemble of {len(self.members)} models, {shown}, scores {self.metric} {self.val_score:.4f} on "
            f"validation and {self.test_score:.4f} on test; it {how} the best single model, {self.best_label} "
            f"({self.best_val:.4f} on validation, {self.best_test:.4f} on test)."
        )


def select(
    candidates: Sequence[Candidate],
    load: Callable[[int], object],
    split,
    metric: Metric,
    *,
    max_members: int = 0,
) -> EnsembleResult:
    """The ensemble of ``candidates`` (ranked best first on validation) chosen on ``split``'s validation rows.

    ``load(i)`` gives candidate ``i``'s fitted pipeline (predicting codes); only the members
    are loaded. The ensemble's validation score is the selection's own (its weights were chosen
    on those rows, as every AutoML's ensemble's are); its test score is the served vote's on
    the test rows. Raises MlfleetError (from the selection) for predictions that do not fit.
    """
    task = split.task
    selection = select_ensemble(
        [c.predictions for c in candidates],
        split.y_val,
        metric,
        task=task,
        n_classes=split.n_classes,
        max_members=max_members,
        names=[c.label for c in candidates],
    )
    chosen = list(selection.members)
    weights = [selection.weights[i] for i in chosen]
    models = {i: load(i) for i in {*chosen, 0}}
    vote = build_vote([(f"m{i}", models[i]) for i in chosen], task, split.X_fit, split.y_fit, weights=weights)
    records = []
    for i in sorted(models):
        role = "best single" if i == 0 else "member"
        weight = selection.weights[i]
        records.append({"model": candidates[i].label, "role": role, "weight": weight, **_scores(models[i], split)})
        records[-1]["val_" + metric.name] = candidates[i].val_score
    ensemble_test = _scores(vote, split)
    records.append(
        {"model": f"ensemble of {len(chosen)}", "role": "ensemble", "weight": np.nan, **ensemble_test,
         "val_" + metric.name: selection.score}
    )  # fmt: skip
    columns = ["model", "role", "weight", "val_" + metric.name, *task_metrics(task)]
    comparison = pd.DataFrame(records, columns=columns)
    best = candidates[0]
    return EnsembleResult(
        comparison=comparison,
        members=tuple(candidates[i].label for i in chosen),
        weights=tuple(weights),
        member_runs=tuple(candidates[i].run_id for i in chosen),
        member_uris=tuple(candidates[i].model_uri for i in chosen),
        metric=metric.name,
        greater_is_better=metric.greater_is_better,
        val_score=float(selection.score),
        test_score=float(ensemble_test[metric.name]),
        best_label=best.label,
        best_val=float(best.val_score),
        best_test=float(comparison.loc[comparison["role"] == "best single", metric.name].iloc[0]),
        model=vote,
    )


def _scores(model, split) -> dict[str, float]:
    pred, proba = predict_with_proba(model, split.X_test, split.task)
    return score_all(split.task, split.y_test, pred, proba, split.n_classes)
