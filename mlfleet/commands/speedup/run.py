"""One benchmark from config to figures, runs, plots and rows: what the ``benchmark`` entry point calls."""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

from mlfleet.commands.skeleton import Closing, Command, Context, run_command
from mlfleet.commands.speedup.modes import MODES, BenchData, Fitted, measure_ceiling, measure_work_ceiling
from mlfleet.commands.speedup.plots import plot_ladder, plot_timeline, plot_walls
from mlfleet.commands.speedup.spec import ModelSpec, apply_preset, expand_ladder
from mlfleet.config import BenchmarkConfig, logged_params
from mlfleet.data import load_dataset, split_dataset
from mlfleet.errors import MlfleetError
from mlfleet.ids import new_id
from mlfleet.metrics import DEFAULT_METRIC, METRICS
from mlfleet.settings import Settings
from mlfleet.stores.recorder import SweepRecorder
from mlfleet.stores.rows import TableSpec
from mlfleet.stores.tables import ResultsTable, open_results

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
    # later columns: tables written before gain them by schema evolution
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
class _Plan:
    """A benchmark checked: its config, models, data, table, and the machine's ceiling measured before Ray."""

    config: BenchmarkConfig
    specs: tuple[ModelSpec, ...]
    data: BenchData
    dataset: Any
    table: ResultsTable
    ceiling: dict[str, float] | None


@dataclass(frozen=True)
class _Bench:
    """One benchmark under way: what it trains, where it records, on how many CPUs."""

    config: BenchmarkConfig
    specs: tuple[ModelSpec, ...]
    data: BenchData
    dataset_name: str
    recorder: SweepRecorder
    machine: dict[str, str]
    cpus: int
    started: datetime
    ceiling: dict[str, float] | None = None

    @property
    def bench_id(self) -> str:
        return self.recorder.tracking.sweep_id


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
    return run_command(BenchmarkCommand(apply_preset(config)), stream=stream)


class BenchmarkCommand(Command):
    """A benchmark's own parts of the command skeleton (:mod:`mlfleet.commands.skeleton`); the driver
    records the modes, its tasks log nothing."""

    workers_log = False

    def plan(self, settings: Settings) -> _Plan:
        config = self.config
        _check(config)
        dataset = load_dataset(config.data)
        specs = expand_ladder(config, dataset.task)
        split = split_dataset(
            dataset, test_size=config.data.test_size, val_size=config.data.val_size, seed=config.data.seed
        )
        table = open_results(config.results, BENCHMARKS)
        table.check_takes("benchmark")
        table.check_writable()
        # a local Ray's ceiling is measured before it starts: its agents are busy for seconds after
        ceiling = None if config.address else measure_ceiling(os.cpu_count() or 1)
        return _Plan(config, specs, BenchData(split, config.model), dataset, table, ceiling)

    def open(self, plan: _Plan, settings: Settings, uri: str, cluster) -> tuple[_Bench, SweepRecorder]:
        config, dataset, split = plan.config, plan.dataset, plan.data.split
        log.info(split.plan.describe())
        plan.table.ensure()
        machine = _machine()
        recorder = SweepRecorder.open(
            plan.table,
            uri=uri,
            settings=settings,
            experiment=config.experiment,
            sweep_id=new_id("benchmark"),
            entry_point="benchmark",
            params={**logged_params(config), **machine},
            dataset=None,
            tags={"task": dataset.task, "dataset": dataset.name, "split": split.key, **split.plan.tags()},
            role="benchmark",
            documents=split.plan.documents(),
        )
        started = datetime.now(timezone.utc)
        cpus = int(cluster.total_cpus)
        bench = _Bench(config, plan.specs, plan.data, dataset.name, recorder, machine, cpus, started, plan.ceiling)
        return bench, recorder

    def body(self, bench: _Bench, context: Context) -> Closing:
        return _measure(bench)

    def summary(self, report: BenchmarkReport) -> str:
        return "\n".join(summary(report.figures, self.config.modes))


def _check(config: BenchmarkConfig) -> None:
    unknown = [m for m in config.modes if m not in MODES]
    if unknown or not config.modes:
        raise MlfleetError(f"modes must be among {', '.join(MODES)}, but got modes={','.join(config.modes)!r}")
    if config.repeats < 1:
        raise MlfleetError(f"repeats must be at least 1, but got repeats={config.repeats}")


def _measure(bench: _Bench) -> Closing:
    config, specs, cpus = bench.config, bench.specs, bench.cpus
    log.info(
        "benchmark %s: %d %s models (%s) on %s, modes %s, %d repeat(s), %d CPUs",
        bench.bench_id, len(specs), config.model, config.ladder, bench.dataset_name,
        ", ".join(config.modes), config.repeats, cpus,
    )  # fmt: skip
    ceilings = _ceilings(bench, bench.ceiling)
    timed = _time_modes(bench, ceilings)
    rows = _record(bench, timed)
    report = BenchmarkReport(bench.bench_id, bench.recorder.tracking.parent_run_id, timed.figures, tuple(rows))
    figures_json = {"figures": timed.figures, "walls": timed.walls, "machine": bench.machine}
    files = {
        **_plots(bench, timed),
        "figures.json": lambda path: path.write_text(json.dumps(figures_json, indent=2)),
    }
    return Closing(report, timed.figures, files=files)


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
    # chosen on validation, reported on test (the order of the models is never the test's)
    best = (max if metric.greater_is_better else min)(first, key=lambda f: (f.val_scores or f.scores)[metric.name])
    figures.update({f"best_{k}": v for k, v in best.scores.items()})
    figures["best_model_index"] = float(best.index)
    figures["sequential_model_s_mean"] = statistics.mean(f.seconds for f in last.get("sequential", first))
    return _Timed(walls, last, figures, median, best)


def _record(bench: _Bench, timed: _Timed) -> list[BenchmarkRow]:
    """A nested run and a row per mode; the rows in one commit."""
    config, figures = bench.config, timed.figures
    metric = METRICS[DEFAULT_METRIC[bench.data.task]]
    rows = []
    for mode in config.modes:
        mode_run = bench.recorder.model.nested(
            mode,
            tags={"mode": mode, "mlfleet.role": "benchmark_mode"},
            metrics={
                "wall_s": timed.median[mode],
                **{k.removesuffix(f"_{mode}"): v for k, v in figures.items() if k.endswith(f"_{mode}")},
            },
            history={"model_s": [f.seconds for f in sorted(timed.last[mode], key=lambda f: f.index)]},
        )
        rows.append(_row(bench, mode, timed, metric, mode_run))
    bench.recorder.rows_of_one_transaction(rows, f"mlfleet/{bench.bench_id}")
    return rows


def _plots(bench: _Bench, timed: _Timed) -> dict:
    """What writes each plot of the parent run, by file name."""
    config, specs = bench.config, bench.specs
    ladder_param = config.ladder.split("=")[0].strip() if config.ladder else "index"
    values = [s.params.get(ladder_param, s.index) for s in specs]
    shown = ("rmse", "r2") if bench.data.task == "regression" else ("accuracy", "f1")
    first = next(iter(timed.last.values()))
    return {
        "wall_time_per_mode.png": lambda path: plot_walls(timed.median, timed.figures["ceiling_speedup"], path),
        "timeline.png": lambda path: plot_timeline(timed.last, path),
        f"metric_vs_{ladder_param}.png": lambda path: plot_ladder(
            values, {m: [f.scores[m] for f in first] for m in shown}, ladder_param, path
        ),
    }


def _run_mode(mode: str, specs, data: BenchData, cpus: int):
    return MODES[mode](specs, data, cpus)


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
