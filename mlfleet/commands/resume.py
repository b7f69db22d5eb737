"""Resuming a sweep: which models are complete, which rows to rebuild, which to train again.

A model is complete when it has a FINISHED run (with its logged model) and a FINISHED row
pointing at that run. A FINISHED run without its row (the process died between the two)
gets the row rebuilt from the run. Every other model is trained again: a run an
interrupted sweep left RUNNING is marked FAILED as stale, and the model's new row replaces
an earlier FAILED one (the next generation of its Delta transaction). So a resumed sweep
ends, like an uninterrupted one, with one FINISHED run and one row per model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from mlfleet.config import FleetConfig
from mlfleet.errors import MlfleetError
from mlfleet.stores import runs
from mlfleet.stores.recorder import SweepRecorder
from mlfleet.stores.rows import row_from_record, transaction_id
from mlfleet.training.jobs import ModelJob
from mlfleet.training.outcome import Outcome, SweepSpec, row_from_run

#: parameters a sweep may be resumed with a different value of: where it runs, not what it trains
MAY_DIFFER = frozenset({"address", "experiment", "ensemble"})  # ensemble: what the close builds, not the models


@dataclass(frozen=True)
class Plan:
    """What resuming a sweep does: the models already complete, and those to train again."""

    complete: tuple[Outcome, ...]
    to_train: tuple[ModelJob, ...]
    rebuilt: int  # rows written from runs that had finished without their row
    stale: int  # runs left RUNNING by the interrupted sweep, now marked FAILED

    def describe(self, sweep_id: str) -> str:
        total = len(self.complete) + len(self.to_train)
        return (
            f"resuming sweep {sweep_id}: {len(self.complete)} of {total} models complete "
            f"({self.rebuilt} row(s) rebuilt from finished runs), {self.stale} stale run(s) marked FAILED, "
            f"{len(self.to_train)} to train"
        )


def check_config(parent, config: FleetConfig, dataset_digest: str) -> None:
    """Raise MlfleetError, naming what differs, unless ``config`` is the one the sweep recorded."""
    sweep_id = config.resume
    recorded_text = parent.data.tags.get(runs.CONFIG_TAG)
    if recorded_text is None:
        raise MlfleetError(
            f"resume={sweep_id}: the sweep did not record its configuration (an earlier mlfleet wrote it); "
            "start a new sweep"
        )
    recorded, current, defaults = json.loads(recorded_text), config.params(), type(config)().params()
    # a parameter added after the sweep ran meant its default then
    was = {key: recorded.get(key, defaults.get(key)) for key in set(recorded) | set(current)}
    differences = [
        f"{key}={was[key]!r} (now {current.get(key)!r})"
        for key in sorted(was)
        if key not in MAY_DIFFER and was[key] != current.get(key)
    ]
    recorded_digest = parent.data.tags.get("dataset_digest", "")
    if recorded_digest and recorded_digest != dataset_digest:
        differences.append(f"the data (digest {recorded_digest}, now {dataset_digest})")
    if differences:
        raise MlfleetError(
            f"resume={sweep_id} was run with {', '.join(differences)}; "
            "resume with the sweep's own parameters, or start a new sweep"
        )


def plan(recorder: SweepRecorder, spec: SweepSpec, jobs: tuple[ModelJob, ...], task: str) -> Plan:
    """Compare the sweep's runs and rows with its jobs; rebuild missing rows and mark stale runs."""
    by_model = recorder.model.runs()
    frame, generation_of = recorder.table.snapshot(sweep_id=spec.sweep_id)  # the rows and transactions, one read
    rows = {int(r["model_id"]): row_from_record(r) for r in frame.to_dict("records")}
    complete: list[Outcome] = []
    to_train: list[ModelJob] = []
    rebuilt = stale = 0
    for job in jobs:
        generation = generation_of(transaction_id(spec.sweep_id, job.model_id)) or 0
        job = replace(job, attempt=generation + 1)
        attempts = by_model.get(job.model_id, [])
        finished = [r for r in attempts if r.info.status == "FINISHED" and runs.MODEL_URI_TAG in r.data.tags]
        row = rows.get(job.model_id)
        if finished:
            run = max(finished, key=lambda r: r.info.start_time)
            if row is None or not row.ok or row.mlflow_run_id != run.info.run_id:
                row = row_from_run(run, job, spec, task)
                recorder.rows([row], [job.attempt])
                rebuilt += 1
            complete.append(
                Outcome(row, 0.0, 0.0, row.started_at.timestamp(), row.finished_at.timestamp(), resumed=True)
            )
            continue
        for run in attempts:
            if run.info.status == "RUNNING":
                recorder.stale(
                    run.info.run_id, "left RUNNING by an interrupted sweep; the model was trained again on resume"
                )
                stale += 1
            elif runs.STALE_TAG not in run.data.tags:  # a FAILED attempt stays FAILED, superseded
                recorder.stale(run.info.run_id, "the model was trained again on resume", end=False)
        to_train.append(job)
    return Plan(tuple(complete), tuple(to_train), rebuilt, stale)
