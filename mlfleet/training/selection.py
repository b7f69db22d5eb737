"""Ensemble selection (Caruana et al., 2004): which of many fitted models to vote with, and how often.

Greedy forward selection with replacement over the candidates' validation predictions.
Selection starts from the empty ensemble. Each round adds the candidate whose addition gives
the best score of the averaged predictions, and the candidate may already be in the
ensemble. A model picked twice counts twice in the mean. The weights are how often each
candidate was picked, divided by the number of picks. A classification ensemble is scored as
a soft :class:`~sklearn.ensemble.VotingClassifier` serves it: the metric is computed on the
argmax of the weighted mean probabilities, with those probabilities given too for roc_auc and
log_loss. A regression ensemble is scored on the weighted mean. So
``build_vote(..., weights=selection.for_vote()[1])`` over the members scores what the selection
says.

Stopping rule. A round is idle when its best addition does not beat the best score seen so far
by more than a relative :data:`RTOL`. Selection stops after ``max_rounds`` rounds, or earlier
after ``patience`` idle rounds in a row. ``patience=1`` stops at the first round where no
addition improves. Like AutoGluon's ``EnsembleSelection``, the result is the shortest prefix
of the picks that reaches the best score seen, not the last ensemble.

The rounds score each candidate ensemble with vectorised versions of :mod:`mlfleet.metrics`.
Calling :func:`~mlfleet.metrics.score_one` per candidate costs about 13 ms on 10,000 rows,
which is 30 s for 100 candidates over 25 rounds. A test holds the vectorised versions equal
to ``score_one``, and a metric without one falls back to ``score_one``. The reported scores
(:attr:`Selection.score` and :attr:`Selection.best_single`) come from ``score_one`` itself, on
the mean that the vote computes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mlfleet.errors import MlfleetError
from mlfleet.metrics import Metric, score_one

#: rounds at most: AutoGluon's WeightedEnsemble default. Weights come in steps of 1/25 or
#: coarser, which is fine enough for a vote of a few models and overfits the validation rows less.
MAX_ROUNDS = 25
#: idle rounds in a row that end the selection. On a plateau of accuracy or f1, adding a model
#: changes no prediction, but a later round can find a better mix; this many rounds give it a chance.
PATIENCE = 5
#: scores closer than this (relative) are equal: a tie within a round goes to the lowest index,
#: and a round this close to the best score seen is idle (the running mean has floating-point noise)
RTOL = 1e-12
#: candidate ensembles are scored in chunks of about this many floats (32 MB), not all at once
CHUNK_VALUES = 1 << 22


class Single(NamedTuple):
    """The best single candidate and its validation score."""

    index: int
    score: float


@dataclass(frozen=True)
class Selection:
    """The chosen ensemble.

    ``weights`` has one entry per candidate (zero if unpicked) and sums to 1. ``picks`` holds
    the candidate indices in the order they were picked. ``score`` is the validation score of
    the ensemble as a vote serves it. ``trajectory`` is the score after every round that ran,
    including the idle rounds cut from the result.
    """

    weights: tuple[float, ...]
    picks: tuple[int, ...]
    score: float
    best_single: Single
    trajectory: tuple[float, ...]

    @property
    def members(self) -> tuple[int, ...]:
        """The indices of the picked candidates, in candidate order."""
        return tuple(i for i, w in enumerate(self.weights) if w > 0)

    def for_vote(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """``(member indices, their weights)`` for :func:`mlfleet.training.voting.build_vote`."""
        return self.members, tuple(self.weights[i] for i in self.members)


def select_ensemble(
    predictions: Sequence[np.ndarray],
    y_val: np.ndarray,
    metric: Metric,
    *,
    task: str,
    n_classes: int = 0,
    max_rounds: int = MAX_ROUNDS,
    patience: int = PATIENCE,
    max_members: int = 0,
    names: Sequence[str] | None = None,
) -> Selection:
    """Choose the ensemble of ``predictions`` that scores best on ``y_val`` by greedy selection with replacement.

    ``predictions`` holds one array per candidate model on the same validation rows. For
    classification each array is n_val x n_classes probabilities, with columns in class code
    order 0..k-1, and ``y_val`` holds those codes. For regression each array holds n_val values.
    ``names`` label the candidates in error messages. ``max_members`` (0: no limit) bounds the
    distinct models the ensemble holds, what it costs to serve: once that many are in, only they
    are picked again. Returns a :class:`Selection`. Raises MlfleetError for bad input, naming the
    candidate at fault.
    """
    preds, y = _checked(predictions, y_val, metric, task, n_classes, max_rounds, patience, names)
    batch = _BATCH_SCORERS.get(metric.name) or _one_by_one(metric, n_classes)
    total = np.zeros_like(preds[0])
    picks: list[int] = []
    trajectory: list[float] = []
    best_round = idle = 0
    for r in range(max_rounds):
        scores = _round_scores(batch, preds, total, r, y)
        if max_members and len(set(picks)) >= max_members:
            scores = np.where(np.isin(np.arange(len(preds)), picks), scores, np.nan)  # only those already in
        pick = _best(scores, metric)
        total += preds[pick]
        picks.append(pick)
        trajectory.append(float(scores[pick]))
        if r == 0 or _improves(trajectory[-1], trajectory[best_round], metric):
            best_round, idle = r, 0
        else:
            idle += 1
            if idle >= patience:
                break
    picks = picks[: best_round + 1]
    weights = np.bincount(picks, minlength=len(preds)) / len(picks)
    members = np.flatnonzero(weights)
    return Selection(
        weights=tuple(float(w) for w in weights),
        picks=tuple(picks),
        score=_served_score(metric, y, [preds[i] for i in members], weights[members], task, n_classes),
        best_single=Single(picks[0], _served_score(metric, y, [preds[picks[0]]], [1.0], task, n_classes)),
        trajectory=tuple(trajectory),
    )


def _checked(predictions, y_val, metric, task, n_classes, max_rounds, patience, names):
    """``(candidates as float arrays, y_val)``, or MlfleetError on the first bad input."""
    if task not in ("classification", "regression"):
        raise MlfleetError(f"task must be classification or regression, but got task={task!r}")
    if metric.task != task:
        raise MlfleetError(f"metric must fit the {task} task, but got {metric.name} (a {metric.task} metric)")
    for name, value in (("max_rounds", max_rounds), ("patience", patience)):
        if value < 1:
            raise MlfleetError(f"{name} must be at least 1, but got {name}={value}")
    if len(predictions) == 0:
        raise MlfleetError("predictions must hold at least one candidate, but got none")
    if names is not None and len(names) != len(predictions):
        raise MlfleetError(
            f"names must give one name per candidate, but got {len(names)} names for {len(predictions)} candidates"
        )
    y = np.asarray(y_val)
    if y.ndim != 1:
        raise MlfleetError(f"y_val must be one-dimensional, but got shape {y.shape}")
    label = (lambda i: repr(names[i])) if names is not None else str
    preds = [np.asarray(p, dtype=float) for p in predictions]
    first = preds[0]
    if first.shape[:1] != y.shape:
        raise MlfleetError(
            f"candidate {label(0)} must have one row per y_val row ({len(y)}), but got shape {first.shape}"
        )
    if task == "regression":
        expected = y.shape
    else:
        cols = n_classes or (first.shape[1] if first.ndim == 2 else 0)
        expected = (len(y), max(cols, 2))
    for i, p in enumerate(preds):
        _check_candidate(p, expected, task, f"candidate {label(i)}")
    if task == "regression":
        return preds, y.astype(float)
    return preds, _codes(y, expected[1], metric)


def _check_candidate(p: np.ndarray, expected: tuple[int, ...], task: str, candidate: str) -> None:
    if p.shape != expected:
        kind = "values" if task == "regression" else "probabilities (n_val x n_classes)"
        raise MlfleetError(f"{candidate} must be {kind} of shape {expected}, but got shape {p.shape}")
    bad = int(np.size(p) - np.count_nonzero(np.isfinite(p)))
    if bad:
        raise MlfleetError(f"{candidate} must predict finite values, but got {bad} NaN or inf")
    if task == "classification" and (p.min() < 0 or p.max() > 1):
        raise MlfleetError(
            f"{candidate} must predict probabilities between 0 and 1, but got values from {p.min():g} to {p.max():g}"
        )


def _codes(y: np.ndarray, k: int, metric: Metric) -> np.ndarray:
    """``y`` as integer class codes 0..k-1; MlfleetError if it holds anything else or cannot be scored."""
    valid = np.isin(y, np.arange(k))
    if not valid.all():
        raise MlfleetError(f"y_val must hold class codes 0..{k - 1}, but got {y[~valid][0].item()!r}")
    y = y.astype(int)
    present = np.unique(y)
    if metric.name == "roc_auc" and len(present) < k:
        raise MlfleetError(
            f"y_val must hold every class 0..{k - 1} to score roc_auc, but got only {', '.join(map(str, present))}"
        )
    return y


def _round_scores(batch, preds, total, size, y) -> np.ndarray:
    """The score of ``total`` (the sum of ``size`` picks) plus each candidate, as a mean over ``size + 1`` picks."""
    per_chunk = max(1, CHUNK_VALUES // max(1, np.size(total)))
    scores = []
    for start in range(0, len(preds), per_chunk):
        means = np.stack(preds[start : start + per_chunk])
        means += total
        means /= size + 1
        scores.append(batch(y, means))
    return np.concatenate(scores)


def _best(scores: np.ndarray, metric: Metric) -> int:
    """The index of the best score (an undefined one never wins); ties go to the lowest index."""
    signed = np.where(np.isnan(scores), -np.inf, scores if metric.greater_is_better else -scores)
    top = signed.max()
    if top == -np.inf:
        raise MlfleetError(f"{metric.name} must be defined on the y_val rows, but it is NaN for every candidate")
    return int(np.flatnonzero((signed == top) | np.isclose(signed, top, rtol=RTOL, atol=0))[0])


def _improves(score: float, best: float, metric: Metric) -> bool:
    return metric.better(score, best) and not np.isclose(score, best, rtol=RTOL, atol=0)


def _served_score(metric, y, members, weights, task, n_classes) -> float:
    """``score_one`` of the weighted mean, computed as VotingClassifier / VotingRegressor compute it."""
    if task == "regression":
        return score_one(metric, y, np.average(np.column_stack(members), axis=1, weights=weights), None)
    proba = np.average(np.asarray(members), axis=0, weights=weights)
    return score_one(metric, y, proba.argmax(axis=1), proba, n_classes)


# --- the metrics of mlfleet.metrics over a batch of candidate ensembles ----------------------
# Each takes y (n_val,) and the ensembles' means, (n_candidates, n_val, k) probabilities or
# (n_candidates, n_val) values, and gives (n_candidates,) scores equal to score_one's.


def _one_by_one(metric: Metric, n_classes: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``score_one`` per candidate: for a metric without a vectorised version (slow: about 13 ms a call)."""
    if metric.task == "regression":
        return lambda y, means: np.array([score_one(metric, y, m, None) for m in means])
    return lambda y, means: np.array([score_one(metric, y, m.argmax(axis=1), m, n_classes) for m in means])


