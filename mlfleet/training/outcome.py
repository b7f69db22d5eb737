"""What a sweep's models share (:class:`SweepSpec`), what each comes to (:class:`Outcome`), and its row.

A model's row is built here from its tuned model, from its finished MLflow run (a row lost
between the two stores is rebuilt from the run), or from its failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from mlfleet.metrics import finite, resolve_metric
from mlfleet.stores import runs
from mlfleet.stores.recorder import ModelRecorder
from mlfleet.stores.rows import CLASSIFICATION_METRICS, REGRESSION_METRICS, ResultRow
from mlfleet.training.jobs import ModelJob
from mlfleet.training.labels import classes_json
from mlfleet.training.tuning import TunedModel
from mlfleet.zoo import family

#: a test seam for failure handling: models whose ids are listed here (comma-separated) raise
FAIL_ENV = "MLFLEET_FAIL_MODEL_IDS"


@dataclass(frozen=True)
class SweepSpec:
    """What every model of a sweep shares, sent once with each task (the rows are the driver's to write)."""

    recorder: ModelRecorder
    metric: str
    n_trials: int
    dataset: str
    dataset_digest: str
    classes: tuple = ()  # the original labels of the codes the models predict (classification)

    @property
    def tracking(self) -> runs.TrackingContext:
        return self.recorder.tracking

    @property
    def fail_ids(self) -> frozenset[int]:
        """The test seam, as the driver read it (:data:`FAIL_ENV`)."""
        return self.tracking.settings.fail_model_ids

    @property
    def sweep_id(self) -> str:
        return self.tracking.sweep_id


@dataclass(frozen=True)
class Outcome:
    """A model's row and what it cost: seconds spent logging (MLflow + Delta), CPU-seconds of its work and task.

    ``detail`` is a failed model's full traceback; ``notes`` what it logged or warned on
    the way (the driver's log shows them: Ray does not forward a worker's output).
    """

    row: ResultRow
    tracking_s: float
    cpu_s: float  # process CPU-seconds of tuning and fitting: the model's work
    started: float
    finished: float
    delta_s: float = 0.0
    resumed: bool = False  # complete before this run of the sweep (resume): no cost of this run
    task_cpu_s: float = 0.0  # process CPU-seconds of the whole task: the work, its run, model and row
    detail: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def tuned_row(
    job: ModelJob,
    spec: SweepSpec,
    task: str,
    tuned: TunedModel,
    *,
    started: datetime,
    node: str,
    run_id: str,
    model_uri: str,
) -> ResultRow:
    """The FINISHED row of a model that trained and logged."""
    scores = {k: finite(v) for k, v in tuned.test_metrics.items()}
    return _row(
        job,
        spec,
        task,
        started=started,
        node=node,
        device=tuned.device,
        run_id=run_id,
        model_uri=model_uri,
        model_type=tuned.model_type,
        n_features=tuned.n_features,
        params=tuned.best_params,
        score=finite(tuned.score),
        val_score=finite(tuned.best_val_score),
        scores=scores,
        tuning_s=tuned.tuning_s,
        train_s=tuned.train_s,
    )


def failed_row(
    job: ModelJob,
    spec: SweepSpec,
    task: str,
    error: str,
    *,
    run_id: str = "",
    node: str = "",
    started: datetime | None = None,
    device: str = "",
    status: str = "FAILED",
) -> ResultRow:
    """The FAILED row of a model, saying ``error`` (``status`` SKIPPED: a time budget ended before its first trial)."""
    row = _row(
        job,
        spec,
        task,
        started=started or _now(),
        node=node,
        device=device or ("gpu" if job.gpus > 0 else "cpu"),
        run_id=run_id,
        model_type=family(job.family).model_type(task),
        error=error,
    )
    return replace(row, status=status)


def row_from_run(run, job: ModelJob, spec: SweepSpec, task: str, *, node: str = "") -> ResultRow:
    """The row a finished model run stands for, rebuilt from what the run logged."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    n_features = params.get("n_features")
    return _row(
        job,
        spec,
        task,
        metric_name=params.get("primary_metric") or "",
        started=datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc),
        finished=datetime.fromtimestamp((run.info.end_time or run.info.start_time) / 1000, timezone.utc),
        node=tags.get("node", node),
        device=tags.get("device", "gpu" if job.gpus > 0 else "cpu"),
        run_id=run.info.run_id,
        model_uri=tags[runs.MODEL_URI_TAG],
        model_type=tags.get("model_type", family(job.family).model_type(task)),
        n_features=int(n_features) if n_features else None,
        params_json=tags.get(runs.PARAMS_TAG, "{}"),
        score=finite(metrics.get("score")),
        val_score=finite(
            metrics.get(f"best_val_{params.get('primary_metric') or resolve_metric(spec.metric, task).name}")
        ),
        scores={k: finite(metrics.get(k)) for k in CLASSIFICATION_METRICS + REGRESSION_METRICS},
        tuning_s=metrics.get("tuning_s"),
        train_s=metrics.get("train_s"),
    )


def _row(
    job: ModelJob,
    spec: SweepSpec,
    task: str,
    *,
    started: datetime,
    node: str,
    device: str,
    run_id: str,
    model_type: str,
    metric_name: str = "",
    finished: datetime | None = None,
    model_uri: str = "",
    n_features: int | None = None,
    params: dict | None = None,
    params_json: str = "",
    score: float | None = None,
    val_score: float | None = None,
    scores: dict[str, float | None] | None = None,
    tuning_s: float | None = None,
    train_s: float | None = None,
    error: str = "",
) -> ResultRow:
    every = dict.fromkeys(CLASSIFICATION_METRICS + REGRESSION_METRICS)
    every.update(scores or {})
    return ResultRow(
        sweep_id=spec.sweep_id,
        model_id=job.model_id,
        model_type=model_type,
        family=job.family,
        device=device,
        feature_strategy=job.feature_strategy,
        n_features=n_features,
        task=task,
        params_json=params_json or json.dumps(params or {}, sort_keys=True),
        primary_metric=metric_name or resolve_metric(spec.metric, task).name,
        score=score,
        **every,
        n_trials=spec.n_trials,
        tuning_s=tuning_s,
        train_s=train_s,
        cpus=float(job.cpus),
        gpus=float(job.gpus),
        status="FAILED" if error else "FINISHED",
        error=error,
        mlflow_run_id=run_id,
        model_uri=model_uri,
        experiment_id=spec.tracking.experiment_id,
        dataset=spec.dataset,
        dataset_digest=spec.dataset_digest,
        started_at=started,
        finished_at=finished or _now(),
        node=node,
        entry_point=spec.tracking.entry_point,
        val_score=val_score,
        classes_json=classes_json(spec.classes) if task == "classification" else "",
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)
