"""The MLflow side: the sweep's parent run, one nested run per model, model logging.

The driver makes the store ready (schema, experiment, parent run) before any worker starts,
because several processes creating a fresh sqlite store at once fail. Workers get the
tracking URI, experiment id and parent run id explicitly in a :class:`TrackingContext`;
they never inherit ``MLFLOW_RUN_ID`` (a child started from it can overwrite the parent).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mlfleet.errors import MlfleetError, first_line
from mlfleet.metrics import finite_only
from mlfleet.redaction import redact

#: environment variables that ``mlflow run`` sets for the run it created; workers must not see them
RUN_ENV = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
DEFAULT_EXPERIMENT = "mlfleet"
#: module prefixes whose types a logged pipeline may hold (skops loads nothing else)
TRUSTED_MODULES = (
    "sklearn.",
    "xgboost.",
    "lightgbm.",
    "numpy.",
    "scipy.",
    "builtins.",
    "mlfleet.zoo._mlp.",
    "mlfleet.data._dates.",
)
#: single types outside those modules that a logged pipeline may hold (a LightGBM model's parameters)
TRUSTED_TYPES = ("collections.OrderedDict",)
#: our own estimators (the MLP) travel with the model, so it loads where mlfleet is not installed
OWN_CODE = str(Path(__file__).resolve().parents[1])
#: seconds a tracking server gets to answer at start
STORE_TIMEOUT_S = 5.0
#: MLflow's HTTP retry settings unless the user set them: a server that went away costs a
#: model about 15 s of retries (MLflow's defaults: 7 retries with backoff, minutes per call)
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
#: tags a sweep's runs carry so that a sweep can be resumed and a row rebuilt from its run
CONFIG_TAG = "mlfleet.config"
MODEL_URI_TAG = "mlfleet.model_uri"
PARAMS_TAG = "mlfleet.params_json"
ATTEMPT_TAG = "mlfleet.attempt"
STALE_TAG = "mlfleet.stale"


@dataclass(frozen=True)
class TrackingContext:
    """Everything a worker needs to log a child run, passed explicitly (and picklable)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str
    entry_point: str
    dataset_entity: Any = None


@dataclass(frozen=True)
class SweepRun:
    """The parent run of a sweep and whether this process created it (or ``mlflow run`` did)."""

    context: TrackingContext
    created_here: bool


def clear_run_env() -> None:
    """Remove the variables ``mlflow run`` set for its run from this process (and the workers it starts).

    A child run started from ``MLFLOW_RUN_ID`` can overwrite the parent; every process that
    logs a model's run calls this first, and the driver once it has read them.
    """
    for key in RUN_ENV:
        os.environ.pop(key, None)


def _metrics(values: dict[str, float], history: dict[str, Any] | None = None, *, model_id: str | None = None) -> list:
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


#: tracking and registry URIs without ``://`` that name a service, not a folder
SERVICE_URIS = ("databricks", "databricks-uc", "uc")


def tracking_uri() -> str:
    """The tracking URI in force (``MLFLOW_TRACKING_URI`` or MLflow's default), local paths made absolute.

    A relative ``sqlite:///mlflow.db`` means different files to processes with another
    working directory, so it is resolved here, once, by the driver; so is a bare folder.
    Every other form (``databricks``, ``databricks://PROFILE``, ``http(s)://``, a database
    URI) reaches MLflow untouched.
    """
    import mlflow

    return absolute_store_uri(mlflow.get_tracking_uri())


def absolute_store_uri(uri: str) -> str:
    """``uri`` with a relative sqlite path or a bare folder made absolute; anything else as it is."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    if "://" in uri or uri.split(":", 1)[0] in SERVICE_URIS:
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def limit_http_retries() -> None:
    """Bound MLflow's HTTP retries in this process (and the local Ray it starts), unless set."""
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)


