"""The one exception type that reaches a user as a one-line message."""


class MlfleetError(Exception):
    """A problem with the user's input or environment, stated with the fix.

    Entry points print ``error: <message>`` and exit non-zero; nothing else about it
    (no traceback) is useful to the person who typed the command.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors can run to pages)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
