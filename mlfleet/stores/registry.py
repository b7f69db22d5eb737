"""The model registry: register a model and decide which alias it earns.

The rule: the alias ``champion`` moves to the new version only when it beats the current
champion on the same metric, the same data (dataset digest) and the same split (the seed and
sizes that decide which rows each model trained on), beyond noise: both models are scored on
the gate's half of the test rows and a paired bootstrap of the difference (1,000 seeded
resamples, :func:`mlfleet.metrics.paired_bootstrap`) must put its 95% interval above zero.
A tie or a noisy win leaves the champion and aliases the new version ``challenger``; the
interval, p-value and both scores go on the version's tags. The gate is the one decision
that reads test rows, and only its half: the other half, which nothing chose on, is what the
analysis reports (:meth:`mlfleet.data.Split.test_halves`). The challenger itself was chosen
on validation. When the best model already is the champion (the same run's model), nothing
new is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlfleet.errors import MlfleetError, first_line
from mlfleet.metrics import Comparison, Metric

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Candidate:
    """The analysis's best model and what its version's tags say about it."""

    model_uri: str
    run_id: str
    model_id: int
    model_type: str
    sweep_id: str
    score: float
    dataset_digest: str
    analysis_id: str
    split: str = ""  # :func:`mlfleet.data.split_key` of the split it trained, validated and tested on

    def tags(self, metric: Metric) -> dict[str, str]:
        return {
            "sweep_id": self.sweep_id,
            "metric": metric.name,
            "score": repr(float(self.score)),
            "greater_is_better": str(metric.greater_is_better).lower(),
            "dataset_digest": self.dataset_digest,
            "split": self.split,
            "model_id": str(self.model_id),
            "model_type": self.model_type,
            "analysis_id": self.analysis_id,
        }


@dataclass(frozen=True)
class Decision:
    """What the registry now says: the version of the best model, the alias it got, and why."""

    name: str
    version: str
    alias: str
    reason: str
    registered: bool
    previous_champion: str = ""
    comparison: Comparison | None = None

    def sentence(self) -> str:
        """One line for the terminal and the report."""
        if self.registered:
            return f"Registered {self.name} version {self.version} and aliased it {self.alias}: {self.reason}."
        if self.alias == CHAMPION and self.previous_champion == self.version:
            return f"{self.name} version {self.version} stays the champion: {self.reason}."
        return f"{self.name} version {self.version} (registered before) is aliased {self.alias}: {self.reason}."


def comparable(current: dict[str, str], candidate: Candidate, metric: Metric) -> bool:
    """Whether the champion was chosen on the same metric, data and split, so that the two can be compared.

    On another split each model may have trained on rows the other is tested on; a split
    that either does not record is not the same.
    """
    return (
        current.get("metric", "") == metric.name
        and current.get("dataset_digest", "") == candidate.dataset_digest
        and bool(candidate.split)
        and current.get("split", "") == candidate.split
    )


def rule(
    current: dict[str, str] | None,
    current_version: str,
    candidate: Candidate,
    metric: Metric,
    *,
    comparison: Comparison | None = None,
    problem: str = "",
) -> tuple[str, str]:
    """``(alias, reason)`` for ``candidate`` given the current champion's version tags (None: no champion).

    ``comparison`` is the paired bootstrap of the two on the same test rows; without one (a
    caller that does not load models) the recorded scores are compared. ``problem`` says why
    a comparison that was tried could not run.
    """
    if current is None:
        return CHAMPION, "there was no champion yet"
    old_metric, old_digest = current.get("metric", ""), current.get("dataset_digest", "")
    if old_metric != metric.name:
        return CHALLENGER, (
            f"the champion (version {current_version}) was chosen on {old_metric or 'an unrecorded metric'}, "
            "this analysis ranks by "
            f"{metric.name}; scores on different metrics do not compare, so the champion stays"
        )
    if old_digest != candidate.dataset_digest:
        return CHALLENGER, (
            f"the champion (version {current_version}) was scored on other data "
            f"(dataset digest {old_digest or 'unrecorded'}, "
            f"this model's is {candidate.dataset_digest}); "
            "scores on different data do not compare, so the champion stays"
        )
    old_split = current.get("split", "")
    if not candidate.split or old_split != candidate.split:
        return CHALLENGER, (
            f"the champion (version {current_version}) was split into training, validation and test rows "
            f"differently ({old_split or 'unrecorded'}; this model: {candidate.split or 'unrecorded'}), so each "
            "may have trained on rows the other is tested on; scores do not compare, so the champion stays"
        )
    if problem:
        return CHALLENGER, (
            f"the two models could not be compared on the same test rows ({problem}), "
            f"so the champion (version {current_version}) stays"
        )
    if comparison is not None:
        if comparison.clear_win:
            return CHAMPION, f"it beats the champion, version {current_version}, beyond noise: {comparison.sentence()}"
        return CHALLENGER, (
            f"it does not beat the champion, version {current_version}, beyond noise: {comparison.sentence()}; "
            "the interval does not exclude zero in its favour, so the champion stays"
        )
    try:
        old_score = float(current.get("score", "nan"))
    except ValueError:
        old_score = float("nan")
    if old_score != old_score:
        return CHAMPION, f"the champion (version {current_version}) records no score to compare with"
    direction = "higher" if metric.greater_is_better else "lower"
    if metric.better(candidate.score, old_score):
        return (
            CHAMPION,
            f"it beats the champion, version {current_version}: {metric.name} {candidate.score:.4f} "
            f"against {old_score:.4f} ({direction} is better)",
        )
    return CHALLENGER, (
        f"it does not beat the champion, version {current_version}: {metric.name} {candidate.score:.4f} "
        f"against {old_score:.4f} "
        f"({direction} is better), so the champion stays"
    )


def crown(
    client, name: str, candidate: Candidate, metric: Metric, compare: Callable[[Any], Comparison] | None = None
) -> Decision:
    """Register ``candidate`` under ``name`` (once per model) and set the alias :func:`rule` gives.

    ``compare(champion_version)`` scores the candidate against the current champion on the
    same test rows (the gate); it runs only when the two were chosen on the same metric and
    data. Returns the decision; the version carries the candidate's tags, the gate's figures
    and the reason (``mlfleet.decision``). Raises MlflowException when the registry refuses.
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
    if champion is not None and champion.run_id == candidate.run_id and champion.source == candidate.model_uri:
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
    for key, value in (comparison.tags() if comparison is not None else {}).items():
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