def probe_server(uri: str) -> None:
    """For a tracking server: check that it answers, in seconds. Bounds MLflow's HTTP retries.

    MLflow's client retries a dead server for minutes; one direct probe answers in
    seconds. Bounding the retries here, in the driver, also bounds them in a local Ray
    started after it. Raises MlfleetError when the server does not answer.

    A URI carrying credentials (``https://user:password@host``) also turns off the run and
    experiment links MLflow prints when a run ends: they repeat the URI as it is.
    """
    limit_http_retries()
    if redact(uri) != uri:
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if uri.split(":", 1)[0] in ("databricks", "databricks-uc"):
        _check_databricks(uri)
        return
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=STORE_TIMEOUT_S).raise_for_status()
    except Exception as exc:
        raise _store_error(uri, exc) from None
    _check_credentials(uri)


def _check_credentials(uri: str) -> None:
    """One read with this process's credentials: a server with authentication that refuses them is one line.

    ``/health`` answers everyone; a wrong password would otherwise surface once Ray runs.
    """
    try:
        _client(uri).search_experiments(max_results=1)
    except Exception as exc:
        text = str(exc)
        if not any(code in text for code in ("401", "403", "Unauthorized", "PERMISSION_DENIED", "UNAUTHENTICATED")):
            raise _store_error(uri, exc) from None
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
        who = f"the credentials of MLFLOW_TRACKING_USERNAME={user}" if user else "a request without credentials"
        raise MlfleetError(
            f"the MLflow tracking server {redact(uri)} refused {who}; set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account of that server"
        ) from None


def is_databricks(uri: str) -> bool:
    """Whether ``uri`` is Databricks' tracking (``databricks``, ``databricks://PROFILE``)."""
    return uri.split(":", 1)[0] == "databricks"


def experiment_name(uri: str, given: str) -> str:
    """The experiment a command runs in when not under ``mlflow run``: ``given``, the environment's, or mlfleet.

    On Databricks an experiment is a workspace path (``/Users/you@example.com/fleet``); a bare
    name raises MlfleetError saying so, before anything is created.
    """
    name = given or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    if is_databricks(uri) and not name.startswith("/") and not os.environ.get("MLFLOW_RUN_ID"):
        raise MlfleetError(
            f"experiment={name!r}: on Databricks an experiment is a workspace path; "
            f"pass experiment=/Users/<you>/{name.strip('/')} (or a /Shared/... folder)"
        )
    return name


def checked_store(experiment: str) -> str:
    """The tracking URI in force, checked before Ray starts: a dead server, Databricks without a
    workspace or a bare experiment name there is one line (MlfleetError) before anything exists."""
    uri = tracking_uri()
    probe_server(uri)  # workers inherit the retry bounds it sets
    experiment_name(uri, experiment)
    return uri


