"""Throughput: the default fleet, and the floor of a fleet of many small models.

Runs, one after the other in fresh folders, exactly as a user does:

1. the default sweep, `mlflow run . -e train_cpu --env-manager local` (90 models, 10 trials);
2. `-P models=naive_bayes:1000 -P n_trials=1 -P n_samples=2000`: a fleet of a thousand
   models whose fits take milliseconds, so what it costs is the per-model overhead (the run,
   its parameters and metrics, the logged model, the Delta row, the Ray task).

While each runs, every 0.5 s, it reads the CPU time (`/proc/<pid>/stat`) of every process under
`mlflow run` (the driver, Ray's processes and workers). The fleet's overhead is that CPU
within the sweep (the parent run's start to its end) less the model work's own CPU
(`fit_cpu_s`, tuning and fitting), per model. It prints, per sweep: wall time, CPU
utilisation, packing efficiency, tracking per model (median and share of the model work),
and for the thousand: the overhead core-seconds per model, models per minute, that every
model is a FINISHED run with a logged model and one row, and how long one read of the
results table takes afterwards. Last, the figures the issue measured before (the seed's
pattern and mlfleet then) beside today's.

    python benchmarks/throughput.py                   # both (about 6 min on 2 cores)
    python benchmarks/throughput.py --small-models 300 --skip-default
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from dataclasses import dataclass, field

import _harness
from big_table import _descendants, _processes

TICK = os.sysconf("SC_CLK_TCK")
#: measured before (issue 17): the seed notebooks' pattern, and mlfleet before that issue
BEFORE = {
    "default": {
        "seed's pattern": "1010 s, tracking median 4.71 s",
        "mlfleet then": "409 s, CPU 67.7%, tracking 0.75 s",
    },
    "floor": "0.69 core-s of overhead per model (naive_bayes:300, 1 trial, 2,000 rows; sweep 102.9 s)",
}


@dataclass
class CpuSampler:
    """The CPU-seconds of every process under ``root``, sampled until stopped, with their times."""

    root: int
    interval_s: float = 0.5
    samples: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # pid -> [(time, cpu_s)]

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.sample()
            stop.wait(self.interval_s)
        self.sample()

    def sample(self) -> None:
        parents, _ = _processes()
        now = time.time()
        for pid in _descendants(self.root, parents):
            cpu = _cpu_s(pid)
            if cpu is not None:
                self.samples.setdefault(pid, []).append((now, cpu))

    def between(self, start: float, end: float) -> float:
        """The tree's CPU-seconds from ``start`` to ``end`` (epoch seconds), each process by its own samples."""
        total = 0.0
        for points in self.samples.values():
            inside = [cpu for t, cpu in points if start <= t <= end]
            before = [cpu for t, cpu in points if t < start]
            if inside:
                total += inside[-1] - (before[-1] if before else 0.0)
        return total

    def whole(self) -> float:
        return sum(points[-1][1] for points in self.samples.values())


def _cpu_s(pid: int) -> float | None:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


@dataclass
class Sweep:
    name: str
    wall_s: float
    metrics: dict
    rows: object
    children: list
    window_cpu_s: float
    whole_cpu_s: float
    read_s: float


def measure(name: str, params: list[str]) -> Sweep:
    import subprocess

    from mlfleet.stores.tables import open_results

    work = _harness.workspace(f"mlfleet-throughput-{name}-")
    cmd, env = _harness.command(work, "train_cpu", params)
    print("$", " ".join(cmd[2:]), f"  (in {work})", flush=True)
    stop = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    sampler = CpuSampler(proc.pid)
    watcher = threading.Thread(target=sampler.run, args=(stop,))
    watcher.start()
    _, stderr = proc.communicate()
    stop.set()
    watcher.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(stderr[-4000:])
        raise SystemExit(f"train_cpu failed with exit code {proc.returncode}")
    parents, children, rows = _harness.sweeps(work)
    parent = parents[0]
    start, end = parent.info.start_time / 1000, parent.info.end_time / 1000
    reads = []
    for _ in range(3):
        r0 = time.perf_counter()
        open_results(str(work / _harness.TABLE)).read()
        reads.append(time.perf_counter() - r0)
    shutil.rmtree(work, ignore_errors=True)
    return Sweep(
        name, wall, parent.data.metrics, rows, children, sampler.between(start, end), sampler.whole(), min(reads)
    )


def report(s: Sweep) -> None:
    m, n = s.metrics, len(s.rows)
    finished = int((s.rows["status"] == "FINISHED").sum())
    logged = sum(1 for r in s.children if r.info.status == "FINISHED" and r.data.tags.get("mlfleet.model_uri"))
    overhead = (s.window_cpu_s - m["fit_cpu_s"]) / n
    print(f"\n== {s.name}: {n} models ==")
    print(f"command wall         {s.wall_s:8.1f} s (sweep {m['wall_s']:.1f} s); {60 * n / m['wall_s']:.0f} models/min")
    print(f"finished             {finished}/{n} rows FINISHED, {logged} FINISHED runs with a logged model")
    print(
        f"CPU utilisation      {m['cpu_utilisation']:.1%}; packing efficiency {m['packing_efficiency']:.1%} "
        f"(ideal {m['ideal_wall_s']:.1f} s)"
    )
    print(
        f"tracking per model   median {m['tracking_s_median']:.3f} s, p95 {m['tracking_s_p95']:.3f} s, "
        f"{m['tracking_share']:.1%} of the model work"
    )
    print(
        f"CPU in the sweep     {s.window_cpu_s:.1f} core-s by every process (whole command {s.whole_cpu_s:.1f}), "
        f"model work {m['fit_cpu_s']:.1f}: overhead {overhead:.3f} core-s per model"
    )
    print(f"results table read   {s.read_s:.3f} s (best of 3, {n} rows)")
    families = sorted(key.split("/", 1)[1] for key in m if key.startswith("cores_held/"))
    if families:  # the sweeps of this code log them; older code's do not
        print("cores per model      held / used fitting / used over the task")
        for fam in families:
            print(
                f"  {fam:18} {m[f'cores_held/{fam}']:.2g} / {m[f'cores_used/{fam}']:.2f} / "
                f"{m[f'task_cores_used/{fam}']:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-models", type=int, default=1000)
    parser.add_argument("--skip-default", action="store_true")
    args = parser.parse_args()
    measured = []
    if not args.skip_default:
        measured.append(measure("default", []))
    small = [f"models=naive_bayes:{args.small_models}", "n_trials=1", "n_samples=2000"]
    measured.append(measure("small", small))
    print(f"\nmachine: {os.cpu_count()} CPUs")
    for s in measured:
        report(s)
    print("\nbefore (issue 17, same machine):")
    for what, figures in BEFORE["default"].items():
        print(f"  default fleet, {what}: {figures}")
    print(f"  floor: {BEFORE['floor']}")
    if measured and measured[-1].name == "small":
        s = measured[-1]
        print(
            f"  floor now: {(s.window_cpu_s - s.metrics['fit_cpu_s']) / len(s.rows):.3f} core-s per model (target 0.2)"
        )


if __name__ == "__main__":
    main()
