"""Which model is the champion: the rule, and the comparison it rests on; plain functions over tags and models.

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

from dataclasses import dataclass
from typing import Any

from mlfleet.metrics import Comparison, Metric

CHAMPION = "champion"
CHALLENGER = "challenger"
#: the version tag saying what a model is, whatever run logged it (an ensemble logged again is the same)
IDENTITY = "mlfleet.identity"


def same_model(champion_version, candidate: Candidate) -> bool:
    """Whether ``candidate`` is the champion's model: the same logged model, or the same ensemble logged again."""
    if champion_version.run_id == candidate.run_id and champion_version.source == candidate.model_uri:
        return True
    return bool(candidate.identity) and champion_version.tags.get(IDENTITY) == candidate.identity


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
    identity: str = ""  # what it is, whatever run logged it (an ensemble: its members and weights)

    def tags(self, metric: Metric) -> dict[str, str]:
        return {
            "sweep_id": self.sweep_id,
            "metric": metric.name,
            "score": repr(float(self.score)),
            "greater_is_better": str(metric.greater_is_better).lower(),
            "dataset_digest": self.dataset_digest,
            "split": self.split,
            **({IDENTITY: self.identity} if self.identity else {}),
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


def compare_models(
    metric: Metric, split: Any, challenger_uri: str, champion_uri: str, tracking_uri: str = ""
) -> Comparison:
    """The gate's comparison: both logged models predict the gate's half of ``split``'s test rows
    (:meth:`~mlfleet.data.Split.test_halves`); a paired bootstrap of the two. ``tracking_uri``: where the
    models' URIs resolve (in a Ray task; by default the store in force)."""
    from mlfleet.metrics import paired_bootstrap, predict_with_proba
    from mlfleet.stores.model_format import load
    from mlfleet.training.labels import codes_model

    gate, _ = split.test_halves()
    X, y = split.X_test.iloc[gate], split.y_test[gate]
    challenger = codes_model(load(challenger_uri, tracking_uri))
    current = codes_model(load(champion_uri, tracking_uri))
    return paired_bootstrap(
        metric,
        y,
        predict_with_proba(challenger, X, split.task),
        predict_with_proba(current, X, split.task),
        n_classes=split.n_classes,
    )
