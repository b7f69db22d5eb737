"""The same models trained three ways (one after another, as Ray tasks, with joblib) and the machine's ceiling."""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass

from mlfleet.commands.speedup.spec import ModelSpec
from mlfleet.data import Split
from mlfleet.metrics import predict_with_proba, score_all


@dataclass(frozen=True)
class BenchData:
    """The command's split (:func:`mlfleet.data.split_dataset`) and the family, shared by every mode
    (and put in Ray's object store once). Models fit on the training rows."""

    split: Split
    model: str

    @property
    def task(self) -> str:
        return self.split.task


@dataclass(frozen=True)
class Fitted:
    """One model trained in one mode: its test scores (and validation scores), when it ran and on which worker."""

    index: int
    scores: dict[str, float]
    start: float
    end: float
    worker: str
    val_scores: dict[str, float] | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


def fit_one(spec: ModelSpec, data: BenchData) -> Fitted:
    """Fit preprocessing + the family's model with ``spec.params`` on one core; score on validation and test."""
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    from mlfleet.data import build_preprocessor
    from mlfleet.zoo import family

    fam, split = family(data.model), data.split
    start = time.time()
    with threadpool_limits(limits=1):
        model = Pipeline(
            [
                ("prep", build_preprocessor(split.plan, sparse=fam.sparse, seed=spec.seed)),
                ("model", fam.build(split.task, spec.params, spec.seed, 1)),
            ]
        )
        model.fit(split.X_train, split.y_train)
        scores = {}
        for part, X, y in (("val", split.X_val, split.y_val), ("test", split.X_test, split.y_test)):
            pred, proba = predict_with_proba(model, X, split.task)
            scores[part] = score_all(split.task, y, pred, proba, split.n_classes)
    return Fitted(spec.index, scores["test"], start, time.time(), f"pid {os.getpid()}", scores["val"])


def _warm(_item=None, _shared=None) -> int:
    """Import what a fit needs, so worker start-up is not timed as training (the process pools' warm-up)."""
    from mlfleet.execution.tasks import warm_imports

    warm_imports()
    time.sleep(0.3)  # held long enough that every worker gets one
    return os.getpid()


def _fit_all(specs: tuple[ModelSpec, ...], data: BenchData) -> tuple[float, list[Fitted]]:
    t0 = time.perf_counter()
    fitted = [fit_one(s, data) for s in specs]
    return time.perf_counter() - t0, fitted


def run_sequential(specs: tuple[ModelSpec, ...], data: BenchData, cpus: int) -> tuple[float, list[Fitted]]:
    """One worker process fits every model, one after another.

    Not the driver itself: a driver holding Ray and MLflow runs Python measurably slower
    than a fresh worker, which would flatter the parallel modes.
    """
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as executor:
        executor.submit(_warm).result()
        return executor.submit(_fit_all, specs, data).result()


def run_ray(specs: tuple[ModelSpec, ...], data: BenchData, cpus: int) -> tuple[float, list[Fitted]]:
    """Through the fleet's scheduler: one task per model, 1 CPU each, longest first, data shared once."""
    from mlfleet.execution import tasks

    tasks.warm(cpus, hold_s=0.3, wait=True)
    t0 = time.perf_counter()
    fitted = tasks.map_tasks(fit_one, list(specs), shared=data, cost=lambda s: s.cost)
    return time.perf_counter() - t0, fitted


def run_joblib(specs: tuple[ModelSpec, ...], data: BenchData, cpus: int) -> tuple[float, list[Fitted]]:
    """What a user would otherwise reach for: joblib's loky processes, the same order."""
    from joblib import Parallel, delayed

    with Parallel(n_jobs=cpus, backend="loky") as parallel:
        parallel(delayed(_warm)() for _ in range(cpus))
        ordered = sorted(specs, key=lambda s: -s.cost)
        t0 = time.perf_counter()
        fitted = parallel(delayed(fit_one)(s, data) for s in ordered)
        wall = time.perf_counter() - t0
    return wall, sorted(fitted, key=lambda f: f.index)


def measure_work_ceiling(spec: ModelSpec, data: BenchData, cpus: int) -> dict[str, float]:
    """This workload's own ceiling: ``cpus`` copies of one of its models fitted at once against in a row.

    The spinning ceiling measures the cores; fitting a model also contends for caches and
    memory bandwidth, which two cores of one chip share. Fitting ``spec`` (the benchmark's
    median model) in ``cpus`` processes at once, and ``cpus`` times in one process, gives
    the best speedup any scheduler could reach on this work on this machine.
    """
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=cpus, mp_context=multiprocessing.get_context("spawn")) as executor:
        list(executor.map(_warm, range(cpus)))
        t0 = time.perf_counter()
        list(executor.map(fit_one, [spec] * cpus, [data] * cpus))
        parallel = time.perf_counter() - t0
        sequential, _ = executor.submit(_fit_all, (spec,) * cpus, data).result()
    return {
        "work_ceiling_sequential_s": sequential,
        "work_ceiling_parallel_s": parallel,
        "work_ceiling_speedup": sequential / parallel,
    }


def _spin(units: int) -> float:
    total = 0.0
    for _ in range(units * 1_000_000):
        total += 1.0
    return total


def _timed_spin(units: int) -> float:
    t0 = time.perf_counter()
    _spin(units)
    return time.perf_counter() - t0


def measure_ceiling(cpus: int, seconds: float = 1.0, trials: int = 3) -> dict[str, float]:
    """The machine's own ceiling: ``cpus`` CPU-bound processes at once against the same work in a row.

    Each process spins for about ``seconds``; the sequential side runs the same ``cpus`` pieces
    one after another in one such process. The median of ``trials`` such pairs is reported
    (a process starting up elsewhere, Ray's agents just after start, can spoil one pair).
    Returns both wall times and their ratio, the best speedup any scheduler can reach here.
    """
    ctx = multiprocessing.get_context("spawn")
    pairs = []
    with ctx.Pool(cpus) as pool:
        per_unit = min(pool.map(_timed_spin, [1] * cpus))  # also starts the processes
        units = max(1, round(seconds / per_unit))
        for _ in range(trials):
            t0 = time.perf_counter()
            pool.map(_spin, [units] * cpus)
            parallel = time.perf_counter() - t0
            pairs.append((pool.apply(_timed_spin, (units * cpus,)) / parallel, parallel))
    speedup, parallel = sorted(pairs)[len(pairs) // 2]
    return {"ceiling_sequential_s": speedup * parallel, "ceiling_parallel_s": parallel, "ceiling_speedup": speedup}


#: how each mode runs the same models: one worker after another, Ray tasks, joblib's processes
MODES = {"sequential": run_sequential, "ray": run_ray, "joblib": run_joblib}