def compare_models(metric: Metric, split: Any, challenger_uri: str, champion_uri: str) -> Comparison:
    """The gate's comparison: both logged models predict the gate's half of ``split``'s test rows
    (:meth:`~mlfleet.data.Split.test_halves`); a paired bootstrap of the two."""
    import mlflow.sklearn

    from mlfleet.metrics import paired_bootstrap, predict_with_proba
    from mlfleet.training.labels import codes_model

    gate, _ = split.test_halves()
    X, y = split.X_test.iloc[gate], split.y_test[gate]
    challenger = codes_model(mlflow.sklearn.load_model(challenger_uri))
    current = codes_model(mlflow.sklearn.load_model(champion_uri))
    return paired_bootstrap(
        metric,
        y,
        predict_with_proba(challenger, X, split.task),
        predict_with_proba(current, X, split.task),
        n_classes=split.n_classes,
    )


def registry_uri(tracking_uri: str) -> str:
    """The model registry in force: ``MLFLOW_REGISTRY_URI`` (or ``mlflow.set_registry_uri``), else MLflow's default."""
    import mlflow

    try:
        return mlflow.get_registry_uri() or tracking_uri
    except Exception:  # MLflow resolves Databricks' default registry lazily; an unconfigured one is the tracking's
        return tracking_uri


def is_unity_catalog(uri: str) -> bool:
    """Whether the registry is Unity Catalog (``databricks-uc``), whose model names are ``catalog.schema.model``."""
    return uri.split(":", 1)[0] == "databricks-uc"


def default_name(experiment: str) -> str:
    """``<experiment>-champion``, of the experiment's last path part (a workspace path on Databricks)."""
    return f"{experiment.rstrip('/').rsplit('/', 1)[-1]}-champion"


def check_model_name(name: str, what: str = "register", registry: str = "", *, defaulted: bool = False) -> None:
    """Raise MlfleetError for a registry name MLflow would refuse (it refuses '/' and ':').

    Under Unity Catalog (``registry`` ``databricks-uc``) a name must be ``catalog.schema.model``,
    and an empty one that ``defaulted`` to :func:`default_name` is refused. Otherwise an empty
    name means no registration (or the default).
    """
    if not name and defaulted and is_unity_catalog(registry):
        raise MlfleetError(
            f"the registry is Unity Catalog ({registry}), whose model names are catalog.schema.model; "
            f"pass {what}=CATALOG.SCHEMA.MODEL"
        )
    if name and is_unity_catalog(registry) and (name.count(".") != 2 or not all(name.split("."))):
        raise MlfleetError(
            f"{what}={name!r}: the registry is Unity Catalog ({registry}), whose model names are catalog.schema.model; "
            f"pass {what}=CATALOG.SCHEMA.MODEL"
        )
    if name and (not name.strip() or any(c in name for c in "/:")):
        raise MlfleetError(
            f"{what} must be a model name without '/' or ':' (or empty to skip registering), but got {what}={name!r}"
        )