def _accuracy(y, proba):
    return (proba.argmax(axis=2) == y).mean(axis=1)


def _f1(y, proba):
    """Macro f1 over the classes in ``y`` or in the predictions, as scikit-learn averages it."""
    c, k = len(proba), proba.shape[2]
    pred = proba.argmax(axis=2)
    cells = pred + k * np.arange(c)[:, None]  # one bin per (candidate, class)
    predicted = np.bincount(cells.ravel(), minlength=c * k).reshape(c, k)
    hits = np.bincount(cells[pred == y], minlength=c * k).reshape(c, k)
    either = predicted + np.bincount(y, minlength=k)
    present = either > 0
    f1 = np.divide(2 * hits, either, out=np.zeros(either.shape), where=present)
    return f1.sum(axis=1) / present.sum(axis=1)


def _log_loss(y, proba):
    eps = np.finfo(proba.dtype).eps
    return -np.log(np.clip(proba[:, np.arange(len(y)), y], eps, 1 - eps)).mean(axis=1)


def _roc_auc(y, proba):
    """Binary: of the class-1 column. Multiclass: one-vs-rest, the macro mean over classes."""
    k = proba.shape[2]
    if k == 2:
        return _auc(proba[:, :, 1], y == 1)
    return np.mean([_auc(proba[:, :, c], y == c) for c in range(k)], axis=0)


