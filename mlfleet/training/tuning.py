"""One model's Optuna study: tune on train/validation, refit, score on test."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlfleet.data import SPARSE_STRATEGIES, Split, build_preprocessor, build_selector
from mlfleet.metrics import Metric, predict_with_proba, score_all, score_one
from mlfleet.training.jobs import ModelJob
from mlfleet.zoo import family

#: the user attribute of a trial holding what its early stopping found (``{"n_estimators": 137}``)
REFIT_PARAMS = "refit_params"


@dataclass(frozen=True)
class TunedModel:
    """A fitted pipeline (preprocessing, feature strategy, model) and how it was found."""

    pipeline: Any
    best_params: dict[str, Any]
    trial_scores: tuple[float, ...]
    best_val_score: float
    test_metrics: dict[str, float]
    score: float
    n_features: int
    model_type: str
    tuning_s: float
    train_s: float
    cpu_s: float = field(default=0.0)
    device: str = "cpu"
    #: what the estimator measured of itself (the MLP: training samples per second)
    extra_metrics: dict[str, float] = field(default_factory=dict)
    #: the best trial's predictions of the validation rows, by its fit on the training rows alone
    #: (float32): class probabilities, one column per class code 0..k-1, or regression values
    val_predictions: np.ndarray | None = None


def build_pipeline(job: ModelJob, split: Split, params: dict[str, Any], n_jobs: int):
    """The unfitted pipeline of ``job`` with the model's ``params``."""
    from sklearn.pipeline import Pipeline

    fam = family(job.family)
    sparse = fam.sparse and job.feature_strategy in SPARSE_STRATEGIES
    return Pipeline(
        [
            ("prep", build_preprocessor(split.plan, sparse=sparse, seed=job.seed)),
            ("select", build_selector(job.feature_strategy, split.task, job.seed)),
            ("model", fam.build(split.task, params, job.seed, n_jobs)),
        ]
    )


def fit_front(job: ModelJob, split: Split, n_jobs: int):
    """The training and validation rows through preprocessing and feature selection, fitted on training.

    ``fit_transform``, not ``fit`` then ``transform``: target encoding is cross-fitted only in
    ``fit_transform``, so each training row is encoded by folds that did not see its target.
    """
    front = build_pipeline(job, split, {}, n_jobs)[:-1]
    return front.fit_transform(split.X_train, split.y_train), front.transform(split.X_val)


def balance_choice(fam, split: Split) -> bool:
    """Whether the study tunes ``class_weight``: imbalanced classes and a family that can weigh them."""
    if split.task != "classification" or not fam.balance or not split.plan.imbalanced:
        return False
    return fam.balance == "class_weight" or split.n_classes == 2  # XGBoost's weight is for two classes


def balanced(fam, params: dict[str, Any], split: Split) -> dict[str, Any]:
    """``params`` with the tuned ``class_weight`` choice in the family's own terms."""
    choice = params.get("class_weight")
    if choice is None:
        return params
    rest = {k: v for k, v in params.items() if k != "class_weight"}
    if choice != "balanced":
        return rest
    if fam.balance == "scale_pos_weight":
        negatives, positives = np.bincount(split.y_train, minlength=2)[:2]
        return {**rest, "scale_pos_weight": float(negatives) / max(1, int(positives))}
    return {**rest, "class_weight": "balanced"}


def first_trial(fam, split: Split) -> dict[str, Any]:
    """The study's first trial: the family's defaults, and no class weights when the study tunes them."""
    params = fam.defaults(split.task)
    if balance_choice(fam, split):
        params["class_weight"] = "none"
    return params


def class_probabilities(model, pred: np.ndarray, proba: np.ndarray | None, n_classes: int) -> np.ndarray:
    """``proba`` with one column per class code ``0..n_classes-1`` (a class the model never saw reads 0);
    for a model without probabilities, the one-hot of its predictions."""
    if proba is None:
        codes = np.asarray(pred, dtype=int)
        return np.eye(max(n_classes, int(codes.max(initial=0)) + 1), dtype=np.float32)[codes]
    classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])), dtype=int)
    full = np.zeros((len(proba), max(n_classes, int(classes.max()) + 1)), dtype=np.float32)
    full[:, classes] = proba
    return full


