"""What the ensemble adds to :mod:`mlfleet.tracking` on the MLflow side: weights, tags, the registry.

Runs are opened, finished and closed by :mod:`mlfleet.tracking`; these are the few calls it
has no function for.
"""

from __future__ import annotations

import math

from mlfleet.errors import MlfleetError, first_line
from mlfleet.tracking import TrackingContext


def _client(ctx: TrackingContext):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=ctx.tracking_uri)


def check_model_name(name: str) -> None:
    """Raise MlfleetError for a registry name MLflow would refuse (it refuses '/' and ':'); empty means no registration."""
    if name and (not name.strip() or any(c in name for c in "/:")):
        raise MlfleetError(f"register must be a model name without '/' or ':' (or empty to skip registering), but got register={name!r}")


def log_metrics(ctx: TrackingContext, run_id: str, metrics: dict[str, float]) -> None:
    """Add finite ``metrics`` to a run (finished or not): a member's weight is known only after the vote."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    logged = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and math.isfinite(v)]
    if logged:
        _client(ctx).log_batch(run_id, metrics=logged)


def set_tags(ctx: TrackingContext, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    _client(ctx).log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])


def register(ctx: TrackingContext, model_uri: str, name: str, *, run_id: str) -> str:
    """Register ``model_uri`` (logged in ``run_id``) as a new version of the model ``name``; return ``name/version``.

    Through a client bound to the run's store: ``mlflow.register_model`` would set the
    process's global tracking URI. Raises MlfleetError with MLflow's reason when the registry refuses.
    """
    from mlflow.exceptions import MlflowException

    client = _client(ctx)
    try:
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        version = client.create_model_version(
            name, model_uri, run_id=run_id, tags={"sweep_id": ctx.sweep_id, "entry_point": ctx.entry_point}, model_id=model_id
        )
    except Exception as exc:
        raise MlfleetError(f"registering the ensemble as register={name!r} failed: {first_line(exc)}") from None
    return f"{version.name}/{version.version}"


def close_open_runs(ctx: TrackingContext, run_ids: list[str], reason: str, status: str = "FAILED") -> None:
    """End every run of ``run_ids`` still RUNNING with ``status`` and the ``error`` tag ``reason``.

    Best effort: the driver is already failing, and one more error would hide the first.
    """
    from mlflow.entities import RunTag

    client = _client(ctx)
    for run_id in run_ids:
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.log_batch(run_id, tags=[RunTag("error", reason[:5000])])
                client.set_terminated(run_id, status)
        except Exception:  # noqa: S112 - the store itself may be what failed
            continue
