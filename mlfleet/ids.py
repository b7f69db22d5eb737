"""Readable, unique ids for sweeps, ensembles, benchmarks and analyses."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone


def new_id(kind: str) -> str:
    """``<kind>-<UTC date>-<time>-<4 hex>``, such as ``train_cpu-20261122-101500-3fa2``."""
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
