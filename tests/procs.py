"""Processes as the chaos tests see them: who runs what, waiting for rows, cleaning up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

#: a progress line's count of finished models: ``[3/6 models] | failed 0 | ...``
PROGRESS = re.compile(r"\[\s*(\d+)/\d+ models\]")


def processes() -> dict[int, tuple[int, str]]:
    """Every process's parent and command line (its title, for Ray workers: ``ray::<task name>``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found[int(entry.name)] = (ppid, cmdline)
    return found


def worker_of(task_name: str) -> int | None:
    """The pid of the Ray worker executing the task named ``task_name``."""
    for pid, (_, title) in processes().items():
        if title.startswith(f"ray::{task_name}"):
            return pid
    return None


def wait_for_finished_models(log: Path, count: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    """Wait until the progress lines ``proc`` writes to ``log`` count ``count`` finished models; returns how many.

    Read from its log, never from its store: a client opening the sqlite store that ``mlflow run``
    is still creating races MLflow's own creation of its tables, which can fail the run.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended (exit {proc.returncode}) before it could be killed: {log}"
        done = [int(m) for m in PROGRESS.findall(log.read_text(errors="replace"))]
        if done and max(done) >= count:
            return max(done)
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} finished models after {timeout} s")


def kill_group(proc: subprocess.Popen) -> None:
    """Kill what the run left behind (Ray's agents outlive a SIGKILLed driver)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)
