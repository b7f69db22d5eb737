"""Logging: the ``mlfleet`` logger, the console it writes to, and the library warnings we expect.

Every module logs to a child of ``mlfleet`` (``logging.getLogger(__name__)``; the ensemble
library uses ``mlfleet.ensembles``). A command's lines (its start, progress, summary) are INFO
records; ``-q`` keeps warnings and errors, ``-v`` adds DEBUG (the warnings each model raised,
timings). The console handler writes bare messages, so the terminal reads as it always did.

Library warnings are filtered by category and origin where they are known noise for a fleet
(a solver that stops at its iteration cap, a constant column a selector scores as NaN), never
all at once; anything else a model raises is recorded with it and shown with ``-v``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

LOGGER = logging.getLogger("mlfleet")
VERBOSITY_LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


class _Console(logging.StreamHandler):
    """Bare messages for INFO and above; DEBUG records say where they come from.

    Every line is redacted here, where it leaves: a URI a message names (a data or results
    location, a tracking URI, an error about either) loses its password and query string
    whoever wrote the message.
    """

    def format(self, record: logging.LogRecord) -> str:
        from mlfleet.redaction import redact

        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        return redact(f"[{record.name}] {message}" if record.levelno < logging.INFO else message)


def setup(verbosity: int = 0, stream: TextIO | None = None) -> None:
    """Send the ``mlfleet`` logger to ``stream`` (stderr) at the level of ``verbosity`` (-1 quiet, 0, 1 verbose).

    What a command does first; calling it again replaces the console, never adds a second.
    """
    for handler in [h for h in LOGGER.handlers if isinstance(h, _Console)]:
        LOGGER.removeHandler(handler)
    LOGGER.addHandler(_Console(stream or sys.stderr))
    LOGGER.setLevel(VERBOSITY_LEVELS[max(-1, min(1, verbosity))])
    LOGGER.propagate = False


def console_stream() -> TextIO | None:
    """The stream of the console handler in force, if any."""
    return next((h.stream for h in LOGGER.handlers if isinstance(h, _Console)), None)


@contextmanager
def console(stream: TextIO | None = None) -> Iterator[TextIO]:
    """While a command runs: its records go to ``stream`` (given) or to the console in force (else stderr).

    Yields the stream, which the progress line draws on. Used by the library's ``run_*``
    functions, so that a notebook or a test that passes a stream sees the command's lines.
    """
    current = console_stream()
    if stream is None and current is not None:
        yield current
        return
    handler = _Console(stream or sys.stderr)
    level, propagate = LOGGER.level, LOGGER.propagate
    LOGGER.addHandler(handler)
    LOGGER.propagate = False
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)
    try:
        yield handler.stream
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate


def ignore_known_noise() -> None:
    """Filter the warnings a fleet raises by the thousand and a user cannot act on, by category and origin.

    * scikit-learn's ConvergenceWarning: a tuning trial's solver hit its iteration cap; the
      trial is scored like any other and a bad one loses.
    * scikit-learn's univariate selectors on a constant column (``Features ... are constant``,
      the division that follows): the column scores NaN and is not selected.
    * UndefinedMetricWarning: a trial that predicts one class has an f1 of 0 for the other.
    """
    from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"sklearn\.feature_selection")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"sklearn\.feature_selection")


@contextmanager
def recorded_warnings(into: list[str]) -> Iterator[None]:
    """Collect the warnings raised inside (known noise filtered) as ``Category: message`` lines, once each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_known_noise()
        yield
    for w in caught:
        line = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0] if str(w.message).strip() else ''}"
        if line not in into:
            into.append(line)
