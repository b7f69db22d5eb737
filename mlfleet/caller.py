"""Relative paths as the user meant them: from the folder ``mlflow run`` was started in.

``mlflow run`` starts the entry point in the project's folder (a temporary copy for a Git or
``.zip`` project), so ``data=my.csv``, the default ``results`` and ``output`` would be taken
from there: inside the source tree, or in a copy deleted afterwards. The ``mlflow run``
process itself still works in the user's folder: found among this process's parents (Linux's
``/proc``; elsewhere the shell's ``PWD``), the command works from it. Without it, a project in
a temporary copy refuses relative paths in one line instead of writing where nobody will look.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from mlfleet.errors import MlfleetError
from mlfleet.locations import SPARK_TABLE, place
from mlfleet.settings import Settings

log = logging.getLogger(__name__)

#: the parameters that name a place on this machine when they are relative paths
PATH_PARAMS = ("data", "results", "output")


def follow(values: dict[str, Any], defaults: dict[str, Any], settings: Settings) -> None:
    """Under ``mlflow run``, move to the folder it was started in; refuse what cannot be placed.

    ``values`` are the command's parameters, ``defaults`` their defaults (a default results
    table is a relative path too).
    """
    if not settings.under_mlflow_run:
        return
    here = Path.cwd().resolve()
    started = started_in(settings)
    if started is not None:
        if started.resolve() != here:
            os.chdir(started)
            log.info("relative paths are taken from %s, where mlflow run was started", started.resolve())
        return
    if not _temporary(here):
        return
    relative = [
        name
        for name in PATH_PARAMS
        if isinstance(values.get(name), str) and _relative_path(name, values[name] or defaults.get(name, ""))
    ]
    if relative:
        raise MlfleetError(
            f"the project runs in a temporary copy ({here}) and the folder mlflow run was started in is not "
            f"known, so {', '.join(relative)} would be written or read there; give "
            f"{' and '.join(relative)} as absolute paths or URIs"
        )


def started_in(settings: Settings) -> Path | None:
    """The folder of the ``mlflow run`` process above this one, or None where it cannot be known."""
    if not Path("/proc/self/stat").exists():  # not Linux: the shell's word for it
        pwd = settings.pwd
        return Path(pwd) if pwd and Path(pwd).is_dir() else None
    pid = os.getppid()
    for _ in range(8):  # mlflow run -> (a shell) -> this command, and a launcher or two
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"run" in argv and any(b"mlflow" in arg for arg in argv[:3]):
                return Path(os.readlink(f"/proc/{pid}/cwd"))
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 1:
            return None
    return None


def _temporary(folder: Path) -> bool:
    """Whether ``folder`` is a copy MLflow made (a Git clone or an unpacked .zip, under the temp dir)."""
    return folder.parent == Path(tempfile.gettempdir()).resolve()


def _relative_path(name: str, value: str) -> bool:
    from mlfleet.data import BUILTINS

    if not value or "://" in value or Path(value).is_absolute():
        return False
    if name == "data" and value in BUILTINS:
        return False
    return not (name in ("data", "results") and place(value).kind == SPARK_TABLE)
