"""Every environment variable mlfleet reads or sets, declared once; read once per command; changed in one place.

:data:`VARIABLES` is the list: ours (``MLFLEET_*``), those ``mlflow run`` sets for the run it
created, MLflow's client settings, Ray's and Databricks'. A command reads what it decides with
once, at its start, into a frozen :class:`Settings` (:func:`read`), which travels to the Ray
workers with the tracking context; library code that also serves outside a command (a table's
storage options, the memory a table may take, Ray's address and token) reads its variable where
it is used, through :func:`get`. :func:`process_setup` makes every change this project makes to
a process's environment; the variables given to the workers of a cluster the driver joins are
those declared ``forwarded``. This module is the only one that touches ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """An environment variable: its name, what it means here, and how mlfleet treats it.

    ``forwarded``: given to the workers of a Ray cluster the driver joins (a local Ray's
    workers inherit the driver's environment anyway). ``default``: the value
    :func:`process_setup` sets when the user has not.
    """

    name: str
    meaning: str
    forwarded: bool = False
    default: str | None = None


#: what ``mlflow run`` sets for the run it created: read once by the driver, then removed from
#: its environment, since a child run started from ``MLFLOW_RUN_ID`` can overwrite the parent
RUN_VARIABLES = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
#: MLflow's HTTP retries unless the user set them: a server that went away costs a model about
#: 15 s of retries, not MLflow's minutes per call
HTTP_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
SUPPRESS_LINKS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
RAY_AUTH_MODE = "RAY_AUTH_MODE"

VARIABLES: tuple[Variable, ...] = (
    Variable("MLFLEET_STORAGE_OPTIONS", "explicit delta-rs storage options, JSON or key=value,...", forwarded=True),
    Variable("MLFLEET_SHARED_STORAGE", "1: local paths name storage that every node mounts", forwarded=True),
    Variable("MLFLEET_FAIL_MODEL_IDS", "a test seam: the model ids listed (comma-separated) raise", forwarded=True),
    Variable("MLFLEET_MEMORY_BYTES", "the memory a table may take here, instead of what the kernel says"),
    Variable("MLFLOW_RUN_ID", "the run `mlflow run` created: the command's parent run"),
    Variable("MLFLOW_EXPERIMENT_ID", "the experiment `mlflow run` put its run in"),
    Variable("MLFLOW_EXPERIMENT_NAME", "the experiment a command runs in when no experiment is given"),
    Variable("MLFLOW_TRACKING_USERNAME", "the tracking server's account", forwarded=True),
    Variable("MLFLOW_TRACKING_PASSWORD", "the tracking server's password", forwarded=True),
    Variable("MLFLOW_TRACKING_TOKEN", "the tracking server's token", forwarded=True),
    Variable("MLFLOW_TRACKING_INSECURE_TLS", "MLflow's TLS setting", forwarded=True),
    Variable("MLFLOW_TRACKING_SERVER_CERT_PATH", "MLflow's TLS setting", forwarded=True),
    Variable("MLFLOW_TRACKING_CLIENT_CERT_PATH", "MLflow's TLS setting", forwarded=True),
    Variable(SUPPRESS_LINKS, "no run links printed (set when the tracking URI carries a password)", forwarded=True),
    *(Variable(name, "MLflow's HTTP retries, bounded", default=value) for name, value in HTTP_RETRIES.items()),
    Variable("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "requirements are pinned from what is installed", default="true"),
    Variable("RAY_ADDRESS", "the Ray cluster an empty or `auto` address joins"),
    Variable(RAY_AUTH_MODE, "Ray's authentication; token for a Ray of our own, chosen quietly"),
    Variable("RAY_AUTH_TOKEN", "the token of a cluster that asks for one"),
    Variable("RAY_AUTH_TOKEN_PATH", "a file holding that token"),
    Variable("DATABRICKS_RUNTIME_VERSION", "set on a Databricks cluster"),
    Variable("DATABRICKS_HOST", "the Databricks workspace"),
    Variable("DATABRICKS_CONFIG_PROFILE", "the profile of ~/.databrickscfg"),
    Variable("DATABRICKS_CONFIG_FILE", "another file than ~/.databrickscfg"),
    Variable("PWD", "the shell's folder: where `mlflow run` started, where /proc cannot tell"),
)
_DECLARED = {v.name for v in VARIABLES}


def get(name: str) -> str:
    """The value of the declared variable ``name`` in this process now ('' when unset)."""
    if name not in _DECLARED:
        raise KeyError(f"{name} is not declared in mlfleet.settings.VARIABLES")
    return os.environ.get(name, "")


def is_set(name: str) -> bool:
    return name in _DECLARED and name in os.environ


def put(name: str, value: str, *, keep: bool = False) -> None:
    """Set the declared variable ``name`` in this process (and the processes it starts); ``keep`` a user's value."""
    if name not in _DECLARED:
        raise KeyError(f"{name} is not declared in mlfleet.settings.VARIABLES")
    if keep:
        os.environ.setdefault(name, value)
    else:
        os.environ[name] = value


def forwarded() -> dict[str, str]:
    """The declared ``forwarded`` variables this process has: what a joined cluster's workers are given."""
    return {v.name: os.environ[v.name] for v in VARIABLES if v.forwarded and v.name in os.environ}


@dataclass(frozen=True)
class Settings:
    """What a command read of its environment, once, at its start; picklable, and free of secrets.

    Credentials stay in the environment (MLflow, delta-rs and the cloud SDKs read them there).
    """

    run_id: str = ""
    experiment_id: str = ""
    experiment_name: str = ""
    shared_storage: bool = False
    fail_model_ids: frozenset[int] = frozenset()
    on_databricks: bool = False
    databricks_host: str = ""
    databricks_profile: str = ""
    databricks_config: str = ""
    tracking_username: str = ""
    pwd: str = ""

    @property
    def under_mlflow_run(self) -> bool:
        """Whether ``mlflow run`` started this command (it created the run the command works in)."""
        return bool(self.run_id)


def read() -> Settings:
    """This process's settings now: what a command calls once, at its start."""
    listed = get("MLFLEET_FAIL_MODEL_IDS")
    return Settings(
        run_id=get("MLFLOW_RUN_ID"),
        experiment_id=get("MLFLOW_EXPERIMENT_ID"),
        experiment_name=get("MLFLOW_EXPERIMENT_NAME"),
        shared_storage=get("MLFLEET_SHARED_STORAGE").strip().lower() in ("1", "true", "yes"),
        fail_model_ids=frozenset(int(part) for part in listed.split(",") if part.strip().isdigit()),
        on_databricks=bool(get("DATABRICKS_RUNTIME_VERSION")),
        databricks_host=get("DATABRICKS_HOST"),
        databricks_profile=get("DATABRICKS_CONFIG_PROFILE"),
        databricks_config=get("DATABRICKS_CONFIG_FILE"),
        tracking_username=get("MLFLOW_TRACKING_USERNAME"),
        pwd=get("PWD"),
    )


def process_setup(*, hide_links: bool = False) -> None:
    """Every change mlfleet makes to a process's environment (and so to the processes it starts).

    The ``mlflow run`` variables go (read first, with :func:`read`); MLflow's HTTP retries are
    bounded and its pip check skipped unless the user set them; ``hide_links`` turns off the
    run links MLflow prints, which repeat a tracking URI that carries a password. Called by
    the driver when a command starts and by every worker before it logs.
    """
    for name in RUN_VARIABLES:
        os.environ.pop(name, None)
    for variable in VARIABLES:
        if variable.default is not None:
            put(variable.name, variable.default, keep=True)
    if hide_links:
        put(SUPPRESS_LINKS, "true", keep=True)


def ray_token_mode() -> None:
    """Ray's token authentication, in this process (Ray reads its mode once per process: read it again)."""
    from ray._raylet import Config

    put(RAY_AUTH_MODE, "token")
    Config.initialize("")