def _check_databricks(uri: str) -> None:
    """Databricks tracking needs a workspace: say what is missing before anything starts (no network call).

    On a Databricks cluster (``DATABRICKS_RUNTIME_VERSION``) the workspace is known; elsewhere
    ``DATABRICKS_HOST`` or the profile in ``~/.databrickscfg`` names it.
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION") or os.environ.get("DATABRICKS_HOST"):
        return
    profile = uri.partition("://")[2] or os.environ.get("DATABRICKS_CONFIG_PROFILE", "DEFAULT")
    config = Path(os.environ.get("DATABRICKS_CONFIG_FILE", "~/.databrickscfg")).expanduser()
    if config.is_file() and f"[{profile}]" in config.read_text(errors="replace"):
        return
    raise MlfleetError(
        f"MLFLOW_TRACKING_URI={uri} needs a Databricks workspace, but none is configured: set DATABRICKS_HOST and "
        f"DATABRICKS_TOKEN (or run `databricks auth login` for profile {profile}), or run on a Databricks cluster"
    )


def prepare_store(uri: str) -> None:
    """Create the store's schema (a fresh sqlite file) or check that the server answers.

    Raises MlfleetError when the store cannot be reached.
    """
    probe_server(uri)
    try:
        _client(uri).search_experiments(max_results=1)
    except Exception as exc:
        raise _store_error(uri, exc) from None


def _store_error(uri: str, exc: BaseException) -> MlfleetError:
    return MlfleetError(
        f"the MLflow tracking store {redact(uri)} cannot be used: {redact(first_line(exc))}; check MLFLOW_TRACKING_URI"
    )


def open_sweep(
    *,
    uri: str,
    experiment: str,
    sweep_id: str,
    entry_point: str,
    params: dict[str, str],
    dataset: Any,
    tags: dict[str, str] | None = None,
    role: str = "sweep",
    documents: dict[str, dict] | None = None,
) -> SweepRun:
    """The sweep's parent run: the one ``mlflow run`` created, or a new one.

    Under ``mlflow run`` the experiment is the run's own and ``experiment`` is ignored.
    Logs the sweep's parameters (those ``mlflow run`` did not log already) and tags; what the
    sweep resolved (the task, the metric) goes into tags, since parameters cannot change. Removes the
    ``mlflow run`` variables from this process's environment so Ray workers never inherit them.
    ``documents`` are JSON artifacts of the run (``columns.json``: the column plan).
    """
    client = _client(uri)
    env_run_id = os.environ.get("MLFLOW_RUN_ID", "")
    created_here = not env_run_id
    if env_run_id:
        run = client.get_run(env_run_id)
        experiment_id = run.info.experiment_id
        existing = run.data.params
    else:
        name = experiment_name(uri, experiment)
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else client.create_experiment(name)
        run = client.create_run(experiment_id, run_name=sweep_id, tags={"entry_point": entry_point})
        existing = {}
    clear_run_env()

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
        _log_dataset(client, run.info.run_id, dataset)
    for name, content in (documents or {}).items():
        client.log_dict(run.info.run_id, content, name)
    context = TrackingContext(uri, experiment_id, run.info.run_id, sweep_id, entry_point, dataset)
    return SweepRun(context, created_here)


def find_sweep(uri: str, sweep_id: str):
    """The parent run of sweep ``sweep_id`` in any experiment of the store; MlfleetError if none."""
    from mlflow.entities import ViewType

    client = _client(uri)
    experiments = [
        e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=50000)
    ]
    query = f"tags.sweep_id = '{_quoted(sweep_id)}' and tags.`mlfleet.role` = 'sweep'"
    found = client.search_runs(experiments, query, max_results=2) if experiments else []
    if not found:
        raise MlfleetError(
            f"resume={sweep_id}: no sweep with that id in the tracking store {redact(uri)}; "
            "pass the sweep id printed at the start of the sweep (also the parent run's sweep_id tag)"
        )
    return found[0]


def reopen_sweep(uri: str, parent, *, entry_point: str, dataset: Any) -> SweepRun:
    """Continue the sweep of parent run ``parent``: it is RUNNING again and this process ends it.

    Under ``mlflow run`` the run that command created is nested under the sweep's parent
    (role ``resume``), so the UI shows each resume beside the models it trained.
    """
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = _client(uri)
    info = parent.info
    sweep_id = parent.data.tags["sweep_id"]
    resumes = int(parent.data.tags.get("mlfleet.resumes", "0")) + 1
    env_run_id = os.environ.get("MLFLOW_RUN_ID", "")
    if env_run_id and env_run_id != info.run_id:
        client.log_batch(
            env_run_id,
            tags=[
                tag(MLFLOW_PARENT_RUN_ID, info.run_id),
                tag("mlfleet.role", "resume"),
                tag("mlfleet.resumes", sweep_id),
            ],
        )
    clear_run_env()
    client.update_run(info.run_id, status="RUNNING")
    client.log_batch(info.run_id, tags=[tag("mlfleet.resumes", str(resumes)), tag("mlfleet.outcome", "resumed")])
    context = TrackingContext(uri, info.experiment_id, info.run_id, sweep_id, entry_point, dataset)
    return SweepRun(context, created_here=True)


def model_runs(ctx: TrackingContext) -> dict[int, list]:
    """The sweep's model runs by model id (several when earlier attempts left stale runs)."""
    client = _client(ctx.tracking_uri)
    query = f"tags.sweep_id = '{_quoted(ctx.sweep_id)}' and tags.`mlfleet.role` = 'model'"
    by_model: dict[int, list] = {}
    token = None
    while True:
        page = client.search_runs([ctx.experiment_id], query, max_results=1000, page_token=token)
        for run in page:
            by_model.setdefault(int(run.data.tags["model_id"]), []).append(run)
        token = page.token
        if not token:
            return by_model


