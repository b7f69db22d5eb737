"""A big table through `train_cpu`: the peak memory of the whole process tree against the table's size.

Generates a table of 1,000,000 rows x 50 columns (40 float columns, 3 integer columns, 6
low-cardinality text columns and a 0/1 target that depends on all three kinds), writes it
as Parquet in a fresh folder and runs `mlflow run . -e train_cpu --env-manager local` on it
with three families, as a user does. While it runs, every 0.5 s, it sums the PSS
(`/proc/<pid>/smaps_rollup`) of every process under the `mlflow run` process: PSS counts a
shared page once, split between the processes that map it, so the object store's pages
(mapped by the raylet and by every worker that reads the split) are not counted again in
each, as RSS would count them. Ray's processes descend from the driver when it starts Ray
itself; any process whose command line names the Ray session's folder is counted too, in
case one was reparented, and the script says how many were.

Then the same fleet on a 2,000-row table of the same columns: the processes' fixed cost
(interpreters, imports, Ray's own processes), so that what the table adds can be told apart.

    python benchmarks/big_table.py                 # 1,000,000 rows (about 10 min on 2 cores)
    python benchmarks/big_table.py --rows 200000   # a quick try
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import _harness
import numpy as np
import pandas as pd

MODELS = "logistic:1,naive_bayes:1,xgboost:1"
#: text columns: name -> levels (one-hot encoded by the column plan: 20 distinct values or fewer)
TEXT = {
    "region": ("north", "south", "east", "west", "central"),
    "channel": ("web", "store", "phone"),
    "plan": ("basic", "plus", "pro", "team"),
    "device": ("ios", "android", "desktop", "tablet", "tv", "other"),
    "segment": tuple(f"seg_{i:02d}" for i in range(12)),
    "weekday": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
}
N_FLOAT, N_INT = 40, 3
BASELINE_ROWS = 2_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """40 float, 3 integer and 6 text columns, and a 0/1 ``target`` with signal in each kind."""
    rng = np.random.default_rng(seed)
    floats = rng.normal(size=(rows, N_FLOAT))
    columns = {f"num_{i:02d}": floats[:, i] for i in range(N_FLOAT)}
    counts = [rng.poisson(lam, rows) for lam in (2, 8, 30)]
    columns.update({f"count_{i}": c for i, c in enumerate(counts)})
    logit = floats[:, :8] @ rng.normal(0, 0.6, 8) + 0.15 * (counts[0] - 2) - 0.05 * (counts[1] - 8)
    for name, levels in TEXT.items():
        codes = rng.integers(0, len(levels), rows)
        logit += rng.normal(0, 0.4, len(levels))[codes]
        columns[name] = np.asarray(levels, dtype=object)[codes]
    columns["target"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(columns)


@dataclass
class Peak:
    pss: int = 0
    private: int = 0
    title: str = ""


@dataclass
class Sampler:
    """Samples the summed PSS of the tree under ``root`` until stopped; keeps the peak and each process's own."""

    root: int
    interval_s: float = 0.5
    peak: int = 0
    peak_at_s: float = 0.0
    peak_parts: list[tuple[int, str, int]] = field(default_factory=list)
    by_pid: dict[int, Peak] = field(default_factory=dict)
    through_session: set[int] = field(default_factory=set)
    samples: int = 0
    session: str = ""
    log: list[str] = field(default_factory=list)  # "seconds pid title pss private" per process and sample

    def run(self, stop: threading.Event) -> None:
        t0 = time.perf_counter()
        while not stop.is_set():
            self.sample(time.perf_counter() - t0)
            stop.wait(self.interval_s)

    def sample(self, at_s: float) -> None:
        parents, cmdlines = _harness.processes()
        tree = _harness.descendants(self.root, parents)
        if not self.session:
            found = (re.search(r"--session[-_]dir=(\S+?session_[\w\-.]+)", cmdlines[p]) for p in tree)
            self.session = next((m.group(1) for m in found if m), "")
        if self.session:
            extra = {p for p, cmd in cmdlines.items() if self.session in cmd and p not in tree}
            self.through_session |= extra
            tree |= extra
        parts = []
        for pid in tree:
            pss, private = _memory(pid)
            if pss is None:
                continue  # gone between the listing and the read
            title = _label(cmdlines.get(pid, ""))
            parts.append((pss, title, pid))
            self.log.append(f"{at_s:.1f}\t{pid}\t{title}\t{pss}\t{private}")
            mine = self.by_pid.setdefault(pid, Peak())
            if pss > mine.pss:
                mine.pss, mine.title = pss, title
            mine.private = max(mine.private, private)
        total = sum(p[0] for p in parts)
        self.samples += 1
        if total > self.peak:
            self.peak, self.peak_at_s, self.peak_parts = total, at_s, sorted(parts, reverse=True)


