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
    """The unfitted pipeline of ``job`` with the model's ``params``: float32 features for a family that
    trains on them as they are (:attr:`~mlfleet.zoo.Family.float32`)."""
    from sklearn.pipeline import Pipeline

    fam = family(job.family)
    sparse = fam.sparse and job.feature_strategy in SPARSE_STRATEGIES
    float32 = split.task in fam.float32
    rows = len(split.y_fit)  # the refit's rows: the trials' front is prepared as the refit is
    return Pipeline(
        [
            ("prep", build_preprocessor(split.plan, sparse=sparse, seed=job.seed, float32=float32, rows=rows)),
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
    return fit_transform_steps(front, split.X_train, split.y_train), front.transform(split.X_val)


def fit_pipeline(pipeline, X, y):
    """``pipeline`` fitted on ``X``, ``y`` step by step, as ``Pipeline.fit`` fits it (:func:`fit_transform_steps`)."""
    pipeline.steps[-1][1].fit(fit_transform_steps(pipeline[:-1], X, y), y)
    return pipeline


def fit_transform_steps(front, X, y):
    """``front.fit_transform(X, y)`` for a pipeline of transformers, but for a variance threshold on dense
    features, which learns each feature's variance a column at a time from the features as they are:
    ``VarianceThreshold.fit`` makes a float64 copy of float32 features and numpy's ``nanvar`` copies
    of that, five times the features, a big table's largest moment. Its variances and the columns it
    keeps are the same.
    """
    from scipy import sparse
    from sklearn.feature_selection import VarianceThreshold

    for _, step in front.steps:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, VarianceThreshold) and step.threshold > 0 and not sparse.issparse(X):
            X = _fit_variance_threshold(step, X)
        else:
            X = step.fit_transform(X, y)
    return X


def _fit_variance_threshold(selector, X: np.ndarray) -> np.ndarray:
    selector.n_features_in_ = X.shape[1]
    selector.variances_ = np.array([np.nanvar(X[:, j], dtype=np.float64) for j in range(X.shape[1])])
    if np.all(~np.isfinite(selector.variances_) | (selector.variances_ <= selector.threshold)):
        raise ValueError(f"No feature in X meets the variance threshold {selector.threshold:.5f}")
    return selector.transform(X)


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


@dataclass(frozen=True)
class Tuning:
    """A model's study so far: its trials, the best one's validation predictions, what it cost.

    Plain data, so that a study can go on in another task (a time budget's next round) from
    where the last one stopped.
    """

    trials: tuple[Any, ...]  # optuna FrozenTrials, in order
    direction: str
    val_predictions: np.ndarray | None
    tuning_s: float
    cpu_s: float

    @property
    def completed(self) -> list[Any]:
        import optuna

        return [t for t in self.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]

    @property
    def best(self) -> Any:
        """The best completed trial (the first of equals); None before any completed."""
        done = self.completed
        if not done:
            return None
        sign = 1.0 if self.direction == "maximize" else -1.0
        return max(done, key=lambda t: (sign * t.value, -t.number))

    @property
    def best_value(self) -> float:
        best = self.best
        return float(best.value) if best is not None else float("nan")

    @property
    def trial_seconds(self) -> float:
        """The mean seconds of a completed trial (what a refit costs, roughly, with more rows)."""
        done = self.completed
        spans = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done if t.datetime_complete]
        return float(np.mean(spans)) if spans else 0.0


