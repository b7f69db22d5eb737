"""Running an entry point as a user does, in a fresh folder, and reading the sweep back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE = "lakehouse/model_training_results"


def workspace(prefix: str = "mlfleet-bench-", repo: Path = REPO) -> Path:
    """A fresh folder with the project's MLproject and a snapshot of the library (of ``repo``: this
    checkout, or an earlier commit's files, see :func:`checkout`).

    Ray starts workers during a run, and an editable install would hand them whatever the
    working tree holds by then: the snapshot pins the code measured to the code at launch.
    """
    work = Path(tempfile.mkdtemp(prefix=prefix))
    for name in ("MLproject", "conda.yaml"):
        shutil.copy(repo / name, work / name)
    shutil.copytree(repo / "entrypoints", work / "entrypoints", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "mlfleet", work / "snapshot" / "mlfleet", ignore=shutil.ignore_patterns("__pycache__"))
    return work


def checkout(ref: str) -> Path:
    """The project's files at git ``ref`` (a commit, a tag) in a temporary folder, to measure earlier code."""
    folder = Path(tempfile.mkdtemp(prefix="mlfleet-at-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def command(work: Path, entry_point: str, params: list[str], experiment: str = "") -> tuple[list[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "mlflow", "run", ".", "-e", entry_point, "--env-manager", "local"]
    if experiment:
        cmd += ["--experiment-name", experiment]
    for p in params:
        cmd += ["-P", p]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(work / "snapshot"), env.get("PYTHONPATH", "")])
    return cmd, env


@dataclass
class Finished:
    wall_s: float
    stderr: str


def run(work: Path, entry_point: str, params: list[str], experiment: str = "") -> Finished:
    """Run one entry point to the end; exit with its error if it fails."""
    cmd, env = command(work, entry_point, params, experiment)
    print("$", " ".join(cmd[2:]), f"  (in {work})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-4000:])
        sys.exit(f"{entry_point} failed with exit code {proc.returncode}")
    return Finished(wall, proc.stderr)


def run_together(work: Path, commands: list[tuple[str, list[str]]], experiment: str) -> tuple[float, list[float]]:
    """Start several entry points at once; return the wall time of all and of each."""
    import mlflow

    # made here first, so that the runs do not race to create it; its artifacts in `work`
    mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}").create_experiment(
        experiment, artifact_location=(work / "mlruns").as_uri()
    )
    t0 = time.perf_counter()
    procs = []
    for entry_point, params in commands:
        cmd, env = command(work, entry_point, params, experiment)
        print("$", " ".join(cmd[2:]), "  (at the same time)", flush=True)
        procs.append(subprocess.Popen(cmd, cwd=work, env=env, stderr=subprocess.PIPE, text=True))
    walls = [0.0] * len(procs)
    errors = [""] * len(procs)

    def wait(i: int) -> None:  # one waiter per process, so each wall time is its own
        errors[i] = procs[i].communicate()[1]
        walls[i] = time.perf_counter() - t0

    waiters = [threading.Thread(target=wait, args=(i,)) for i in range(len(procs))]
    for w in waiters:
        w.start()
    for w in waiters:
        w.join()
    for p, err in zip(procs, errors, strict=True):
        if p.returncode != 0:
            print(err[-4000:])
            sys.exit(f"a concurrent run failed with exit code {p.returncode}")
    return time.perf_counter() - t0, walls


def sweeps(work: Path):
    """Parent runs, child runs (by sweep id) and the rows of every sweep in ``work``."""
    import mlflow

    from mlfleet.stores.tables import open_results

    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(experiments, "tags.`mlfleet.role` = 'sweep'", order_by=["attributes.start_time ASC"])
    children = client.search_runs(experiments, "tags.`mlfleet.role` = 'model'", max_results=5000)
    rows = open_results(str(work / TABLE)).read()
    return parents, children, rows


def processes() -> tuple[dict[int, int], dict[int, str]]:
    """Every process of this machine: ``({pid: parent pid}, {pid: command line})``, from ``/proc``."""
    parents, cmdlines = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        parents[pid] = int(stat[stat.rindex(")") + 2 :].split()[1])  # the name may hold spaces and parentheses
        cmdlines[pid] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return parents, cmdlines


def descendants(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and every process under it, in ``parents`` (from :func:`processes`)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in parents and pid not in tree:
            tree.add(pid)
            todo += children.get(pid, [])
    return tree
