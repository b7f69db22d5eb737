"""One benchmark from config to figures, runs, plots and rows: what the ``benchmark`` entry point calls."""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import statistics
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import TextIO

from mlfleet import logs
from mlfleet.commands.speedup.modes import (
    BenchData,
    Fitted,
    measure_ceiling,
    measure_work_ceiling,
    run_joblib,
    run_ray,
    run_sequential,
)
from mlfleet.commands.speedup.plots import plot_ladder, plot_timeline, plot_walls
from mlfleet.commands.speedup.spec import ModelSpec, apply_preset, expand_ladder
from mlfleet.config import MODES, BenchmarkConfig, logged_params
from mlfleet.data import load_dataset, plan_columns
from mlfleet.errors import MlfleetError
from mlfleet.execution import cluster as ray_cluster
from mlfleet.ids import new_id
from mlfleet.metrics import DEFAULT_METRIC, METRICS
from mlfleet.stores import tracking
from mlfleet.stores.recorder import Recorder
from mlfleet.stores.rows import TableSpec
from mlfleet.stores.tables import open_results, require_delta

log = logging.getLogger(__name__)


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


BENCHMARKS = TableSpec("benchmark_results", BenchmarkRow, ("benchmark_id", "mode"))


@dataclass(frozen=True)
class _Bench:
    """One benchmark under way: what it trains, where it records, on how many CPUs."""

    config: BenchmarkConfig
    specs: tuple[ModelSpec, ...]
    data: BenchData
    dataset_name: str
    run: tracking.SweepRun
    recorder: Recorder
    machine: dict[str, str]
    cpus: int
    started: datetime

    @property
    def bench_id(self) -> str:
        return self.run.context.sweep_id


@dataclass(frozen=True)
class _Timed:
    """The modes' wall times (every repeat), the last repeat's fits, and the figures derived from them."""

    walls: dict[str, list[float]]
    last: dict[str, list[Fitted]]
    figures: dict[str, float]
    median: dict[str, float]
    best: Fitted


