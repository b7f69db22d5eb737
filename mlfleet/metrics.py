"""Test and validation metrics, their direction, and the default metric of each task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlfleet.errors import MlfleetError


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    greater_is_better: bool
    needs_proba: bool = False

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats score ``b``."""
        return a > b if self.greater_is_better else a < b


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", True),
        Metric("f1", "classification", True),
        Metric("roc_auc", "classification", True, needs_proba=True),
        Metric("log_loss", "classification", False, needs_proba=True),
        Metric("rmse", "regression", False),
        Metric("mae", "regression", False),
        Metric("r2", "regression", True),
    )
}
DEFAULT_METRIC = {"classification": "f1", "regression": "rmse"}


def finite(value) -> float | None:
    """``value`` as a float, or None when it is missing or not finite (NaN, inf): what the stores accept."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def finite_only(values: dict[str, float | None]) -> dict[str, float]:
    """The entries of ``values`` that are finite numbers (MLflow refuses NaN; a missing score is no metric)."""
    return {k: v for k, v in ((k, finite(v)) for k, v in values.items()) if v is not None}


def task_metrics(task: str) -> tuple[str, ...]:
    return tuple(name for name, m in METRICS.items() if m.task == task)


def resolve_metric(name: str, task: str) -> Metric:
    """The metric ``name`` (empty: the task's default); raises MlfleetError if it does not fit."""
    name = name or DEFAULT_METRIC[task]
    metric = METRICS.get(name)
    if metric is None or metric.task != task:
        raise MlfleetError(f"metric {name!r} does not fit a {task} task; use one of {', '.join(task_metrics(task))}")
    return metric


def score_all(
    task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int = 0
) -> dict[str, float]:
    """Every metric of ``task``; probability metrics are NaN when ``proba`` is None."""
    from sklearn import metrics as skm

    if task == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "r2": float(skm.r2_score(y_true, y_pred)),
        }
    scores = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1": float(skm.f1_score(y_true, y_pred, average="macro")),
        "roc_auc": float("nan"),
        "log_loss": float("nan"),
    }
    if proba is not None:
        labels = np.arange(max(n_classes, proba.shape[1]))
        scores["log_loss"] = float(skm.log_loss(y_true, proba, labels=labels))
        if len(np.unique(y_true)) > 1:
            scores["roc_auc"] = float(
                skm.roc_auc_score(y_true, proba[:, 1])
                if proba.shape[1] == 2
                else skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
            )
    return scores


def score_one(
    metric: Metric, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int = 0
) -> float:
    """One metric (what a tuning trial optimises)."""
    return score_all(metric.task, y_true, y_pred, proba, n_classes)[metric.name]


def predict_with_proba(model, X, task: str):
    """``(predictions, probabilities or None)`` of a fitted estimator or pipeline.

    One rule for classification: a model with probabilities predicts the class of the highest
    (``classes_[argmax]``), what a soft vote of it serves, so that scores measure the served
    predictions (``SVC(probability=True).predict`` can disagree with its own probabilities).
    A model without them, and regression, predict with ``predict``.
    """
    if task != "classification" or not hasattr(model, "predict_proba"):
        return model.predict(X), None
    proba = model.predict_proba(X)
    classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])))
    return classes[proba.argmax(axis=1)], proba


#: resamples and seed of the promotion gate's paired bootstrap
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Comparison:
    """Two models scored on the same rows, and the paired bootstrap of their difference.

    ``diff`` is ``challenger - champion`` in the better direction (positive: the challenger
    is better, whatever the metric's sense); ``low``/``high`` bound its 95% interval;
    ``p_value`` is the two-sided share of resamples on the other side of zero.
    """

    metric: str
    challenger: float
    champion: float
    diff: float
    low: float
    high: float
    p_value: float
    n_rows: int
    resamples: int
    seed: int

    @property
    def clear_win(self) -> bool:
        """The 95% interval of the difference lies above zero: the challenger is better beyond noise."""
        return self.low > 0

    def sentence(self) -> str:
        return (
            f"{self.metric} {self.challenger:.4f} against the champion's {self.champion:.4f} on the same "
            f"{self.n_rows} gate rows (half of the test split), difference {self.diff:+.4f} "
            f"(95% interval {self.low:+.4f} to {self.high:+.4f}, "
            f"p={self.p_value:.3f}, paired bootstrap of {self.resamples} resamples)"
        )

    def tags(self) -> dict[str, str]:
        """What the model version records about the gate."""
        return {
            "gate.metric": self.metric,
            "gate.challenger_score": repr(self.challenger),
            "gate.champion_score": repr(self.champion),
            "gate.diff": repr(self.diff),
            "gate.ci_low": repr(self.low),
            "gate.ci_high": repr(self.high),
            "gate.p_value": repr(self.p_value),
            "gate.n_rows": str(self.n_rows),
            "gate.resamples": str(self.resamples),
            "gate.seed": str(self.seed),
        }


def paired_bootstrap(
    metric: Metric,
    y_true: np.ndarray,
    challenger: tuple[np.ndarray, np.ndarray | None],
    champion: tuple[np.ndarray, np.ndarray | None],
    *,
    n_classes: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Compare two models' ``(predictions, probabilities)`` on the same rows by a paired bootstrap.

    Each resample draws the rows with replacement, once for both models, and scores both on
    it; the differences give the interval (2.5th to 97.5th percentile). Resamples on which the
    metric is undefined (a single class for roc_auc) are left out.
    """
    y_true = np.asarray(y_true)
    sign = 1.0 if metric.greater_is_better else -1.0

    def score(rows, pred_proba) -> float:
        pred, proba = pred_proba
        return score_one(metric, y_true[rows], pred[rows], None if proba is None else proba[rows], n_classes)

    everything = np.arange(len(y_true))
    a, b = score(everything, challenger), score(everything, champion)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        d = sign * (score(rows, challenger) - score(rows, champion))
        if np.isfinite(d):
            diffs.append(d)
    diffs = np.asarray(diffs)
    low, high = np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (np.nan, np.nan)
    p = 2 * min(float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))) if len(diffs) else 1.0
    return Comparison(
        metric.name, a, b, sign * (a - b), float(low), float(high), min(1.0, p), len(y_true), resamples, seed
    )
