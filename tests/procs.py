"""Processes as the chaos tests see them: who runs what, waiting for rows, cleaning up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


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


def wait_for_finished_runs(client, count: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    """Wait until ``count`` model runs of experiment 0 are FINISHED (while ``proc`` runs); returns how many."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        try:
            runs = client.search_runs(["0"], "tags.`mlfleet.role` = 'model' and attributes.status = 'FINISHED'")
        except Exception:  # the store is not created yet
            runs = []
        if len(runs) >= count:
            return len(runs)
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} finished runs after {timeout} s")


def kill_group(proc: subprocess.Popen) -> None:
    """Kill what the run left behind (Ray's agents outlive a SIGKILLed driver)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)