def _auc(scores, positive):
    """Mann-Whitney AUC of each row of ``scores`` against ``positive``, tied scores at their mean rank."""
    c, n = scores.shape
    n_pos = int(positive.sum())
    order = np.argsort(scores, axis=1)
    ranked = np.take_along_axis(scores, order, axis=1)
    starts = np.ones((c, n), dtype=bool)  # where a run of tied scores begins; every row begins one
    starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    if starts.all():  # no ties: the ranks are the positions
        return (positive[order] @ np.arange(1.0, n + 1) - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
    begin = np.flatnonzero(starts)
    size = np.diff(begin, append=c * n)
    positives = np.add.reduceat(positive[order].ravel().astype(np.int64), begin)
    mean_rank = begin % n + (size + 1) / 2  # the mean of the run's 1-based ranks
    rank_sum = np.bincount(begin // n, weights=positives * mean_rank, minlength=c)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))


def _rmse(y, values):
    return np.sqrt(((y - values) ** 2).mean(axis=1))


def _mae(y, values):
    return np.abs(y - values).mean(axis=1)


def _r2(y, values):
    residual = ((y - values) ** 2).sum(axis=1)
    spread = ((y - y.mean()) ** 2).sum()
    if spread == 0:  # scikit-learn's force_finite: a perfect fit is 1, anything else 0
        return np.where(residual == 0, 1.0, 0.0)
    return 1 - residual / spread


_BATCH_SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "log_loss": _log_loss,
    "roc_auc": _roc_auc,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}
