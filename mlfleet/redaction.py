"""Keeping credentials out of everything mlfleet writes: logs, runs, rows and files.

Tracking credentials come only from MLflow's own environment variables
(``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``), storage credentials
from the variables delta-rs and the cloud SDKs read; mlfleet never logs the environment.
What it does write may still hold a URI with secrets in it: a parameter, a dataset's name,
or an error message of MLflow's that repeats the request URL. :func:`redact` is the one
redaction every such string goes through: the user information of a URI
(``https://user:password@host`` or ``https://TOKEN@host``) and query strings (signed URLs,
SAS tokens) become ``***``.
"""

from __future__ import annotations

import re

#: a URI's user information: everything up to the last ``@`` before the host, so that a
#: password holding ``/`` or ``@`` is hidden whole (``user:p@ss@host``, ``user:pa/ss@host``)
_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*+://)(?P<info>[^\s?#]+)@(?=[^\s@/?#]*(?:[/?#\s'\"]|$))"
)
#: a query string after a URI, or after a name or path (``table.csv?sig=...``, ``data?token=...``); both
#: patterns start only where a word or URI can (never inside one), so a long token costs linear time
_QUERY = re.compile(r"(?<![^\s'\"(])(?P<head>[^\s?'\"]++)\?(?P<query>[^\s'\"]+=[^\s'\"]*)")


#: schemes whose user information names a container, not a credential (``abfss://container@account...``)
CONTAINER_SCHEMES = ("abfs://", "abfss://", "wasb://", "wasbs://")


def _userinfo(match: re.Match) -> str:
    user, colon, _ = match["info"].partition(":")
    if not colon and ("/" in user or match["scheme"].lower() in CONTAINER_SCHEMES):
        return match[0]  # a path with an @ in it (s3://bucket/key@v2), or an Azure container
    return f"{match['scheme']}{user}:***@" if colon else f"{match['scheme']}***@"


def redact_frame(frame):
    """A copy of a DataFrame with every text cell redacted (a CSV or a report table that leaves the process)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype.kind not in "biufcmM":  # text, mixed or pandas' string dtype
            out[column] = out[column].map(lambda v: redact(v) if isinstance(v, str) else v)
    return out


def redact(text: str) -> str:
    """``text`` with every URI's password or token and every query string replaced by ``***``."""
    text = _USERINFO.sub(_userinfo, str(text))
    return _QUERY.sub(lambda m: f"{m['head']}?***", text)