def get_run(ctx: TrackingContext, run_id: str):
    return _client(ctx.tracking_uri).get_run(run_id)


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


def _quoted(value: str) -> str:
    return value.replace("'", "")


def dataset_entity(X, y, *, name: str, source: str, digest: str, target: str):
    """The MLflow dataset entity of the sweep's data, built once by the driver."""
    import mlflow.data

    frame = X.assign(**{target: y})  # copy-on-write: the rows are not copied
    with ignore_integer_schema_hint():  # the schema is inferred here and in the entity
        dataset = mlflow.data.from_pandas(
            frame, source=redact(source) if "://" in source else None, name=name, targets=target, digest=digest
        )
        return dataset._to_mlflow_entity()


def _log_dataset(client, run_id: str, entity) -> None:
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


#: the pip package a logged model needs when it holds a type of these modules (beyond BASE_REQUIREMENTS)
PACKAGES_BY_MODULE = {
    "xgboost.": "xgboost",
    "lightgbm.": "lightgbm",
    "mlfleet.zoo._mlp.": "torch",
}
BASE_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy")


def model_requirements(trusted: list[str]) -> tuple[str, ...]:
    """Pinned pip requirements of a logged pipeline holding the ``trusted`` types (see :func:`trusted_types`).

    Only what the model holds: a vote of forests needs no XGBoost or PyTorch. Passed
    explicitly, since inferring them costs seconds per model.
    """
    extra = sorted({pkg for t in trusted for prefix, pkg in PACKAGES_BY_MODULE.items() if t.startswith(prefix)})
    return tuple(f"{p}=={version(p)}" for p in (*BASE_REQUIREMENTS, *extra))


def warm_up(ctx: TrackingContext) -> None:
    """Ready this worker process for logging, once, outside any model's timing (see :func:`warm_process`)."""
    warm_process(ctx.tracking_uri)


def warm_process(tracking_uri: str) -> None:
    """Import the model-logging code and open the store, once per process and store.

    Seconds of work: skops imports torch (through scikit-learn's array API support), and a
    sqlite store checks its schema (about a second). Pip requirements are pinned from the
    installed versions, so MLflow's check of them against the installed versions is skipped.
    """
    if tracking_uri in _WARM:
        return
    limit_http_retries()
    import deltalake  # noqa: F401
    import mlflow.pyfunc  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import skops.io  # noqa: F401

    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    _client(tracking_uri).search_experiments(max_results=1)
    _WARM.add(tracking_uri)


_WARM: set[str] = set()


def start_child(
    ctx: TrackingContext, *, run_name: str, tags: dict[str, str], previous: str = "", attempt: int = 1
) -> str:
    """Create the model's nested run (RUNNING, so the UI shows it while it trains).

    ``previous`` is the run of an earlier attempt at this model (a task Ray retried after
    its worker died): a run that logged nothing yet is reused, so the model keeps one run;
    one that got part way is marked stale and a new run is created.
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
        "mlfleet.role": "model",
        ATTEMPT_TAG: str(attempt),
        **tags,
    }
    run = client.create_run(ctx.experiment_id, run_name=run_name, tags=all_tags)
    return run.info.run_id


def _logged_anything(run) -> bool:
    """Whether a model's run got as far as logging: its dataset (which comes first), model or parameters."""
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    outputs = run.outputs.model_outputs if run.outputs is not None else []
    return bool(inputs or outputs or run.data.params)