def _memory(pid: int) -> tuple[int | None, int]:
    """(PSS, private bytes) of ``pid`` from smaps_rollup; (None, 0) when it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None, 0
    kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)}
    return kb.get("Pss", 0) * 1024, (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) * 1024


def _label(cmdline: str) -> str:
    """What a process is, from its command line (the raylet's names default_worker.py too, so the program first)."""
    words = cmdline.split()
    program = Path(words[0]).name if words else "?"
    if cmdline.startswith("ray::"):
        return words[0]  # a worker, titled by its task (ray::000-logistic-all, ray::IDLE) or actor
    if program in ("raylet", "gcs_server"):
        return program
    if "-m mlfleet" in cmdline and program.startswith("python"):
        return "driver (mlfleet train-cpu)"
    if "mlflow run" in cmdline:
        return "mlflow run"
    scripts = [Path(w).name for w in words[1:3] if w.endswith(".py")]
    return scripts[0] if scripts else program


@dataclass
class Measured:
    work: Path
    wall_s: float
    sampler: Sampler
    rows: pd.DataFrame


def run_fleet(work: Path, data: Path, models: str, trials: int, interval_s: float) -> Measured:
    cmd, env = _harness.command(work, "train_cpu", [f"data={data}", f"models={models}", f"n_trials={trials}"])
    print("$", " ".join(cmd[2:]), f"  (in {work})", flush=True)
    log = work / "train_cpu.stderr"
    stop = threading.Event()
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stderr=err)
        sampler = Sampler(proc.pid, interval_s)
        watcher = threading.Thread(target=sampler.run, args=(stop,))
        watcher.start()
        proc.wait()
        stop.set()
        watcher.join()
    wall = time.perf_counter() - t0
    (work / "pss.tsv").write_text("seconds\tpid\tprocess\tpss\tprivate\n" + "\n".join(sampler.log) + "\n")
    if proc.returncode != 0:
        print(log.read_text()[-4000:])
        raise SystemExit(f"train_cpu failed with exit code {proc.returncode}")
    _, _, rows = _harness.sweeps(work)
    return Measured(work, wall, sampler, rows)


def most_at_once(rows: pd.DataFrame) -> tuple[int, float]:
    """The most models training at the same moment, and the most CPUs they asked for, from the rows' times."""
    events = sorted(
        [(r.started_at, 1, r.cpus) for r in rows.itertuples()]
        + [(r.finished_at, -1, -r.cpus) for r in rows.itertuples()]
    )
    models = cpus = most_models = most_cpus = 0
    for _, step, held in events:  # an end sorts before a start at the same instant
        models, cpus = models + step, cpus + held
        most_models, most_cpus = max(most_models, models), max(most_cpus, cpus)
    return most_models, most_cpus


def gib(n: float) -> str:
    return f"{n / (1 << 30):.2f} GiB"


def report(rows: int, models: str, table: int, parquet: int, big: Measured, base: Measured) -> None:
    s, b = big.sampler, base.sampler
    finished = int((big.rows["status"] == "FINISHED").sum())
    at_once, cpus = most_at_once(big.rows)
    bound = 2 + 1.5 * at_once
    ratio = s.peak / table
    above = s.peak - b.peak
    print(
        f"\nrows {rows:,}, columns {N_FLOAT + N_INT + len(TEXT) + 1} ({N_FLOAT} float, {N_INT} integer, "
        f"{len(TEXT)} text, the target)"
    )
    print(f"table in memory {gib(table)} (pandas memory_usage(deep=True) as read); Parquet file {gib(parquet)}")
    print(
        f"models {models}: {finished}/{len(big.rows)} FINISHED, at most {at_once} at once, "
        f"asking for {cpus:g} CPUs of {os.cpu_count()}; wall {big.wall_s:.1f} s"
    )
    print(
        f"peak summed PSS {gib(s.peak)} = {ratio:.2f}x the table, at {s.peak_at_s:.0f} s "
        f"({s.samples} samples, {len(s.by_pid)} processes, {len(s.through_session)} counted only through the "
        f"Ray session folder {s.session or '(none found)'})"
    )
    print(
        f"bound (2 + 1.5 x {at_once} models at once) x table = {bound:.1f}x = {gib(bound * table)}: "
        f"{'held' if ratio <= bound else 'NOT held'}"
    )
    print(
        f"the same fleet on {BASELINE_ROWS:,} rows: peak {gib(b.peak)} (the processes' fixed cost); "
        f"the big table adds {gib(above)} = {above / table:.2f}x the table: the bound "
        f"{'held' if above / table <= bound else 'NOT held'} without the fixed cost"
    )
    print("at the peak:")
    for pss, title, pid in s.peak_parts[:8]:
        print(f"  {title:<28} pid {pid:<7} PSS {gib(pss)} = {pss / table:.2f}x")
    for name, test in (
        ("driver", lambda t: t.startswith("driver")),
        ("largest worker", lambda t: t.startswith("ray::")),
        ("raylet", lambda t: t == "raylet"),
    ):
        peaks = [p for p in s.by_pid.values() if test(p.title)]
        if peaks:
            top = max(peaks, key=lambda p: p.pss)
            base_top = max((p.pss for p in b.by_pid.values() if test(p.title)), default=0)
            print(
                f"{name} ({top.title}): peak PSS {gib(top.pss)} = {top.pss / table:.2f}x the table, "
                f"{(top.pss - base_top) / table:.2f}x above its peak on {BASELINE_ROWS:,} rows; "
                f"private at most {gib(top.private)}"
            )
    print(f"every sample: {big.work / 'pss.tsv'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    args = parser.parse_args()
    measured = {}
    for rows in (args.rows, BASELINE_ROWS):
        work = _harness.workspace("mlfleet-big-table-")
        data = work / f"table_{rows}.parquet"
        t0 = time.perf_counter()
        make_table(rows).to_parquet(data, index=False)
        print(f"{rows:,} rows written to {data} in {time.perf_counter() - t0:.1f} s", flush=True)
        frame = pd.read_parquet(data)
        table = int(frame.memory_usage(deep=True).sum())
        del frame
        measured[rows] = (table, data.stat().st_size, run_fleet(work, data, args.models, args.trials, args.interval))
    table, parquet, big = measured[args.rows]
    report(args.rows, args.models, table, parquet, big, measured[BASELINE_ROWS][2])


if __name__ == "__main__":
    main()