def _study(job: ModelJob, split: Split, metric: Metric, n_trials: int, n_jobs: int, fixed: dict[str, Any]):
    """The Optuna study of ``job``'s model on the training rows, scored on validation, and the best
    trial's validation predictions (see :attr:`TunedModel.val_predictions`).

    The first trial is the family's defaults. A family that stops early fits with the validation
    rows and records the parameters that fix its refit as the trial's ``refit_params``. The trials'
    features are this function's: they are gone before the refit makes the features of training
    and validation together (a big table's peak memory); of the predictions, only the latest
    trial's and the best so far are held.
    """
    import optuna

    fam = family(job.family)
    Xt_train, Xt_val = fit_front(job, split, n_jobs)
    balancing = balance_choice(fam, split)
    latest: dict[int, np.ndarray] = {}
    kept: list[np.ndarray] = []

    def objective(trial: optuna.Trial) -> float:
        params = {**fixed, **fam.space(trial, split.task)}
        if balancing:
            params["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
        model = fam.build(split.task, balanced(fam, params, split), job.seed, n_jobs)
        if fam.fit_early is None:
            model.fit(Xt_train, split.y_train)
        else:
            trial.set_user_attr(REFIT_PARAMS, fam.fit_early(model, Xt_train, split.y_train, Xt_val, split.y_val))
        pred, proba = predict_with_proba(model, Xt_val, split.task)
        if split.task == "classification":
            proba = class_probabilities(model, pred, proba, split.n_classes)
        latest.clear()
        latest[trial.number] = proba if proba is not None else np.asarray(pred, dtype=np.float32)
        return score_one(metric, split.y_val, pred, proba, split.n_classes)

    def keep_best(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.COMPLETE and study.best_trial.number == trial.number:
            kept[:] = [latest[trial.number]]

    study = optuna.create_study(direction=metric.direction, sampler=optuna.samplers.TPESampler(seed=job.seed))
    study.enqueue_trial(first_trial(fam, split))
    study.optimize(objective, n_trials=n_trials, callbacks=[keep_best])
    return study, kept[0] if kept else None


def tune_and_fit(
    job: ModelJob, split: Split, metric: Metric, n_trials: int, n_jobs: int = 1, device: str = "cpu"
) -> TunedModel:
    """Run a seeded TPE study of ``n_trials`` on train/validation, refit on both, score on test.

    Preprocessing and feature selection do not depend on the model's parameters, so they
    are fitted once on the training part and every trial fits only the model. A family
    that stops early (boosting, the MLP) watches the validation split in its trials and is
    refitted for the rounds (epochs) its best trial kept, which its logged parameters say
    (``n_estimators``, ``max_iter``, ``epochs``). Raises whatever the estimator raises: the caller
    records it as the model's failure. Warnings are the caller's (see
    :func:`mlfleet.logs.recorded_warnings`).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fam = family(job.family)
    fixed = fam.fixed_params(job.variant)
    if fam.device == "gpu":
        fixed["device"] = device
    np.random.seed(job.seed % 2**32)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    study, val_predictions = _study(job, split, metric, n_trials, n_jobs, fixed)
    t1 = time.perf_counter()
    best = {**fixed, **study.best_params, **study.best_trial.user_attrs.get(REFIT_PARAMS, {})}
    pipeline = build_pipeline(job, split, balanced(fam, best, split), n_jobs).fit(split.X_fit, split.y_fit)
    t2 = time.perf_counter()
    pred, proba = predict_with_proba(pipeline, split.X_test, split.task)
    test_metrics = score_all(split.task, split.y_test, pred, proba, split.n_classes)
    model = pipeline.named_steps["model"]
    return TunedModel(
        pipeline=pipeline,
        best_params={k: v for k, v in best.items() if k != "device"},
        trial_scores=tuple(float(t.value) for t in study.trials if t.value is not None),
        best_val_score=float(study.best_value),
        test_metrics=test_metrics,
        score=test_metrics[metric.name],
        n_features=int(model.n_features_in_),
        model_type=type(model).__name__,
        tuning_s=t1 - t0,
        train_s=t2 - t1,
        cpu_s=time.process_time() - cpu0,
        device=getattr(model, "device_", "cpu"),
        extra_metrics={"samples_per_s": model.samples_per_s_} if hasattr(model, "samples_per_s_") else {},
        val_predictions=val_predictions,
    )


def fit_defaults(job: ModelJob, split: Split, metric: Metric, n_jobs: int = 1) -> TunedModel:
    """The family's known-good defaults fitted on the training rows alone (no study), scored on test.

    What an ensemble's member that does not tune is: the shared validation rows weigh the
    vote, so no member may have seen them.
    """
    fam = family(job.family)
    params = {**fam.fixed_params(job.variant), **fam.defaults(split.task)}
    np.random.seed(job.seed % 2**32)  # mutual-information jitter and the like draw from the global generator
    cpu0, t0 = time.process_time(), time.perf_counter()
    pipeline = build_pipeline(job, split, params, n_jobs).fit(split.X_train, split.y_train)
    train_s = time.perf_counter() - t0
    pred, proba = predict_with_proba(pipeline, split.X_test, split.task)
    test_metrics = score_all(split.task, split.y_test, pred, proba, split.n_classes)
    model = pipeline.named_steps["model"]
    return TunedModel(
        pipeline=pipeline,
        best_params=params,
        trial_scores=(),
        best_val_score=float("nan"),
        test_metrics=test_metrics,
        score=test_metrics[metric.name],
        n_features=int(model.n_features_in_),
        model_type=type(model).__name__,
        tuning_s=0.0,
        train_s=train_s,
        cpu_s=time.process_time() - cpu0,
    )
