"""The one exception type that reaches a user as a one-line message, and how failures are described."""

from __future__ import annotations

import traceback


class MlfleetError(Exception):
    """A problem with the user's input or environment, stated with the fix.

    Commands print ``error: <message>`` and exit non-zero; nothing else about it (no
    traceback) is useful to the person who typed the command.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors can run to pages)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception: what a FAILED run's ``error`` tag and row say."""
    return f"{type(exc).__name__}: {first_line(exc)}"


def full_traceback(exc: BaseException) -> str:
    """The whole traceback of ``exc``, credentials in URIs redacted (it goes into runs and logs)."""
    from mlfleet.redaction import redact

    return redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