def run_benchmark(config: BenchmarkConfig, *, stream: TextIO | None = None) -> BenchmarkReport:
    """Train the same models in each mode, check they score the same, report and record the figures.

    Raises MlfleetError on bad input, and when the modes' scores differ (a benchmark of
    different work would measure nothing).
    """
    with logs.console(stream):
        config = apply_preset(config)
        _check(config)
        dataset = load_dataset(config.data)
        specs = expand_ladder(config, dataset.task)
        data = _split(dataset, config)
        table = open_results(config.results, BENCHMARKS)
        require_delta(table, "benchmark")
        table.check_writable()
        uri = tracking.checked_store(config.experiment)
        # a local Ray's ceiling is measured before it starts: its agents are busy for seconds after
        ceiling = None if config.address else measure_ceiling(os.cpu_count() or 1)
        cluster = ray_cluster.connect(config.address)
        try:
            log.info(data.columns.describe())
            tracking.prepare_store(uri)
            table.ensure()
            bench = _open(config, specs, data, dataset, table, uri, int(cluster.total_cpus))
            try:
                return _measure(bench, ceiling)
            except BaseException as exc:
                tracking.abort_sweep(bench.run, "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc))
                raise
        finally:
            ray_cluster.disconnect(cluster)


def _check(config: BenchmarkConfig) -> None:
    unknown = [m for m in config.modes if m not in MODES]
    if unknown or not config.modes:
        raise MlfleetError(f"modes must be among {', '.join(MODES)}, but got modes={','.join(config.modes)!r}")
    if config.repeats < 1:
        raise MlfleetError(f"repeats must be at least 1, but got repeats={config.repeats}")


def _open(config, specs, data, dataset, table, uri: str, cpus: int) -> _Bench:
    machine = _machine()
    run = tracking.open_sweep(
        uri=uri,
        experiment=config.experiment,
        sweep_id=new_id("benchmark"),
        entry_point="benchmark",
        params={**logged_params(config), **machine},
        dataset=None,
        tags={"task": dataset.task, "dataset": dataset.name, **data.columns.tags()},
        role="benchmark",
        documents=data.columns.documents(),
    )
    started = datetime.now(timezone.utc)
    return _Bench(config, specs, data, dataset.name, run, Recorder(run.context, table), machine, cpus, started)


def _measure(bench: _Bench, ceiling: dict[str, float] | None) -> BenchmarkReport:
    config, specs, cpus = bench.config, bench.specs, bench.cpus
    log.info(
        "benchmark %s: %d %s models (%s) on %s, modes %s, %d repeat(s), %d CPUs",
        bench.bench_id, len(specs), config.model, config.ladder, bench.dataset_name,
        ", ".join(config.modes), config.repeats, cpus,
    )  # fmt: skip
    ceilings = _ceilings(bench, ceiling)
    timed = _time_modes(bench, ceilings)
    rows = _record(bench, timed)
    for line in summary(timed.figures, config.modes):
        log.info(line)
    return BenchmarkReport(bench.bench_id, bench.run.context.parent_run_id, timed.figures, tuple(rows))


def _ceilings(bench: _Bench, ceiling: dict[str, float] | None) -> dict[str, float]:
    cpus, specs = bench.cpus, bench.specs
    ceiling = dict(ceiling) if ceiling else measure_ceiling(cpus)
    log.info(
        "ceiling: %d CPU-bound processes at once run %.2fx faster than one after another",
        cpus,
        ceiling["ceiling_speedup"],
    )
    median_spec = sorted(specs, key=lambda s: s.cost)[len(specs) // 2]
    ceiling.update(measure_work_ceiling(median_spec, bench.data, min(cpus, len(specs))))
    log.info(
        "work ceiling: %d fits of model %d at once run %.2fx faster than in a row",
        min(cpus, len(specs)), median_spec.index, ceiling["work_ceiling_speedup"],
    )  # fmt: skip
    return ceiling


def _time_modes(bench: _Bench, ceiling: dict[str, float]) -> _Timed:
    config, specs, data, cpus = bench.config, bench.specs, bench.data, bench.cpus
    walls: dict[str, list[float]] = {m: [] for m in config.modes}
    last: dict[str, list[Fitted]] = {}
    for repeat in range(config.repeats):
        for mode in config.modes:
            wall, fitted = _run_mode(mode, specs, data, cpus)
            walls[mode].append(wall)
            last[mode] = fitted
            log.info("  repeat %d/%d %-10s %7.2f s", repeat + 1, config.repeats, mode, wall)
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
    return _Timed(walls, last, figures, median, best)


def _record(bench: _Bench, timed: _Timed) -> list[BenchmarkRow]:
    """A nested run and a row per mode, the plots and figures.json on the parent, the rows in one commit."""
    config, figures = bench.config, timed.figures
    metric = METRICS[DEFAULT_METRIC[bench.data.task]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = _plots(bench, timed, Path(tmp))
        for mode in config.modes:
            mode_run = bench.recorder.nested(
                mode,
                tags={"mode": mode, "mlfleet.role": "benchmark_mode"},
                metrics={
                    "wall_s": timed.median[mode],
                    **{k.removesuffix(f"_{mode}"): v for k, v in figures.items() if k.endswith(f"_{mode}")},
                },
                history={"model_s": [f.seconds for f in sorted(timed.last[mode], key=lambda f: f.index)]},
            )
            rows.append(_row(bench, mode, timed, metric, mode_run))
        figures_json = Path(tmp) / "figures.json"
        figures_json.write_text(
            json.dumps({"figures": figures, "walls": timed.walls, "machine": bench.machine}, indent=2)
        )
        bench.recorder.write(rows, app_id=f"mlfleet/{bench.bench_id}")
        tracking.close_sweep(bench.run, metrics=figures, artifacts=[*artifacts, figures_json], failed=False)
    return rows


def _plots(bench: _Bench, timed: _Timed, out: Path) -> list[Path]:
    config, specs = bench.config, bench.specs
    ladder_param = config.ladder.split("=")[0].strip() if config.ladder else "index"
    values = [s.params.get(ladder_param, s.index) for s in specs]
    shown = ("rmse", "r2") if bench.data.task == "regression" else ("accuracy", "f1")
    first = next(iter(timed.last.values()))
    return [
        plot_walls(timed.median, timed.figures["ceiling_speedup"], out / "wall_time_per_mode.png"),
        plot_timeline(timed.last, out / "timeline.png"),
        plot_ladder(
            values,
            {m: [f.scores[m] for f in first] for m in shown},
            ladder_param,
            out / f"metric_vs_{ladder_param}.png",
        ),
    ]


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
            line += (
                f"  speedup {figures[f'speedup_{mode}']:.2f}x  efficiency {figures[f'efficiency_{mode}']:.0%}"
                f"  {figures[f'share_of_ceiling_{mode}']:.0%} of the ceiling, "
                f"{figures[f'share_of_work_ceiling_{mode}']:.0%} of the work ceiling"
            )
        lines.append(line)
    lines.append(
        f"ceiling    {figures['ceiling_speedup']:.2f}x "
        "(CPU-bound processes on all cores against the same work in a row)"
    )
    lines.append(
        f"work ceiling {figures['work_ceiling_speedup']:.2f}x "
        "(the median model fitted on all cores at once against in a row: caches and memory shared)"
    )
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
    plan = plan_columns(X_train, drop=dataset.drop, y=y_train, classes=dataset.classes)
    return BenchData(
        X_train[plan.used].reset_index(drop=True),
        y_train,
        X_test[plan.used].reset_index(drop=True),
        y_test,
        dataset.task,
        dataset.n_classes,
        config.model,
        plan,
    )


def _machine() -> dict[str, str]:
    cpu_model = platform.processor() or ""
    try:
        cpu_model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    versions = {p: version(p) for p in ("scikit-learn", "xgboost", "ray", "joblib", "numpy", "mlflow")}
    return {
        "cpu_count": str(os.cpu_count()),
        "cpu_model": cpu_model,
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "versions_json": json.dumps(versions, sort_keys=True),
    }


def _row(bench: _Bench, mode: str, timed: _Timed, metric, mode_run: str) -> BenchmarkRow:
    config, figures, machine = bench.config, timed.figures, bench.machine
    return BenchmarkRow(
        benchmark_id=bench.bench_id,
        mode=mode,
        wall_s=timed.median[mode],
        speedup=figures.get(f"speedup_{mode}", float("nan")),
        efficiency=figures.get(f"efficiency_{mode}", float("nan")),
        usable_cpus=min(bench.cpus, len(bench.specs)),
        ceiling_speedup=figures["ceiling_speedup"],
        share_of_ceiling=figures.get(f"share_of_ceiling_{mode}", float("nan")),
        work_ceiling_speedup=figures["work_ceiling_speedup"],
        share_of_work_ceiling=figures.get(f"share_of_work_ceiling_{mode}", float("nan")),
        n_models=config.n_models,
        model=config.model,
        preset=config.preset,
        ladder=config.ladder,
        dataset=bench.dataset_name,
        repeats=config.repeats,
        cpus=int(machine["cpu_count"]),
        cpu_model=machine["cpu_model"],
        hostname=machine["hostname"],
        versions_json=machine["versions_json"],
        metric=metric.name,
        best_score=timed.best.scores[metric.name],
        mlflow_run_id=mode_run,
        started_at=bench.started,
    )
