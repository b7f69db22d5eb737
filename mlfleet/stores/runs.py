"""MLflow runs: a command's parent run and each model's nested run, opened, finished, failed, found.

Workers get the tracking URI, experiment id and parent run id explicitly in a
:class:`TrackingContext`; they never inherit ``MLFLOW_RUN_ID`` (a child started from it can
overwrite the parent, see :mod:`mlfleet.settings`). Every parameter and tag is made by
:func:`param` and :func:`tag`, redacted. The commands reach these functions through the
recorder (:mod:`mlfleet.stores.recorder`), analyze's reads through :func:`search_all`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlfleet.errors import MlfleetError
from mlfleet.metrics import finite_only
from mlfleet.redaction import redact
from mlfleet.settings import Settings
from mlfleet.stores import model_format
from mlfleet.stores.store import client as _client
from mlfleet.stores.store import experiment_name

#: tags a sweep's runs carry so that a sweep can be resumed and a row rebuilt from its run
CONFIG_TAG = "mlfleet.config"
MODEL_URI_TAG = "mlfleet.model_uri"
PARAMS_TAG = "mlfleet.params_json"
ATTEMPT_TAG = "mlfleet.attempt"
STALE_TAG = "mlfleet.stale"
#: the artifact holding a model's predictions on the validation rows (from its tuning-time fit)
VALIDATION_PREDICTIONS = "validation_predictions.npy"
#: runs per page of search_runs (MLflow's own ceiling for one page is 50,000)
PAGE = 5000


@dataclass(frozen=True)
class TrackingContext:
    """Everything a worker needs to log a child run, passed explicitly (and picklable)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str
    entry_point: str
    dataset_entity: Any = None
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class ParentRun:
    """A command's parent run and whether this process created it (or ``mlflow run`` did)."""

    context: TrackingContext
    created_here: bool


def param(key: str, value: Any):
    """An MLflow parameter, its value redacted: every parameter this project logs is made here."""
    from mlflow.entities import Param

    return Param(key, redact(str(value))[:6000])


def tag(key: str, value: Any):
    """An MLflow tag, its value redacted (and cut to MLflow's 5000 characters): every tag is made here."""
    from mlflow.entities import RunTag

    return RunTag(key, redact(str(value))[:5000])


def quoted(value: str) -> str:
    """``value`` inside a search filter's single quotes (ids of ours hold none; a quote given is dropped)."""
    return str(value).replace("'", "")


def metric_entities(values: dict[str, float], history: dict[str, Any] | None = None, *, model_id: str | None = None):
    """MLflow metric entities: the finite ``values`` at step 0, and one entry per step of each ``history``.

    With ``model_id`` the step-0 entries also belong to that logged model (its metrics in the
    Models view), as MLflow attaches a run's step-0 metrics to a model logged after them.
    """
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    logged = [Metric(k, v, now, 0, model_id=model_id) for k, v in finite_only(values).items()]
    for name, steps in (history or {}).items():
        logged += [
            Metric(name, float(v), now, step, model_id=model_id if step == 0 else None) for step, v in enumerate(steps)
        ]
    return logged


# -- the parent run ---------------------------------------------------------------------------------


def open_parent(
    *,
    uri: str,
    settings: Settings,
    experiment: str,
    sweep_id: str,
    entry_point: str,
    params: dict[str, str],
    dataset: Any,
    tags: dict[str, str] | None = None,
    role: str = "sweep",
    documents: dict[str, dict] | None = None,
) -> ParentRun:
    """The command's parent run: the one ``mlflow run`` created, or a new one.

    Under ``mlflow run`` the experiment is the run's own and ``experiment`` is ignored. Logs
    the parameters (those ``mlflow run`` did not log already) and tags; what the command
    resolved (the task, the metric) goes into tags, since parameters cannot change.
    ``documents`` are JSON artifacts of the run (``columns.json``: the column plan).
    """
    client = _client(uri)
    if settings.run_id:
        run = client.get_run(settings.run_id)
        experiment_id, existing = run.info.experiment_id, run.data.params
    else:
        name = experiment_name(uri, experiment, settings)
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else client.create_experiment(name)
        run = client.create_run(experiment_id, run_name=sweep_id, tags={"entry_point": entry_point})
        existing = {}
    client.log_batch(
        run.info.run_id,
        params=[param(k, v) for k, v in params.items() if k not in existing],
        tags=[
            tag("sweep_id", sweep_id),
            tag("entry_point", entry_point),
            tag("mlfleet.role", role),
            tag("mlflow.runName", sweep_id),  # `mlflow run` named it at random: the sweep id names it
            *(tag(k, v) for k, v in (tags or {}).items()),
        ],
    )
    if dataset is not None:
        log_dataset(client, run.info.run_id, dataset)
    for name, content in (documents or {}).items():
        client.log_dict(run.info.run_id, content, name)
    context = TrackingContext(uri, experiment_id, run.info.run_id, sweep_id, entry_point, dataset, settings)
    return ParentRun(context, created_here=not settings.run_id)