def finish_child(
    ctx: TrackingContext,
    run_id: str,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    history: dict[str, tuple[float, ...]],
    tags: dict[str, str],
    model: Any,
    input_example: Any,
    name: str = "model",
) -> str:
    """Log the model's params, metrics, search history and pipeline (logged as ``name``); end the run FINISHED.

    Returns the logged model's URI. ``history`` maps a metric name to one value per step
    (a tuning trial), so the UI draws the search curve. Parameters, metrics and tags go on
    in one batch after the model, the metrics carrying its id: logged before it, MLflow
    would read each metric's history back to attach it (a query per metric, per model).
    """
    import mlflow

    client = _client(ctx.tracking_uri)
    if ctx.dataset_entity is not None:
        _log_dataset(client, run_id, ctx.dataset_entity)
    mlflow.set_tracking_uri(ctx.tracking_uri)
    logged = LoggedAs(
        name=name,
        # the model's source is the entry point, not the Ray worker process that logged it
        tags={"mlflow.source.name": ctx.entry_point, "mlflow.source.type": "PROJECT", "sweep_id": ctx.sweep_id},
        params={k: str(v) for k, v in params.items()},
    )
    with mlflow.start_run(run_id=run_id):
        try:
            info = _log_pipeline(model, input_example, logged, trusted_types(model, cached=True))
        except mlflow.exceptions.MlflowException as exc:
            if "untrusted types" not in str(exc):
                raise
            _drop_models(client, ctx, run_id, failed_only=True)  # the first attempt left a FAILED logged model
            info = _log_pipeline(model, input_example, logged, trusted_types(model))
        client.log_batch(
            run_id,
            metrics=_metrics(metrics, history, model_id=info.model_id),
            params=[param(k, str(v)) for k, v in params.items()],
            # the model URI: what a row rebuilt from this run points to
            tags=[tag(k, str(v)) for k, v in {**tags, MODEL_URI_TAG: info.model_uri}.items()],
        )
    return info.model_uri


@dataclass(frozen=True)
class LoggedAs:
    """How a model is logged: its name in the experiment's Models view, requirements, tags and params."""

    name: str
    tags: dict[str, str]
    params: dict[str, str]


def _log_pipeline(model: Any, input_example: Any, logged: LoggedAs, trusted: list[str]):
    """``mlflow.sklearn.log_model`` of ``model`` in skops format, its serving input checked once per kind.

    MLflow checks that the input example can be served by loading the saved model back and
    predicting on it (a failure is only a warning). A worker logs many pipelines of the same
    classes on frames of the same columns, so it checks the first of each kind and skips the
    check for the rest: that reload was the largest part of logging a small model. The skops
    load that checks the trusted types runs for every model.
    """
    from mlflow.models import Model

    kind = _serving_kind(model, input_example)
    with ignore_integer_schema_hint(), compact_skops_schema():
        info = Model.log(
            artifact_path=None,
            name=logged.name,
            flavor=_SKLEARN_FLAVOR,
            sk_model=model,
            input_example=input_example,
            pip_requirements=list(model_requirements(trusted)),
            serialization_format="skops",
            skops_trusted_types=trusted,
            code_paths=[OWN_CODE] if any(t.startswith("mlfleet.") for t in trusted) else None,
            tags=logged.tags,
            params=logged.params,
            validate_serving_input=kind not in _SERVED,
        )
    _SERVED.add(kind)
    return info


#: the kinds of model (classes, input columns and dtypes) whose serving input this process has checked
_SERVED: set[tuple] = set()


def _serving_kind(model: Any, input_example: Any) -> tuple:
    columns = getattr(input_example, "dtypes", None)
    schema = (
        tuple((str(c), str(t)) for c, t in columns.items()) if columns is not None else (type(input_example).__name__,)
    )
    return _shape(model), schema


