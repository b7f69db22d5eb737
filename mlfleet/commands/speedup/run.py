"""One benchmark from config to figures, runs, plots and rows: what the ``benchmark`` entry point calls."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import TextIO

from mlfleet import fleet, results, tracking
from mlfleet.benchmark._modes import BenchData, Fitted, measure_ceiling, measure_work_ceiling, run_joblib, run_ray, run_sequential
from mlfleet.benchmark._plots import plot_ladder, plot_timeline, plot_walls
from mlfleet.benchmark._spec import MODES, BenchmarkConfig, apply_preset, expand_ladder
from mlfleet.data import load_dataset
from mlfleet.errors import MlfleetError
from mlfleet.metrics import DEFAULT_METRIC, METRICS
from mlfleet.sweep import new_sweep_id

DEFAULT_TABLE = "lakehouse/benchmark_results"


@dataclass(frozen=True)
class BenchmarkRow:
    """One mode of one benchmark: comparable across machines and days."""

    benchmark_id: str
    mode: str
    wall_s: float
    speedup: float
    efficiency: float
    usable_cpus: int
    ceiling_speedup: float
    share_of_ceiling: float
    n_models: int
    model: str
    preset: str
    ladder: str
    dataset: str
    repeats: int
    cpus: int
    cpu_model: str
    hostname: str
    versions_json: str
    metric: str
    best_score: float
    mlflow_run_id: str
    started_at: datetime
    # added after the first release: tables written before gain them by schema evolution
    work_ceiling_speedup: float | None = None
    share_of_work_ceiling: float | None = None


@dataclass(frozen=True)
class BenchmarkReport:
    benchmark_id: str
    run_id: str
    figures: dict[str, float]
    rows: tuple[BenchmarkRow, ...]


def run_benchmark(config: BenchmarkConfig, *, stream: TextIO | None = None) -> BenchmarkReport:
    """Train the same models in each mode, check they score the same, report and record the figures.

    Raises MlfleetError on bad input, and when the modes' scores differ (a benchmark of
    different work would measure nothing).
    """
    stream = stream or sys.stderr
    config = apply_preset(config)
    unknown = [m for m in config.modes if m not in MODES]
    if unknown or not config.modes:
        raise MlfleetError(f"modes must be among {', '.join(MODES)}, but got modes={','.join(config.modes)!r}")
    if config.repeats < 1:
        raise MlfleetError(f"repeats must be at least 1, but got repeats={config.repeats}")
    dataset = load_dataset(config.data)
    specs = expand_ladder(config, dataset.task)
    data = _split(dataset, config)
    results.check_not_spark(config.results, "benchmark")
    results.check_writable(config.results)
    table = results.resolve_location(config.results)
    uri = tracking.tracking_uri()
    # a local Ray's ceiling is measured before it starts: its agents are busy for seconds after
    ceiling = None if config.address else measure_ceiling(os.cpu_count() or 1)
    cluster = fleet.connect(config.address)
    try:
        tracking.prepare_store(uri)
        results.ensure_table(table, arrow=results.arrow_schema(BenchmarkRow), name="benchmark_results")
        bench_id = new_sweep_id("benchmark")
        machine = _machine()
        run = tracking.open_sweep(
            uri=uri, experiment=config.experiment, sweep_id=bench_id, entry_point="benchmark",
            params={**_params(config), **{k: str(v) for k, v in machine.items()}}, dataset=None, pip_requirements=(),
            tags={"task": dataset.task, "dataset": dataset.name}, role="benchmark",
        )
        try:
            report = _measure(config, specs, data, dataset.name, run, table, machine, int(cluster.total_cpus), bench_id, stream, ceiling)
        except BaseException as exc:
            tracking.abort_sweep(run, "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc))
            raise
    finally:
        fleet.disconnect(cluster)
    return report


def _measure(config, specs, data, dataset_name, run, table, machine, cpus, bench_id, stream, ceiling=None) -> BenchmarkReport:
    started = datetime.now(timezone.utc)
    print(f"benchmark {bench_id}: {len(specs)} {config.model} models ({config.ladder}) on {dataset_name}, "
          f"modes {', '.join(config.modes)}, {config.repeats} repeat(s), {cpus} CPUs", file=stream, flush=True)
    ceiling = dict(ceiling) if ceiling else measure_ceiling(cpus)
    print(f"ceiling: {cpus} CPU-bound processes at once run {ceiling['ceiling_speedup']:.2f}x faster than one after another", file=stream, flush=True)
    median_spec = sorted(specs, key=lambda s: s.cost)[len(specs) // 2]
    ceiling.update(measure_work_ceiling(median_spec, data, min(cpus, len(specs))))
    print(f"work ceiling: {min(cpus, len(specs))} fits of model {median_spec.index} at once run {ceiling['work_ceiling_speedup']:.2f}x faster than in a row", file=stream, flush=True)
    walls: dict[str, list[float]] = {m: [] for m in config.modes}
    last: dict[str, list[Fitted]] = {}
    for repeat in range(config.repeats):
        for mode in config.modes:
            wall, fitted = _run_mode(mode, specs, data, cpus)
            walls[mode].append(wall)
            last[mode] = fitted
            print(f"  repeat {repeat + 1}/{config.repeats} {mode:<10} {wall:7.2f} s", file=stream, flush=True)
    _check_identical(last)
    metric = METRICS[DEFAULT_METRIC[data.task]]
    usable = min(cpus, len(specs))
    median = {m: statistics.median(w) for m, w in walls.items()}
    base = median.get("sequential")
    figures: dict[str, float] = dict(ceiling)
    for mode, wall in median.items():
        figures[f"wall_s_{mode}"] = wall
        if base:
            figures[f"speedup_{mode}"] = base / wall
            figures[f"efficiency_{mode}"] = base / wall / usable
            figures[f"share_of_ceiling_{mode}"] = base / wall / ceiling["ceiling_speedup"]
            figures[f"share_of_work_ceiling_{mode}"] = base / wall / ceiling["work_ceiling_speedup"]
    first = next(iter(last.values()))
    best = (max if metric.greater_is_better else min)(first, key=lambda f: f.scores[metric.name])
    figures.update({f"best_{k}": v for k, v in best.scores.items()})
    figures["best_model_index"] = float(best.index)
    figures["sequential_model_s_mean"] = statistics.mean(f.seconds for f in last.get("sequential", first))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ladder_param = config.ladder.split("=")[0].strip() if config.ladder else "index"
        values = [s.params.get(ladder_param, s.index) for s in specs]
        shown = ("rmse", "r2") if data.task == "regression" else ("accuracy", "f1")
        artifacts = [
            plot_walls(median, ceiling["ceiling_speedup"], out / "wall_time_per_mode.png"),
            plot_timeline(last, out / "timeline.png"),
            plot_ladder(values, {m: [f.scores[m] for f in first] for m in shown}, ladder_param, out / f"metric_vs_{ladder_param}.png"),
        ]
        for mode in config.modes:
            mode_run = tracking.log_nested(
                run.context, name=mode, tags={"mode": mode, "mlfleet.role": "benchmark_mode"},
                metrics={"wall_s": median[mode], **{k.removesuffix(f"_{mode}"): v for k, v in figures.items() if k.endswith(f"_{mode}")}},
                history={"model_s": [f.seconds for f in sorted(last[mode], key=lambda f: f.index)]},
            )
            rows.append(_row(bench_id, mode, median, figures, usable, config, dataset_name, machine, metric, best, mode_run, started))
        (out / "figures.json").write_text(json.dumps({"figures": figures, "walls": walls, "machine": machine}, indent=2))
        artifacts.append(out / "figures.json")
        results.append_once(table, rows, results.arrow_schema(BenchmarkRow), f"mlfleet/{bench_id}")
        tracking.close_sweep(run, metrics=figures, artifacts=artifacts, failed=False)
    for line in summary(figures, config.modes):
        print(line, file=stream)
    return BenchmarkReport(bench_id, run.context.parent_run_id, figures, tuple(rows))


def _run_mode(mode: str, specs, data: BenchData, cpus: int):
    if mode == "sequential":
        return run_sequential(specs, data)
    if mode == "ray":
        return run_ray(specs, data, cpus)
    return run_joblib(specs, data, cpus)


def _check_identical(fitted: dict[str, list[Fitted]]) -> None:
    """Raise MlfleetError unless every mode gave every model exactly the same scores."""
    modes = list(fitted)
    reference = {f.index: f.scores for f in fitted[modes[0]]}
    for mode in modes[1:]:
        for f in fitted[mode]:
            if f.scores != reference[f.index]:
                raise MlfleetError(
                    f"model {f.index} scored {f.scores} in mode {mode} but {reference[f.index]} in mode {modes[0]}: "
                    "the modes did not do the same work, so their times cannot be compared"
                )


def summary(figures: dict[str, float], modes) -> list[str]:
    lines = []
    for mode in modes:
        line = f"{mode:<10} {figures[f'wall_s_{mode}']:7.2f} s"
        if f"speedup_{mode}" in figures:
            line += (f"  speedup {figures[f'speedup_{mode}']:.2f}x  efficiency {figures[f'efficiency_{mode}']:.0%}"
                     f"  {figures[f'share_of_ceiling_{mode}']:.0%} of the ceiling, {figures[f'share_of_work_ceiling_{mode}']:.0%} of the work ceiling")
        lines.append(line)
    lines.append(f"ceiling    {figures['ceiling_speedup']:.2f}x (CPU-bound processes on all cores against the same work in a row)")
    lines.append(f"work ceiling {figures['work_ceiling_speedup']:.2f}x (the median model fitted on all cores at once against in a row: caches and memory shared)")
    return lines


def _split(dataset, config: BenchmarkConfig) -> BenchData:
    from sklearn.model_selection import train_test_split

    stratify = dataset.y if dataset.task == "classification" else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            dataset.X, dataset.y, test_size=config.data.test_size, random_state=config.data.seed, stratify=stratify
        )
    except ValueError as exc:
        raise MlfleetError(f"too few rows to split data={config.data.source}: {exc}; use more data") from None
    return BenchData(X_train.reset_index(drop=True), y_train, X_test.reset_index(drop=True), y_test, dataset.task, dataset.n_classes, config.model)


def _params(config: BenchmarkConfig) -> dict[str, str]:
    return {
        "preset": config.preset, "model": config.model, "n_models": str(config.n_models), "ladder": config.ladder,
        "params": config.params, "modes": ",".join(config.modes), "repeats": str(config.repeats),
        "data": config.data.source, "target": config.data.target, "seed": str(config.data.seed),
    }


def _machine() -> dict[str, str]:
    cpu_model = platform.processor() or ""
    try:
        cpu_model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {p: version(p) for p in ("scikit-learn", "xgboost", "ray", "joblib", "numpy", "mlflow")}
    return {"cpu_count": str(os.cpu_count()), "cpu_model": cpu_model, "hostname": socket.gethostname(),
            "python": platform.python_version(), "versions_json": json.dumps(versions, sort_keys=True)}


def _row(bench_id, mode, median, figures, usable, config, dataset_name, machine, metric, best, mode_run, started) -> BenchmarkRow:
    return BenchmarkRow(
        benchmark_id=bench_id, mode=mode, wall_s=median[mode], speedup=figures.get(f"speedup_{mode}", float("nan")),
        efficiency=figures.get(f"efficiency_{mode}", float("nan")), usable_cpus=usable,
        ceiling_speedup=figures["ceiling_speedup"], share_of_ceiling=figures.get(f"share_of_ceiling_{mode}", float("nan")),
        work_ceiling_speedup=figures["work_ceiling_speedup"], share_of_work_ceiling=figures.get(f"share_of_work_ceiling_{mode}", float("nan")),
        n_models=config.n_models, model=config.model, preset=config.preset, ladder=config.ladder, dataset=dataset_name,
        repeats=config.repeats, cpus=int(machine["cpu_count"]), cpu_model=machine["cpu_model"], hostname=machine["hostname"],
        versions_json=machine["versions_json"], metric=metric.name, best_score=best.scores[metric.name],
        mlflow_run_id=mode_run, started_at=started,
    )