def find_sweep(uri: str, sweep_id: str):
    """The parent run of sweep ``sweep_id`` in any experiment of the store; MlfleetError if none."""
    from mlflow.entities import ViewType

    client = _client(uri)
    experiments = [
        e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=50000)
    ]
    query = f"tags.sweep_id = '{quoted(sweep_id)}' and tags.`mlfleet.role` = 'sweep'"
    found = client.search_runs(experiments, query, max_results=2) if experiments else []
    if not found:
        raise MlfleetError(
            f"resume={sweep_id}: no sweep with that id in the tracking store {redact(uri)}; "
            "pass the sweep id printed at the start of the sweep (also the parent run's sweep_id tag)"
        )
    return found[0]


def reopen_parent(uri: str, settings: Settings, parent, *, entry_point: str, dataset: Any) -> ParentRun:
    """Continue the sweep of parent run ``parent``: it is RUNNING again and this process ends it.

    Under ``mlflow run`` the run that command created is nested under the sweep's parent
    (role ``resume``), so the UI shows each resume beside the models it trained.
    """
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = _client(uri)
    info = parent.info
    sweep_id = parent.data.tags["sweep_id"]
    resumes = int(parent.data.tags.get("mlfleet.resumes", "0")) + 1
    if settings.run_id and settings.run_id != info.run_id:
        client.log_batch(
            settings.run_id,
            tags=[
                tag(MLFLOW_PARENT_RUN_ID, info.run_id),
                tag("mlfleet.role", "resume"),
                tag("mlfleet.resumes", sweep_id),
            ],
        )
    client.update_run(info.run_id, status="RUNNING")
    client.log_batch(info.run_id, tags=[tag("mlfleet.resumes", str(resumes)), tag("mlfleet.outcome", "resumed")])
    context = TrackingContext(uri, info.experiment_id, info.run_id, sweep_id, entry_point, dataset, settings)
    return ParentRun(context, created_here=True)


def close_parent(
    parent: ParentRun, *, metrics: dict[str, float], artifacts: list[Path], failed: bool, tags=None
) -> None:
    """Log the command's figures, tags and files on the parent run and end it (when this process made it).

    Under ``mlflow run`` the parent's status follows the process's exit code.
    """
    ctx = parent.context
    client = _client(ctx.tracking_uri)
    outcome = "some models failed" if failed else "all models succeeded"
    every = {"mlfleet.outcome": outcome, **(tags or {})}
    client.log_batch(ctx.parent_run_id, metrics=metric_entities(metrics), tags=[tag(k, v) for k, v in every.items()])
    for path in artifacts:
        client.log_artifact(ctx.parent_run_id, str(path))
    if parent.created_here:
        client.set_terminated(ctx.parent_run_id, "FAILED" if failed else "FINISHED")


def abort_parent(parent: ParentRun, reason: str) -> None:
    """End a parent run this process created as FAILED (or KILLED on an interrupt)."""
    client = _client(parent.context.tracking_uri)
    client.log_batch(parent.context.parent_run_id, tags=[tag("mlfleet.outcome", redact(reason))])
    if parent.created_here:
        client.set_terminated(parent.context.parent_run_id, "KILLED" if reason == "interrupted" else "FAILED")


def close_open(ctx: TrackingContext, run_ids: list[str], reason: str, status: str = "FAILED") -> None:
    """End every run of ``run_ids`` still RUNNING with ``status`` and the ``error`` tag ``reason``.

    Best effort: the driver is already failing, and one more error would hide the first.
    """
    client = _client(ctx.tracking_uri)
    for run_id in run_ids:
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.log_batch(run_id, tags=[tag("error", reason)])
                client.set_terminated(run_id, status)
        except Exception:  # noqa: S112 - the store itself may be what failed
            continue


# -- a model's run ----------------------------------------------------------------------------------


