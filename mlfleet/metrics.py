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
    """``(predictions, probabilities or None)`` of a fitted estimator or pipeline."""
    pred = model.predict(X)
    proba = model.predict_proba(X) if task == "classification" and hasattr(model, "predict_proba") else None
    return pred, proba