def _save_sklearn(path, mlflow_model=None, validate_serving_input=True, **kwargs):  # noqa: ARG001 - Model.log's own
    import mlflow.sklearn

    mlflow.sklearn.save_model(path=path, mlflow_model=mlflow_model, **kwargs)


#: ``mlflow.sklearn`` as ``Model.log``'s flavor, taking ``validate_serving_input`` (which only
#: ``Model.log`` reads): the flavor's own ``log_model`` hands it on to ``save_model``, which refuses it
_SKLEARN_FLAVOR = SimpleNamespace(__name__="mlflow.sklearn", save_model=_save_sklearn)


@contextmanager
def compact_skops_schema():
    """skops writes a model's ``schema.json`` without the indentation it asks for.

    skops dumps the schema with ``indent=2``, which Python's JSON encoder can only do in pure
    Python: for a small pipeline nested in its label decoder that is 0.18 MB of JSON and 4x
    its size in spaces, and 20x the time of the C encoder. Loading reads either the same.
    """
    import skops.io._persist as persist

    original = persist.json
    persist.json = _CompactJson
    try:
        yield
    finally:
        persist.json = original


class _CompactJson:
    """The ``json`` module as skops's saving sees it under :func:`compact_skops_schema`."""

    loads = staticmethod(json.loads)
    load = staticmethod(json.load)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        kwargs.pop("indent", None)
        return json.dumps(obj, **kwargs)


@contextmanager
def ignore_integer_schema_hint():
    """MLflow's hint that an inferred schema holds integer columns, filtered by its message.

    Integer columns are kept as integers on purpose: they are what ``pd.read_csv`` gives for
    a whole-number column without missing values (a column with missing values is a double).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Hint: Inferred schema contains integer column", category=UserWarning
        )
        yield


def _drop_models(client, ctx: TrackingContext, run_id: str, *, failed_only: bool = False) -> None:
    """Delete the logged models of run ``run_id`` (only those that failed, with ``failed_only``)."""
    for model in client.search_logged_models(
        experiment_ids=[ctx.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    ):
        if not failed_only or str(model.status).endswith("FAILED"):
            client.delete_logged_model(model.model_id)


def param(key: str, value: Any):
    """An MLflow parameter, its value redacted: every parameter this project logs is made here."""
    from mlflow.entities import Param

    return Param(key, redact(str(value))[:6000])


def tag(key: str, value: Any):
    """An MLflow tag, its value redacted (and cut to MLflow's 5000 characters): every tag is made here."""
    from mlflow.entities import RunTag

    return RunTag(key, redact(str(value))[:5000])


_TRUSTED_BY_SHAPE: dict[tuple, set[str]] = {}


def trusted_types(model: Any, *, cached: bool = False) -> list[str]:
    """The types skops must trust to load ``model``; refuses any outside :data:`TRUSTED_MODULES`
    and :data:`TRUSTED_TYPES`.

    skops is the safe format (pickle executes code on load), and it loads only the types it
    is told to trust: those of our pipelines, all from the libraries above, never a blanket
    allowance. Finding them means serialising the model (a second per large forest), so with
    ``cached`` a worker reuses what it found for pipelines of the same shape. Every type in
    that list is one we trust anyway; should a model of that shape hold one more, MLflow's
    load check at save time says so and the caller asks again uncached, which adds it.
    """
    import skops.io

    shape = _shape(model)
    if cached and shape in _TRUSTED_BY_SHAPE:
        return sorted(_TRUSTED_BY_SHAPE[shape])
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_MODULES) and t not in TRUSTED_TYPES]
    if foreign:
        raise MlfleetError(f"the pipeline holds types outside the trusted libraries: {', '.join(foreign)}")
    known = _TRUSTED_BY_SHAPE.setdefault(shape, set())
    known.update(untrusted)
    return sorted(known)


