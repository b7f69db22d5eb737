"""The MLflow tracking store: which one is in force, and whether it can be used, checked before anything starts.

The driver makes the store ready (a fresh sqlite file's schema) before any worker starts,
because several processes creating a fresh sqlite store at once fail. A dead server, a
server that refuses our credentials, Databricks without a workspace or a bare experiment
name there is one line (MlfleetError) before Ray starts or anything is written.
"""

from __future__ import annotations

from pathlib import Path

from mlfleet import locations
from mlfleet.errors import MlfleetError, first_line
from mlfleet.redaction import redact
from mlfleet.settings import Settings

DEFAULT_EXPERIMENT = "mlfleet"
#: seconds a tracking server gets to answer at start
STORE_TIMEOUT_S = 5.0


def tracking_uri() -> str:
    """The tracking URI in force (``MLFLOW_TRACKING_URI`` or MLflow's default), local paths made absolute.

    A relative ``sqlite:///mlflow.db`` means different files to processes with another
    working directory, so it is resolved here, once, by the driver (see :func:`mlfleet.locations.store`).
    """
    import mlflow

    return locations.store(mlflow.get_tracking_uri()).uri


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_name(uri: str, given: str, settings: Settings) -> str:
    """The experiment a command runs in when not under ``mlflow run``: ``given``, the environment's, or mlfleet.

    On Databricks an experiment is a workspace path (``/Users/you@example.com/fleet``); a bare
    name raises MlfleetError saying so, before anything is created.
    """
    name = given or settings.experiment_name or DEFAULT_EXPERIMENT
    if locations.store(uri).is_databricks and not name.startswith("/") and not settings.under_mlflow_run:
        raise MlfleetError(
            f"experiment={name!r}: on Databricks an experiment is a workspace path; "
            f"pass experiment=/Users/<you>/{name.strip('/')} (or a /Shared/... folder)"
        )
    return name


def checked_store(experiment: str, settings: Settings) -> str:
    """The tracking URI in force, checked before Ray starts (see the module's docstring)."""
    uri = tracking_uri()
    probe(uri, settings)
    experiment_name(uri, experiment, settings)
    return uri


def probe(uri: str, settings: Settings) -> None:
    """For a tracking server: check that it answers, in seconds, and accepts our credentials.

    MLflow's client retries a dead server for minutes; one direct probe answers in seconds.
    Databricks needs a workspace. Raises MlfleetError when the store cannot be used.
    """
    where = locations.store(uri)
    if where.kind in (locations.DATABRICKS, locations.UNITY_CATALOG):
        _check_databricks(where, settings)
        return
    if where.kind != locations.SERVER:
        return
    import requests

    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=STORE_TIMEOUT_S).raise_for_status()
    except Exception as exc:
        raise store_error(uri, exc) from None
    _check_credentials(uri, settings)


def _check_credentials(uri: str, settings: Settings) -> None:
    """One read with this process's credentials: a server with authentication that refuses them is one line.

    ``/health`` answers everyone; a wrong password would otherwise surface once Ray runs.
    """
    try:
        client(uri).search_experiments(max_results=1)
    except Exception as exc:
        text = str(exc)
        if not any(code in text for code in ("401", "403", "Unauthorized", "PERMISSION_DENIED", "UNAUTHENTICATED")):
            raise store_error(uri, exc) from None
        user = settings.tracking_username
        who = f"the credentials of MLFLOW_TRACKING_USERNAME={user}" if user else "a request without credentials"
        raise MlfleetError(
            f"the MLflow tracking server {redact(uri)} refused {who}; set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account of that server"
        ) from None


def _check_databricks(where: locations.Store, settings: Settings) -> None:
    """Databricks tracking needs a workspace: say what is missing before anything starts (no network call).

    On a Databricks cluster the workspace is known; elsewhere ``DATABRICKS_HOST`` or the
    profile in ``~/.databrickscfg`` names it.
    """
    if settings.on_databricks or settings.databricks_host:
        return
    profile = where.profile or settings.databricks_profile or "DEFAULT"
    config = Path(settings.databricks_config or "~/.databrickscfg").expanduser()
    if config.is_file() and f"[{profile}]" in config.read_text(errors="replace"):
        return
    raise MlfleetError(
        f"MLFLOW_TRACKING_URI={where.given} needs a Databricks workspace, but none is configured: set DATABRICKS_HOST "
        f"and DATABRICKS_TOKEN (or run `databricks auth login` for profile {profile}), or run on a Databricks cluster"
    )


def prepare(uri: str, settings: Settings) -> None:
    """Create the store's schema (a fresh sqlite file) or check that the server answers.

    Raises MlfleetError when the store cannot be reached.
    """
    probe(uri, settings)
    try:
        client(uri).search_experiments(max_results=1)
    except Exception as exc:
        raise store_error(uri, exc) from None


def store_error(uri: str, exc: BaseException) -> MlfleetError:
    return MlfleetError(
        f"the MLflow tracking store {redact(uri)} cannot be used: {redact(first_line(exc))}; check MLFLOW_TRACKING_URI"
    )


def warm(uri: str) -> None:
    """Import the model-logging code and open the store, once per process and store, outside any model's timing.

    Seconds of work: MLflow and skops import, and a sqlite store checks its schema.
    """
    if uri in _WARM:
        return
    import deltalake  # noqa: F401
    import mlflow.pyfunc  # noqa: F401
    import mlflow.sklearn  # noqa: F401

    from mlfleet.stores.model_format import skops_io

    skops_io()
    client(uri).search_experiments(max_results=1)
    _WARM.add(uri)


_WARM: set[str] = set()