def start(
    ctx: TrackingContext, *, run_name: str, tags: dict[str, str], previous: str = "", attempt: int = 1, role="model"
) -> str:
    """Create a model's nested run (RUNNING, so the UI shows it while it trains).

    ``previous`` is the run of an earlier attempt at this model (a task whose worker died): a
    run that logged nothing yet is reused, so the model keeps one run; one that got part way
    is marked stale and a new run is created.
    """
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = _client(ctx.tracking_uri)
    if previous:
        earlier = client.get_run(previous)
        if earlier.info.status != "FINISHED" and not _logged_anything(earlier):
            client.update_run(previous, status="RUNNING")
            client.log_batch(previous, tags=[tag(ATTEMPT_TAG, str(attempt))])
            return previous
        if earlier.info.status != "FINISHED":
            mark_stale(ctx, previous, f"its worker died; attempt {attempt} logs a new run")
    all_tags = {
        MLFLOW_PARENT_RUN_ID: ctx.parent_run_id,
        "sweep_id": ctx.sweep_id,
        "entry_point": ctx.entry_point,
        "mlfleet.role": role,
        ATTEMPT_TAG: str(attempt),
        **tags,
    }
    made = {k: tag(k, v).value for k, v in all_tags.items()}  # text, redacted: every tag is made by tag()
    return client.create_run(ctx.experiment_id, run_name=run_name, tags=made).info.run_id


def _logged_anything(run) -> bool:
    """Whether a model's run got as far as logging: its dataset (which comes first), model or parameters."""
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    outputs = run.outputs.model_outputs if run.outputs is not None else []
    return bool(inputs or outputs or run.data.params)


def finish(
    ctx: TrackingContext,
    run_id: str,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    history: dict[str, Any],
    tags: dict[str, str],
    model: Any,
    input_example: Any,
    name: str = "model",
    validation_predictions: np.ndarray | None = None,
    trusted: list[str] | None = None,
) -> str:
    """Log a model's params, metrics, search history and pipeline (logged as ``name``); end the run FINISHED.

    Returns the logged model's URI. ``history`` maps a metric name to one value per step (a
    tuning trial), so the UI draws the search curve. Parameters, metrics and tags go on in
    one batch after the model, the metrics carrying its id: logged before it, MLflow would
    read each metric's history back to attach it. ``validation_predictions`` (the model's
    predictions on the validation rows from its tuning-time fit) are kept as
    :data:`VALIDATION_PREDICTIONS`, what ensemble selection reads. ``trusted``: the types the model
    holds, when known already (a vote of logged models): neither found anew nor served again.
    """
    import mlflow

    client = _client(ctx.tracking_uri)
    if ctx.dataset_entity is not None:
        log_dataset(client, run_id, ctx.dataset_entity)
    mlflow.set_tracking_uri(ctx.tracking_uri)
    logged = model_format.LoggedAs(
        name=name,
        # the model's source is the entry point, not the Ray worker process that logged it
        tags={"mlflow.source.name": ctx.entry_point, "mlflow.source.type": "PROJECT", "sweep_id": ctx.sweep_id},
        params={k: str(v) for k, v in params.items()},
    )
    check = trusted is None and model_format.first_of_its_kind(model, input_example)
    with mlflow.start_run(run_id=run_id):
        try:
            trusted = trusted or model_format.trusted_types(model, cached=True)
            info = model_format.log_pipeline(model, input_example, logged, trusted, check_serving=check)
        except mlflow.exceptions.MlflowException as exc:
            if "untrusted types" not in str(exc):
                raise
            _drop_models(client, ctx, run_id, failed_only=True)  # the first attempt left a FAILED logged model
            trusted = model_format.trusted_types(model)
            info = model_format.log_pipeline(model, input_example, logged, trusted, check_serving=check)
        if validation_predictions is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / VALIDATION_PREDICTIONS
                np.save(path, np.asarray(validation_predictions, dtype=np.float32))
                client.log_artifact(run_id, str(path))
        client.log_batch(
            run_id,
            metrics=metric_entities(metrics, history, model_id=info.model_id),
            params=[param(k, str(v)) for k, v in params.items()],
            # the model URI: what a row rebuilt from this run points to
            tags=[tag(k, str(v)) for k, v in {**tags, MODEL_URI_TAG: info.model_uri}.items()],
        )
    return info.model_uri


def evaluate(ctx: TrackingContext, run_id: str, model_uri: str, data, *, targets: str, model_type: str) -> dict:
    """``mlflow.models.evaluate`` of ``model_uri`` on ``data`` into run ``run_id``; returns its metrics."""
    import mlflow

    mlflow.set_tracking_uri(ctx.tracking_uri)
    with mlflow.start_run(run_id=run_id), model_format.ignore_integer_schema_hint():
        result = mlflow.models.evaluate(
            model_uri,
            data,
            targets=targets,
            model_type=model_type,
            evaluators="default",
            evaluator_config={"log_model_explainability": False},
        )
    return dict(result.metrics)


