"""The ``mlfleet`` command: one subcommand per entry point, its options generated from the configs.

    mlfleet train-cpu --models random_forest:4,svm:2
    mlfleet ensemble --partitions 8
    mlfleet analyze --k 3

Option names are the MLproject parameter names (``--first_id`` as ``-P first_id=...``);
``--first-id`` is accepted too, and ``train_cpu`` for ``train-cpu``. Each option's default,
help and check come from the field of the command's config (:mod:`mlfleet.config`).

Exit codes: 0 every model succeeded; 1 the command ran but some models failed (each is
recorded as a FAILED run and row); 2 bad input or environment, nothing trained (one line,
``error: ...``, on stderr); 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from mlfleet import __version__, caller, logs, settings
from mlfleet.commands import ENTRIES, Entry
from mlfleet.config import Parameter, from_values, parameters
from mlfleet.errors import MlfleetError
from mlfleet.redaction import redact

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def exit_code(report: Any) -> int:
    """A report's exit code (0 where it has none: the benchmark either measures or raises)."""
    return int(getattr(report, "exit_code", EXIT_OK))


def _option(p: Parameter) -> Callable:
    flags = [f"--{p.name}"]
    if "_" in p.name:
        flags.append(f"--{p.name.replace('_', '-')}")
    kind: Any
    if p.choices:
        kind, default = click.Choice(p.choices), p.default
    elif p.parse is None and isinstance(p.default, bool):
        kind, default = bool, p.default
    elif p.parse is None and isinstance(p.default, int | float):
        number = click.IntRange if isinstance(p.default, int) else click.FloatRange
        kind = (
            number(p.low, p.high, min_open=p.open_ends, max_open=p.open_ends) if p.open_ends else number(p.low, p.high)
        )
        default = p.default
    else:  # text, or text the config parses (models, sweep ids): its errors are one line too
        kind, default = str, p.default_text
    return click.option(*flags, p.name, type=kind, default=default, show_default=True, help=p.help)


def _verbosity(fn: Callable) -> Callable:
    fn = click.option("-q", "--quiet", "quiet", count=True, help="Only warnings and errors.")(fn)
    return click.option("-v", "--verbose", "verbose", count=True, help="Also debug lines (each model's warnings).")(fn)


def make_command(entry: Entry) -> click.Command:
    """The click command of ``entry``: one option per parameter of its config."""

    def callback(verbose: int, quiet: int, **values: Any) -> int:
        logs.setup(verbose - quiet)
        found = settings.read()
        refuse_logged_secrets(values, found)
        caller.follow(values, {p.name: p.default for p in parameters(entry.config)}, found)
        config = from_values(entry.config, values)
        return exit_code(entry.function()(config))

    for p in reversed(list(parameters(entry.config))):
        callback = _option(p)(callback)
    callback = _verbosity(callback)
    help_text = f"{entry.summary}\n\n\b\nExample:\n  {entry.example}"
    return click.command(
        entry.name.replace("_", "-"),
        cls=Command,
        help=help_text,
        context_settings={"show_default": True, "max_content_width": 110},
    )(callback)


def refuse_logged_secrets(values: dict[str, Any], found: settings.Settings) -> None:
    """Under ``mlflow run``, stop when a ``-P`` value holds credentials: MLflow logged it already.

    ``mlflow run`` logs every ``-P`` value as a parameter of its run before the entry point
    starts, so a password or a signed query string in one is in the tracking store whatever this
    command does; it stops in one line so the user learns it at once, and how to pass them.
    """
    run_id = found.run_id
    if not run_id:
        return
    holding = [name for name, value in values.items() if isinstance(value, str) and redact(value) != value]
    if holding:
        raise MlfleetError(
            f"{', '.join(holding)} holds credentials (a password or a query string in a URI), and `mlflow run` "
            f"has logged every -P value as a parameter of run {run_id}: delete that run "
            f"(mlflow runs delete --run-id {run_id}) and pass credentials through the environment "
            "(AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS, MLFLOW_TRACKING_PASSWORD) or "
            "MLFLEET_STORAGE_OPTIONS, with plain URIs in -P"
        )


class _Group(click.Group):
    """Subcommands by their dashed name, underscores accepted (``train_cpu``)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name.replace("_", "-"))


@click.group(
    cls=_Group,
    help="Train a fleet of models in parallel on Ray; every one an MLflow run and a Delta row.\n\n"
    "\b\nExamples:\n" + "\n".join(f"  {e.example}" for e in ENTRIES),
    context_settings={"max_content_width": 110},
)
@click.version_option(__version__, prog_name="mlfleet")
def group() -> None:
    """The ``mlfleet`` group (its help is the text above)."""


def _exit(invoke: Callable[[], Any]) -> None:
    """Run ``invoke`` (a click ``main`` without standalone mode) and exit as documented above."""
    try:
        code = invoke()
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        print(redact(f"error: {exc.format_message()}"), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except MlfleetError as exc:
        print(redact(f"error: {exc}"), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


class Command(click.Command):
    """A subcommand that, run by itself (a test's CliRunner), exits as ``mlfleet`` does."""

    def main(self, args=None, prog_name=None, **extra):  # noqa: D102
        extra["standalone_mode"] = False
        _exit(lambda: super(Command, self).main(args=args, prog_name=prog_name, **extra))


def main(args: Sequence[str] | None = None) -> None:
    """Run ``mlfleet`` with ``args`` (default: the command line) and exit with its code."""
    _exit(lambda: group.main(args=list(args) if args is not None else None, prog_name="mlfleet", standalone_mode=False))


def entry_point(name: str) -> None:
    """What ``entrypoints/<name>.py`` runs: the ``name`` subcommand with the script's arguments."""
    main([name.replace("_", "-"), *sys.argv[1:]])


for _entry in ENTRIES:
    group.add_command(make_command(_entry))