def tune(
    job: ModelJob,
    split: Split,
    metric: Metric,
    n_trials: int,
    *,
    n_jobs: int = 1,
    device: str = "cpu",
    previous: Tuning | None = None,
    deadline: float | None = None,
    first_by: float | None = None,
) -> Tuning:
    """``n_trials`` more trials of ``job``'s study on the training rows, scored on validation.

    The first trial of a study is the family's defaults. ``previous`` is the study so far (its
    trials seed the sampler; its best validation predictions stand until a better trial comes).
    With ``deadline`` (epoch seconds) no trial starts after it; a study's first trial (its defaults)
    may start until ``first_by`` (default: ``deadline``), so that a budget's first round that Ray
    started late still leaves its model something to refit. A family that stops early fits
    with the validation rows and records the parameters that fix its refit as the trial's
    ``refit_params``. The trials' features are this function's: they are gone before a refit
    makes the features of training and validation together (a big table's peak memory).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fam = family(job.family)
    fixed = _fixed(fam, job, device)
    cpu0, t0 = time.process_time(), time.perf_counter()
    Xt_train, Xt_val = fit_front(job, split, n_jobs)
    balancing = balance_choice(fam, split)
    latest: dict[int, np.ndarray] = {}
    kept: list[np.ndarray] = [previous.val_predictions] if previous is not None else []

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

    done = len(previous.trials) if previous is not None else 0
    # a sampler seeded anew each round would draw the same points again: the round moves the seed
    sampler = optuna.samplers.TPESampler(seed=job.seed + done)
    study = optuna.create_study(direction=metric.direction, sampler=sampler)
    if previous is not None:
        study.add_trials(previous.trials)
    else:
        study.enqueue_trial(first_trial(fam, split))
        first_by = deadline if first_by is None else first_by
        if first_by is None or time.time() < first_by:
            study.optimize(objective, n_trials=1, callbacks=[keep_best])
            n_trials -= 1
    if n_trials > 0:
        timeout = None if deadline is None else max(0.0, deadline - time.time())
        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=[keep_best])
    # The trials' features go now, not with this frame: the first study in a process imports optuna's
    # optional parts, and the ImportError optuna keeps (no redis) holds this frame in its traceback
    # for the process's life, a worker's first model's features with it.
    Xt_train = Xt_val = None  # noqa: F841 (the closure's cells)
    latest.clear()
    return Tuning(
        trials=tuple(t for t in study.trials if t.state != optuna.trial.TrialState.WAITING),  # ran, or failed
        direction=metric.direction,
        val_predictions=kept[0] if kept else None,
        tuning_s=(previous.tuning_s if previous else 0.0) + time.perf_counter() - t0,
        cpu_s=(previous.cpu_s if previous else 0.0) + time.process_time() - cpu0,
    )


def _fixed(fam, job: ModelJob, device: str) -> dict[str, Any]:
    fixed = fam.fixed_params(job.variant)
    if fam.device == "gpu":
        fixed["device"] = device
    return fixed


def refit(
    job: ModelJob, split: Split, metric: Metric, tuning: Tuning, *, n_jobs: int = 1, device: str = "cpu"
) -> TunedModel:
    """The best trial of ``tuning`` refitted on training and validation rows, scored on test.

    A family that stops early grows the rounds (epochs) its best trial kept, which its logged
    parameters say (``n_estimators``, ``max_iter``, ``epochs``). Raises ValueError when the
    study has no completed trial.
    """
    fam = family(job.family)
    trial = tuning.best
    if trial is None:
        raise ValueError(f"model {job.model_id} has no completed trial to refit")
    fixed = _fixed(fam, job, device)
    best = {**fixed, **trial.params, **trial.user_attrs.get(REFIT_PARAMS, {})}
    np.random.seed(job.seed % 2**32)
    cpu0, t1 = time.process_time(), time.perf_counter()
    pipeline = fit_pipeline(build_pipeline(job, split, balanced(fam, best, split), n_jobs), split.X_fit, split.y_fit)
    t2 = time.perf_counter()
    pred, proba = predict_with_proba(pipeline, split.X_test, split.task)
    test_metrics = score_all(split.task, split.y_test, pred, proba, split.n_classes)
    model = pipeline.named_steps["model"]
    return TunedModel(
        pipeline=pipeline,
        best_params={k: v for k, v in best.items() if k != "device"},
        trial_scores=tuple(float(t.value) for t in tuning.trials if t.value is not None),
        best_val_score=tuning.best_value,
        test_metrics=test_metrics,
        score=test_metrics[metric.name],
        n_features=int(model.n_features_in_),
        model_type=type(model).__name__,
        tuning_s=tuning.tuning_s,
        train_s=t2 - t1,
        cpu_s=tuning.cpu_s + time.process_time() - cpu0,
        device=getattr(model, "device_", "cpu"),
        extra_metrics={"samples_per_s": model.samples_per_s_} if hasattr(model, "samples_per_s_") else {},
        val_predictions=tuning.val_predictions,
    )


def tune_and_fit(
    job: ModelJob, split: Split, metric: Metric, n_trials: int, n_jobs: int = 1, device: str = "cpu"
) -> TunedModel:
    """Run a seeded TPE study of ``n_trials`` on train/validation (:func:`tune`), refit on both, score on test
    (:func:`refit`).

    Preprocessing and feature selection do not depend on the model's parameters, so they are
    fitted once on the training part and every trial fits only the model. Raises whatever the
    estimator raises: the caller records it as the model's failure. Warnings are the caller's
    (see :func:`mlfleet.logs.recorded_warnings`).
    """
    np.random.seed(job.seed % 2**32)
    tuning = tune(job, split, metric, n_trials, n_jobs=n_jobs, device=device)
    return refit(job, split, metric, tuning, n_jobs=n_jobs, device=device)


def fit_defaults(job: ModelJob, split: Split, metric: Metric, n_jobs: int = 1) -> TunedModel:
    """The family's known-good defaults fitted on the training rows alone (no study), scored on test.

    What an ensemble's member that does not tune is: the shared validation rows weigh the
    vote, so no member may have seen them.
    """
    fam = family(job.family)
    params = {**fam.fixed_params(job.variant), **fam.defaults(split.task)}
    np.random.seed(job.seed % 2**32)  # mutual-information jitter and the like draw from the global generator
    cpu0, t0 = time.process_time(), time.perf_counter()
    pipeline = fit_pipeline(build_pipeline(job, split, params, n_jobs), split.X_train, split.y_train)
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