def fail(ctx: TrackingContext, run_id: str, error: str, detail: str = "") -> None:
    """End a model's run FAILED: ``error`` (one line) becomes its ``error`` tag, ``detail`` its ``error.txt``."""
    import mlflow

    if mlflow.active_run() is not None:  # a log_model that raised leaves its run active here
        mlflow.end_run("FAILED")
    client = _client(ctx.tracking_uri)
    client.log_batch(run_id, tags=[tag("error", error)])
    if detail:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "error.txt"
            path.write_text(redact(detail), encoding="utf-8")
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FAILED")


def mark_stale(ctx: TrackingContext, run_id: str, why: str, *, end: bool = True) -> None:
    """Tag an earlier attempt's run as superseded, saying why, and (``end``) end it FAILED.

    Analyses leave stale runs out: the model's result is the run that replaced it. A model
    that run had begun logging (a worker killed while saving it) leaves the Models view, so
    the view holds one model per model of the fleet.
    """
    client = _client(ctx.tracking_uri)
    client.log_batch(run_id, tags=[tag(STALE_TAG, why)])
    _drop_models(client, ctx, run_id)
    if end:
        client.set_terminated(run_id, "FAILED")


def log_figures(
    ctx: TrackingContext, run_id: str, *, metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None
) -> None:
    """Add finite ``metrics`` and ``tags`` to a run, finished or not (a member's weight comes after the vote)."""
    entities = metric_entities(metrics or {})
    if entities or tags:
        _client(ctx.tracking_uri).log_batch(run_id, metrics=entities, tags=[tag(k, v) for k, v in (tags or {}).items()])


def log_nested(
    ctx: TrackingContext, *, name: str, tags: dict[str, str], metrics: dict[str, float], history: dict[str, list[float]]
) -> str:
    """A finished nested run under the parent, with ``metrics`` and per-step ``history``; returns its id."""
    run_id = start(ctx, run_name=name, tags=tags, role=tags.get("mlfleet.role", "model"))
    client = _client(ctx.tracking_uri)
    client.log_batch(run_id, metrics=metric_entities(metrics, history))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _drop_models(client, ctx: TrackingContext, run_id: str, *, failed_only: bool = False) -> None:
    """Delete the logged models of run ``run_id`` (only those that failed, with ``failed_only``)."""
    for model in client.search_logged_models(
        experiment_ids=[ctx.experiment_id], filter_string=f"source_run_id = '{quoted(run_id)}'"
    ):
        if not failed_only or str(model.status).endswith("FAILED"):
            client.delete_logged_model(model.model_id)


def log_dataset(client, run_id: str, entity) -> None:
    """Link the command's dataset entity to a run (``training`` context)."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = [DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])]
    try:
        client.log_inputs(run_id, inputs)
    except MlflowException as exc:
        # runs logging the same new dataset at once (two fleets, or a fleet's tasks, on a tracking
        # server) race on MLflow's unique key of datasets; the loser finds it there on a second try
        if "unique constraint" not in str(exc).lower():
            raise
        client.log_inputs(run_id, inputs)


# -- finding runs -----------------------------------------------------------------------------------


def get(ctx: TrackingContext, run_id: str):
    return _client(ctx.tracking_uri).get_run(run_id)


def search_all(client, experiment_id: str, filter_string: str) -> list:
    """Every active run of the experiment that matches ``filter_string``, across pages."""
    found, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=PAGE, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def sweep_parents(client, experiment_id: str) -> list:
    """The parent runs of the experiment's sweeps (tagged ``mlfleet.role=sweep``)."""
    return search_all(client, experiment_id, "tags.`mlfleet.role` = 'sweep'")


def sweep_model_runs(client, experiment_id: str, sweep_id: str) -> list:
    """Every model run of sweep ``sweep_id`` (stale ones too)."""
    return search_all(client, experiment_id, f"tags.`mlfleet.role` = 'model' and tags.sweep_id = '{quoted(sweep_id)}'")


def model_runs(ctx: TrackingContext) -> dict[int, list]:
    """The sweep's model runs by model id (several when earlier attempts left stale runs)."""
    by_model: dict[int, list] = {}
    for run in sweep_model_runs(_client(ctx.tracking_uri), ctx.experiment_id, ctx.sweep_id):
        by_model.setdefault(int(run.data.tags["model_id"]), []).append(run)
    return by_model


def validation_predictions(client, run_id: str) -> np.ndarray | None:
    """The model's predictions on the validation rows that its run kept (None when it kept none)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, VALIDATION_PREDICTIONS, tmp)
        except Exception:
            return None
        return np.load(path)
