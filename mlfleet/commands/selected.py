"""The fleet's ensemble, built and logged: greedy selection over the finished models' validation predictions.

analyze builds it over every comparable sweep it reads; a sweep builds it over its own models at
its close when asked (``ensemble=N``). Both read the members' validation predictions from their
runs, select with :func:`~mlfleet.commands.analyze.report.ensemble.select`, and log the weighted
vote as a run of its own (``mlfleet.role`` :data:`ROLE`) whose model predicts labels, as every
member's does.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlfleet.commands.analyze.report.ensemble import Candidate as Member
from mlfleet.commands.analyze.report.ensemble import EnsembleResult, select
from mlfleet.errors import describe, full_traceback
from mlfleet.metrics import Metric, task_metrics
from mlfleet.stores import model_format, runs
from mlfleet.stores.recorder import SweepRecorder
from mlfleet.training.labels import codes_model

#: ``mlfleet.role`` of the ensemble's run (not ``model``: analyses read a sweep's models by that role)
ROLE = "selected_ensemble"
#: the tag, on the run that built it (the analysis or the sweep), naming the ensemble's model
MODEL_TAG = "ensemble_model_uri"


@dataclass(frozen=True)
class Logged:
    """Where the ensemble went: its run and its model."""

    run_id: str
    model_uri: str
    identity: str  # its members (their runs) and weights


def build(
    client, candidates: pd.DataFrame, split, metric: Metric, *, max_members: int, name_sweeps: bool = False
) -> tuple[EnsembleResult | None, str]:
    """The ensemble selected over ``candidates`` (finished rows ranked best first on validation), and a note.

    ``split`` is the split they all trained on. Models that kept no validation predictions
    (logged by an mlfleet before it kept them) are left out, and the note says so; None when
    none kept them.
    """
    kept, pool, missing = [], [], 0
    for r in candidates.itertuples():
        predictions = runs.validation_predictions(client, r.mlflow_run_id)
        if predictions is None or len(predictions) != len(split.y_val):
            missing += 1
            continue
        label = f"#{r.model_id} {r.model_type}" + (f" ({r.sweep_id})" if name_sweeps else "")
        kept.append(r)
        pool.append(Member(label, float(r.val_score), predictions, str(r.mlflow_run_id), str(r.model_uri)))
    if not pool:
        return None, "Ensemble selection was skipped: no model kept its validation predictions."
    result = select(
        pool, lambda i: codes_model(model_format.load(kept[i].model_uri)), split, metric, max_members=max_members
    )
    note = result.verdict()
    if missing:
        note += f" {missing} model(s) kept no validation predictions and were left out"
        top = candidates.iloc[0]
        left_out = str(top.mlflow_run_id) not in {m.run_id for m in pool}
        note += f", the best on validation (#{top.model_id}) among them." if left_out else "."
    return result, note


def log(recorder: SweepRecorder, ensemble: EnsembleResult, split, metric: Metric, *, name: str, tags: dict) -> Logged:
    """The ensemble as a run of its own under ``recorder``'s parent run, its model predicting labels."""
    identity = "ensemble:" + ",".join(
        f"{run}={weight:.6f}" for run, weight in sorted(zip(ensemble.member_runs, ensemble.weights, strict=True))
    )
    run_id = recorder.start("ensemble-selection", {**tags, "n_members": len(ensemble.members)}, role=ROLE)
    test = ensemble.comparison.loc[ensemble.comparison["role"] == "ensemble"].iloc[0]
    try:
        model_uri = _record(recorder, run_id, ensemble, split, metric, name, test)
    except Exception as exc:  # its run ends FAILED, saying why, never left RUNNING
        recorder.model.fail(run_id, describe(exc), full_traceback(exc))
        raise
    return Logged(run_id, model_uri, identity)


def _record(recorder: SweepRecorder, run_id: str, ensemble: EnsembleResult, split, metric: Metric, name: str, test):
    from mlfleet.training.worker import record

    return record(
        recorder.model,
        run_id,
        model=ensemble.model,
        split=split,
        name=name,
        params={
            "members": " | ".join(ensemble.members),
            "member_weights": ",".join(f"{w:.4f}" for w in ensemble.weights),
            "n_members": len(ensemble.members),
            "primary_metric": metric.name,
            "selection": "greedy forward selection with replacement over validation predictions",
        },
        metrics={
            f"val_{metric.name}": ensemble.val_score,
            "score": ensemble.test_score,
            **{m: float(test[m]) for m in task_metrics(split.task) if pd.notna(test[m])},
        },
        tags={"model_type": "VotingRegressor" if split.task == "regression" else "VotingClassifier"},
        trusted=sorted({t for uri in ensemble.member_uris for t in model_format.trusted_of(uri)}),
    )
