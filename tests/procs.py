"""Processes as the chaos tests see them: who runs what, waiting for rows, cleaning up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from helpers import read_results


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


def wait_for_rows(table: str, count: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        try:
            rows = len(read_results(table))
        except Exception:  # not created yet
            rows = 0
        if rows >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} rows after {timeout} s")


def kill_group(proc: subprocess.Popen) -> None:
    """Kill what the run left behind (Ray's agents outlive a SIGKILLed driver)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)
