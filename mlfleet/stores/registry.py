"""The Model Registry: register a model under a name and set the alias the champion rule gives it.

The rule itself is :mod:`mlfleet.champion` (plain functions); this module makes its MLflow writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlfleet.champion import CHALLENGER, CHAMPION, Candidate, Decision, comparable, rule, same_model
from mlfleet.errors import MlfleetError, first_line
from mlfleet.locations import Store
from mlfleet.metrics import Comparison, Metric


def crown(
    client,
    name: str,
    candidate: Candidate,
    metric: Metric,
    compare: Callable[[Any], Comparison] | None = None,
    *,
    tags: dict[str, str] | None = None,
) -> Decision:
    """Register ``candidate`` under ``name`` (once per model) and set the alias :func:`~mlfleet.champion.rule` gives.

    ``compare(champion_version)`` scores the candidate against the current champion on the
    gate's rows; it runs only when the two were chosen on the same metric, data and split.
    Returns the decision; the version carries the candidate's tags, ``tags``, the gate's
    figures and the reason (``mlfleet.decision``). Raises MlflowException when the registry
    refuses.
    """
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        registered = client.create_registered_model(
            name, description="The best model of the fleet's analyses (mlfleet analyze)."
        )
    champion_version = str(registered.aliases.get(CHAMPION, "")) if registered.aliases else ""
    champion = client.get_model_version(name, champion_version) if champion_version else None
    if champion is not None and same_model(champion, candidate):
        return Decision(
            name,
            champion_version,
            CHAMPION,
            "the best model already is the champion",
            registered=False,
            previous_champion=champion_version,
        )

    same = [
        v
        for v in client.search_model_versions(f"name='{name}' and run_id='{candidate.run_id}'")
        if v.source == candidate.model_uri
    ]
    if same:
        version, created = str(same[0].version), False
        for key, value in candidate.tags(metric).items():  # this analysis's metric and score
            client.set_model_version_tag(name, version, key, value)
    else:
        model_id = (
            candidate.model_uri.removeprefix("models:/") if candidate.model_uri.startswith("models:/m-") else None
        )
        version = str(
            client.create_model_version(
                name,
                source=candidate.model_uri,
                run_id=candidate.run_id,
                tags=candidate.tags(metric),
                model_id=model_id,
            ).version
        )
        created = True
    comparison, problem = None, ""
    if champion is not None and compare is not None and comparable(champion.tags, candidate, metric):
        try:
            comparison = compare(champion)
        except Exception as exc:  # the champion's model or the test rows are gone: the champion stays
            problem = first_line(exc)
    current = champion.tags if champion is not None else None
    alias, reason = rule(current, champion_version, candidate, metric, comparison=comparison, problem=problem)
    for key, value in {**(tags or {}), **(comparison.tags() if comparison is not None else {})}.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_model_version_tag(name, version, "mlfleet.decision", f"{alias}: {reason}"[:5000])
    client.set_registered_model_alias(name, alias, version)
    if (
        alias == CHAMPION
        and (registered.aliases or {}).get(CHALLENGER)
        and str(registered.aliases[CHALLENGER]) == version
    ):
        client.delete_registered_model_alias(name, CHALLENGER)  # the challenger became the champion
    return Decision(
        name, version, alias, reason, registered=created, previous_champion=champion_version, comparison=comparison
    )


def registry_uri(tracking_uri: str) -> str:
    """The model registry in force: ``MLFLOW_REGISTRY_URI`` (or ``mlflow.set_registry_uri``), else MLflow's default."""
    import mlflow

    try:
        return mlflow.get_registry_uri() or tracking_uri
    except Exception:  # MLflow resolves Databricks' default registry lazily; an unconfigured one is the tracking's
        return tracking_uri


def default_name(experiment: str) -> str:
    """``<experiment>-champion``, of the experiment's last path part (a workspace path on Databricks)."""
    return f"{experiment.rstrip('/').rsplit('/', 1)[-1]}-champion"


def check_model_name(
    name: str, what: str = "register", registry: Store | None = None, *, defaulted: bool = False
) -> None:
    """Raise MlfleetError for a registry name MLflow would refuse (it refuses '/' and ':').

    Under Unity Catalog a name must be ``catalog.schema.model``, and an empty one that
    ``defaulted`` to :func:`default_name` is refused. Otherwise an empty name means no
    registration (or the default).
    """
    unity = registry is not None and registry.is_unity_catalog
    shown = registry.given if registry is not None else ""
    if not name and defaulted and unity:
        raise MlfleetError(
            f"the registry is Unity Catalog ({shown}), whose model names are catalog.schema.model; "
            f"pass {what}=CATALOG.SCHEMA.MODEL"
        )
    if name and unity and (name.count(".") != 2 or not all(name.split("."))):
        raise MlfleetError(
            f"{what}={name!r}: the registry is Unity Catalog ({shown}), whose model names are catalog.schema.model; "
            f"pass {what}=CATALOG.SCHEMA.MODEL"
        )
    if name and (not name.strip() or any(c in name for c in "/:")):
        raise MlfleetError(
            f"{what} must be a model name without '/' or ':' (or empty to skip registering), but got {what}={name!r}"
        )
