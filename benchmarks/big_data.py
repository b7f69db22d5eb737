"""A table bigger than the driver may hold through the partition ensemble: who holds what at the peak.

Writes N rows x 20 columns (19 float64 features and a 0/1 target; 8,000,000 rows by default,
1.19 GiB in pandas) as 8 Parquet files of 4 row groups into a fresh folder, then runs

    mlflow run . -e ensemble --env-manager local -P data=<folder> -P target=y -P partitions=8 -P model=logistic

as a user does, with ``MLFLEET_MEMORY_BYTES`` set to the table's in-memory size over ``--times``
(2 by default: half the table; the issue asks for 4): the driver may not hold the table, so
``sharded=auto`` reads each member's shard on its worker. While it runs, every ``--interval``
seconds, it reads each process's peak resident memory (``VmHWM``) and PSS (``smaps_rollup``: a
shared page counted once) under the command, and prints:

- the table's size in pandas and on disk, and the limit given to the driver;
- the driver's peak RSS (``VmHWM``, also the parent run's ``driver_peak_rss_bytes``), what it
  read of the table (its Reader's counters: bytes and rows decoded; metadata only), and what the
  holdout task read for the validation rows (bytes, rows decoded, rows kept);
- each Ray worker's peak RSS, and the whole process tree's peak summed PSS;
- the wall time, and the verdict.

With ``--nodes K`` the same on a local multi-node Ray: a head with no CPUs (the driver's node)
and K worker nodes started with ``ray start`` on this machine (``--node-cpus``, ``--node-memory``
each), the command joining with ``address=`` and ``MLFLEET_SHARED_STORAGE=1`` (every node is on
this machine, so the sqlite store and the results folder are shared); it prints each node's
peak summed PSS, the most Ray's object store held at once across the nodes (``memory_summary``,
polled) and what it spilled, the bytes each node's object manager pushed and received (Ray's
``ray_object_manager_bytes``, where Ray exports metrics: it needs ``prometheus_client``), and
what the driver sends every task (the plan, pickled).

    python benchmarks/big_data.py                          # 8,000,000 rows (minutes, GiBs)
    python benchmarks/big_data.py --rows 200000            # a quick try
    python benchmarks/big_data.py --rows 200000 --nodes 2  # on two local worker nodes
    python benchmarks/big_data.py --times 4                # a table 4x what the driver may hold
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import _harness
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

COLUMNS, FILES, GROUPS_PER_FILE, PARTITIONS = 20, 8, 4, 8


def write_table(folder: Path, rows: int) -> int:
    """``rows`` x :data:`COLUMNS` (19 float features, a 0/1 target ``y``) in :data:`FILES` files; their bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 1, COLUMNS - 1) * (np.arange(COLUMNS - 1) < 6)  # six features carry the signal
    names = [f"f{i:02d}" for i in range(COLUMNS - 1)]
    per_file = -(-rows // FILES)
    for f in range(FILES):
        n = min(per_file, rows - f * per_file)
        if n <= 0:
            break
        X = rng.normal(size=(n, COLUMNS - 1))
        y = (X @ weights + rng.normal(0, 1, n) > 0).astype(np.int64)
        table = pa.table({**{name: X[:, i] for i, name in enumerate(names)}, "y": y})
        pq.write_table(table, folder / f"part-{f}.parquet", row_group_size=-(-n // GROUPS_PER_FILE))
        del X, y, table
    return sum(p.stat().st_size for p in folder.iterdir())


@dataclass
class Seen:
    titles: set[str] = field(default_factory=set)  # what it was called while sampled (a worker: its tasks)
    hwm: int = 0  # VmHWM, bytes
    pss: int = 0  # the largest PSS sampled

    @property
    def title(self) -> str:
        tasks = sorted(t.removeprefix("ray::") for t in self.titles if t.startswith("ray::") and t != "ray::IDLE")
        if tasks:
            return "ray::" + ",".join(tasks)
        return "ray::IDLE" if "ray::IDLE" in self.titles else ",".join(sorted(self.titles))


@dataclass
class Sampler:
    """Every ``interval_s``: each process under ``roots`` (its VmHWM and PSS), and each root's tree's summed PSS."""

    roots: dict[str, int]  # name -> pid: the command, or each node's `ray start`
    interval_s: float
    seen: dict[int, Seen] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)  # name -> the tree's peak summed PSS

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.sample()
            stop.wait(self.interval_s)

    def sample(self) -> None:
        parents, cmdlines = _harness.processes()
        for name, root in self.roots.items():
            total = 0
            for pid in _harness.descendants(root, parents):
                hwm, pss = _memory(pid)
                if hwm is None:
                    continue
                total += pss
                mine = self.seen.setdefault(pid, Seen())
                mine.hwm, mine.pss = max(mine.hwm, hwm), max(mine.pss, pss)
                mine.titles.add(_label(cmdlines.get(pid, "")))
            self.peaks[name] = max(self.peaks.get(name, 0), total)


def _memory(pid: int) -> tuple[int | None, int]:
    """(VmHWM, PSS) of ``pid`` in bytes; (None, 0) when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None, 0
    hwm = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    pss = next((int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return hwm, pss


def _label(cmdline: str) -> str:
    words = cmdline.split()
    if cmdline.startswith("ray::"):
        return words[0]
    program = Path(words[0]).name if words else "?"
    if "-m mlfleet ensemble" in cmdline:
        return "driver"
    if "mlflow run" in cmdline or "-m mlflow run" in cmdline:
        return "mlflow run"
    return program


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def run_ensemble(
    work: Path, data: Path, args, limit: int, address: str, roots: dict[str, int], sharded: str = "auto"
) -> dict:
    params = [f"data={data}", "target=y", f"partitions={PARTITIONS}", f"model={args.model}", f"sharded={sharded}"]
    if address:
        params.append(f"address={address}")
    cmd, env = _harness.command(work, "ensemble", params, experiment="big-data")
    if limit:
        env["MLFLEET_MEMORY_BYTES"] = str(limit)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    if address:
        env["MLFLEET_SHARED_STORAGE"] = "1"
    print("$", " ".join(cmd[2:]), f"  (in {work}; MLFLEET_MEMORY_BYTES={limit or 'unset'})", flush=True)
    stop = threading.Event()
    t0 = time.perf_counter()
    with open(work / "ensemble.stderr", "w") as err:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stderr=err)
        sampler = Sampler({"command": proc.pid, **roots}, args.interval)
        watcher = threading.Thread(target=sampler.run, args=(stop,))
        watcher.start()
        proc.wait()
        stop.set()
        watcher.join()
    wall = time.perf_counter() - t0
    stderr = (work / "ensemble.stderr").read_text()
    if proc.returncode != 0:
        print(stderr[-4000:])
        sys.exit(f"the ensemble failed with exit code {proc.returncode}")
    return {"wall_s": wall, "sampler": sampler, "stderr": stderr}


def parent_run(work: Path):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`mlfleet.role` = 'ensemble'"
    )
    return parent


def report(args, rows: int, table: int, disk: int, limit: int, done: dict, parent, work: Path) -> None:
    m, sampler = parent.data.metrics, done["sampler"]
    print(
        f"\n{rows:,} rows x {COLUMNS} columns: {gib(table)} in pandas, {gib(disk)} on disk in {FILES} files of "
        f"{GROUPS_PER_FILE} row groups; the driver may hold {gib(limit)} (MLFLEET_MEMORY_BYTES)"
    )
    print(f"sharded: {parent.data.tags.get('sharded')}  ({parent.data.tags.get('sharding', '')})")
    print(f"wall {done['wall_s']:.1f} s (mlflow run, start to end)")
    drivers = [s for s in sampler.seen.values() if s.title == "driver"]
    sampled = max((s.hwm for s in drivers), default=0)
    print(
        f"driver: peak RSS {gib(m.get('driver_peak_rss_bytes', 0))} (VmHWM, its own figure; sampled {gib(sampled)}) "
        f"= {m.get('driver_peak_rss_bytes', 0) / table:.2f}x the table; read {gib(m.get('driver_bytes_read', 0))}, "
        f"{m.get('driver_rows_read', 0):,.0f} rows decoded (metadata only); the holdout task read "
        f"{gib(m.get('holdout_bytes_read', 0))}, {m.get('holdout_rows_read', 0):,.0f} rows decoded, "
        f"{m.get('holdout_rows_kept', 0):,.0f} kept (validation)"
    )
    workers = sorted(((s.hwm, s.title, pid) for pid, s in sampler.seen.items() if s.title.startswith("ray::")))
    for hwm, title, pid in workers[::-1]:
        print(f"  worker {pid:>7} peak RSS {gib(hwm):>9} = {hwm / table:5.2f}x the table  ({title})")
    for name, peak in sampler.peaks.items():
        print(f"{name}: peak summed PSS {gib(peak)} = {peak / table:.2f}x the table")
    line = parent.data.tags.get("verdict", "")
    print(f"verdict: {line}")
    print(
        json.dumps(
            {
                "rows": rows,
                "table_bytes": table,
                "limit": limit,
                "wall_s": round(done["wall_s"], 1),
                "driver_peak_rss": m.get("driver_peak_rss_bytes"),
                "workers_peak_rss": [w[0] for w in workers[::-1]],
                "tree_peaks_pss": sampler.peaks,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8_000_000, help="rows of the table (8,000,000: 1.19 GiB)")
    parser.add_argument("--model", default="logistic", help="the members' family")
    parser.add_argument("--nodes", type=int, default=0, help="worker nodes of a local multi-node Ray (0: none)")
    parser.add_argument("--node-cpus", type=int, default=1, help="CPUs of each worker node")
    parser.add_argument("--node-memory", type=int, default=0, help="--memory of each node, bytes (0: Ray's own)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two samples of memory")
    parser.add_argument(
        "--times", type=float, default=2.0, help="the table is this many times the driver's MLFLEET_MEMORY_BYTES"
    )
    parser.add_argument(
        "--baseline", action="store_true", help="then the same with sharded=off, no limit (the driver reads the table)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the folder (table, runs) at the end")
    args = parser.parse_args()

    work = _harness.workspace(prefix="mlfleet-big-data-")
    try:
        data = work / "table"
        disk = write_table(data, args.rows)
        table = args.rows * COLUMNS * 8  # every column 8 bytes a row in pandas
        limit = int(table / args.times)
        if args.nodes:
            from servers import ray_cluster

            with ray_cluster((0,) + (args.node_cpus,) * args.nodes, memory=args.node_memory) as cluster:
                roots = {"head": cluster.pids[0], **{f"node {i}": pid for i, pid in enumerate(cluster.pids[1:], 1)}}
                store = StoreWatch(cluster.address, args.interval)
                with store.watching():
                    done = run_ensemble(work, data, args, limit, cluster.address, roots)
                moved = object_transfers(dict(zip(roots, cluster.metrics_ports, strict=True)))
        else:
            done, moved, store = run_ensemble(work, data, args, limit, "", {}), {}, None
        report(args, args.rows, table, disk, limit, done, parent_run(work), work)
        _plan_size(data)
        if store is not None:
            print(
                f"Ray's object store, all nodes (memory_summary, every {store.interval_s:g} s): at most "
                f"{store.peak_mib} MiB in {store.peak_objects} objects at once; {store.spilled_mib} MiB spilled "
                f"({store.reads} reads{'; ' + store.failed if store.failed else ''})"
            )
        if args.baseline:
            baseline(work, data, args, table)
        if args.nodes and not moved:
            print(
                "bytes between nodes: no node reported ray_object_manager_bytes (Ray exports its metrics only "
                "with prometheus_client installed, ray[default])"
            )
        if moved:
            print("bytes through Ray's object manager between nodes (ray_object_manager_bytes, each node's metrics):")
            for node, by_type in moved.items():
                print(f"  {node:<7} " + ", ".join(f"{kind} {gib(n)}" for kind, n in sorted(by_type.items())))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class StoreWatch:
    """What Ray's object store holds across the cluster while the command runs: this script joins as a second driver."""

    address: str
    interval_s: float
    peak_mib: int = 0
    peak_objects: int = 0
    spilled_mib: int = 0
    reads: int = 0
    failed: str = ""

    @contextmanager
    def watching(self):
        import ray

        ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
        stop = threading.Event()
        watcher = threading.Thread(target=self._run, args=(stop,))
        watcher.start()
        try:
            yield self
        finally:
            stop.set()
            watcher.join()
            ray.shutdown()

    def _run(self, stop: threading.Event) -> None:
        import re

        from ray._private.internal_api import memory_summary

        while not stop.is_set():
            try:
                text = memory_summary(stats_only=True)
                self.reads += 1
            except Exception as exc:  # the cluster is busy or going: the next read
                text, self.failed = "", repr(exc)[:200]
            used = re.search(r"Plasma memory usage (\d+) MiB, (\d+) objects", text)
            if used and int(used.group(1)) >= self.peak_mib:
                self.peak_mib, self.peak_objects = int(used.group(1)), int(used.group(2))
            spilled = re.search(r"Spilled (\d+) MiB", text)
            if spilled:
                self.spilled_mib = max(self.spilled_mib, int(spilled.group(1)))
            stop.wait(self.interval_s)


def object_transfers(ports: dict[str, int], wait_s: float = 25.0) -> dict[str, dict[str, float]]:
    """Per node, the bytes its object manager pushed to and received from other nodes (Ray's own counter).

    Ray reports its metrics every few seconds: polled until two reads agree, at most ``wait_s``.
    """
    import re
    import urllib.request

    def read() -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        for node, port in ports.items():
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            for m in re.finditer(r"^ray_object_manager_bytes\{([^}]*)\} ([0-9.e+]+)$", text, re.MULTILINE):
                kind = re.search(r'Type="([^"]+)"', m.group(1))
                if kind:
                    found.setdefault(node, {})[kind.group(1)] = found.get(node, {}).get(kind.group(1), 0) + float(
                        m.group(2)
                    )
        return found

    deadline, last = time.monotonic() + wait_s, None
    while time.monotonic() < deadline:
        now = read()
        if now and now == last:
            return now
        last = now
        time.sleep(5)
    return last or {}


def baseline(work: Path, data: Path, args, table: int) -> None:
    """The same ensemble read by the driver (``sharded=off``, no memory limit): what sharding saves."""
    again = work / "baseline"
    shutil.copytree(work, again, ignore=shutil.ignore_patterns("table", "baseline", "mlflow.db", "mlruns", "lakehouse"))
    done = run_ensemble(again, data, args, 0, "", {}, sharded="off")
    driver = max((s.hwm for s in done["sampler"].seen.values() if s.title == "driver"), default=0)
    worker = max((s.hwm for s in done["sampler"].seen.values() if s.title.startswith("ray::")), default=0)
    print(
        f"baseline (sharded=off, the driver reads the table): wall {done['wall_s']:.1f} s; driver peak RSS "
        f"{gib(driver)} = {driver / table:.2f}x the table (sampled VmHWM); largest worker {gib(worker)}; "
        f"process tree peak summed PSS {gib(done['sampler'].peaks['command'])}"
    )


def _plan_size(data: Path) -> None:
    """What the driver sends every task: the table's plan (the rest of the task's arguments is a few hundred bytes)."""
    from mlfleet.data import plan_parts

    plan = plan_parts(str(data), target="y", partitions=PARTITIONS)
    print(f"the plan each task gets: {len(pickle.dumps(plan)):,} bytes pickled")


if __name__ == "__main__":
    main()