def _shape(model: Any) -> tuple[str, ...]:
    """The classes of an estimator and of those nested in it: what decides the types skops meets."""
    names: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, str):  # "passthrough", "drop"
            names.append(obj)
            return
        names.append(f"{type(obj).__module__}.{type(obj).__qualname__}")
        for attr in ("steps", "transformers_"):
            for item in getattr(obj, attr, None) or ():
                walk(item[1])
        nested = getattr(obj, "estimator_", None)
        if nested is not None:
            walk(nested)
        members = getattr(obj, "estimators_", None)
        if isinstance(members, list) and members:  # a forest's trees share one class
            walk(members[0])

    walk(model)
    return tuple(names)


def log_nested(
    ctx: TrackingContext, *, name: str, tags: dict[str, str], metrics: dict[str, float], history: dict[str, list[float]]
) -> str:
    """A finished nested run under the parent, with ``metrics`` and per-step ``history``; returns its id."""
    client = _client(ctx.tracking_uri)
    run_id = start_child(ctx, run_name=name, tags=tags)
    client.log_batch(run_id, metrics=_metrics(metrics, history))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def log_metrics(ctx: TrackingContext, run_id: str, metrics: dict[str, float]) -> None:
    """Add the finite ``metrics`` to a run, finished or not (an ensemble member's weight is known after the vote)."""
    logged = _metrics(metrics)
    if logged:
        _client(ctx.tracking_uri).log_batch(run_id, metrics=logged)


def set_tags(ctx: TrackingContext, run_id: str, tags: dict[str, str]) -> None:

    _client(ctx.tracking_uri).log_batch(run_id, tags=[tag(k, str(v)[:5000]) for k, v in tags.items()])


def fail_child(ctx: TrackingContext, run_id: str, error: str, detail: str = "") -> None:
    """End the model's run FAILED.

    ``error`` (one line) becomes its ``error`` tag, ``detail`` (the traceback) its ``error.txt``.
    """
    import mlflow

    if mlflow.active_run() is not None:  # a log_model that raised leaves its run active here
        mlflow.end_run("FAILED")
    client = _client(ctx.tracking_uri)
    client.log_batch(run_id, tags=[tag("error", redact(error)[:5000])])
    if detail:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "error.txt"
            path.write_text(redact(detail), encoding="utf-8")
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FAILED")


def close_open_runs(ctx: TrackingContext, run_ids: list[str], reason: str, status: str = "FAILED") -> None:
    """End every run of ``run_ids`` still RUNNING with ``status`` and the ``error`` tag ``reason``.

    Best effort: the driver is already failing, and one more error would hide the first.
    """

    client = _client(ctx.tracking_uri)
    for run_id in run_ids:
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.log_batch(run_id, tags=[tag("error", reason[:5000])])
                client.set_terminated(run_id, status)
        except Exception:  # noqa: S112 - the store itself may be what failed
            continue


def close_sweep(sweep: SweepRun, *, metrics: dict[str, float], artifacts: list[Path], failed: bool) -> None:
    """Log the sweep's figures and files on the parent run and end it (when this process made it).

    Under ``mlflow run`` the parent's status follows the process's exit code.
    """

    ctx = sweep.context
    client = _client(ctx.tracking_uri)
    client.log_batch(
        ctx.parent_run_id,
        metrics=_metrics(metrics),
        tags=[tag("mlfleet.outcome", "some models failed" if failed else "all models succeeded")],
    )
    for path in artifacts:
        client.log_artifact(ctx.parent_run_id, str(path))
    if sweep.created_here:
        client.set_terminated(ctx.parent_run_id, "FAILED" if failed else "FINISHED")


def abort_sweep(sweep: SweepRun, reason: str) -> None:
    """End a parent run this process created as FAILED (or KILLED on an interrupt)."""

    client = _client(sweep.context.tracking_uri)
    client.log_batch(sweep.context.parent_run_id, tags=[tag("mlfleet.outcome", redact(reason)[:5000])])
    if sweep.created_here:
        client.set_terminated(sweep.context.parent_run_id, "KILLED" if reason == "interrupted" else "FAILED")
