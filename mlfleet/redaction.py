"""Keeping credentials out of what mlfleet logs and prints.

Tracking credentials come only from MLflow's own environment variables
(``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``), storage credentials
from the variables delta-rs and the cloud SDKs read; mlfleet never logs the environment.
What it does log, the sweep's parameters, may hold URIs: their passwords and query
strings (signed URLs, SAS tokens) are replaced by ``***`` here.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]+)@")
_QUERY = re.compile(r"(?P<uri>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?]*)\?(?P<query>[^\s]+)")


def redact(text: str) -> str:
    """``text`` with any URI password and query string replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _QUERY.sub(lambda m: f"{m['uri']}?***", text)
