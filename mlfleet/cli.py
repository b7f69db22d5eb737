"""What every entry point shares: options, parsing into configs, one-line errors, exit codes.

Option names are the MLproject parameter names (``--first_id`` as ``-P first_id=...``), so
the two ways of running a command read the same.

Exit codes: 0 every model succeeded; 1 the command ran but some models failed (each is
recorded as a FAILED run and row); 2 bad input or environment, nothing trained.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from mlfleet.config import DEFAULT_RESULTS, DataConfig, FleetConfig, parse_models
from mlfleet.errors import MlfleetError

EXIT_BAD_INPUT = 2


class Command(click.Command):
    """A click command whose errors are one line (``error: ...``) with exit code 2."""

    def main(self, args=None, prog_name=None, **extra):  # noqa: D102
        extra["standalone_mode"] = False
        try:
            code = super().main(args=args, prog_name=prog_name, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)
        except click.ClickException as exc:
            print(f"error: {exc.format_message()}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except MlfleetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        sys.exit(code if isinstance(code, int) else 0)


def command(name: str) -> Callable:
    return click.command(name, cls=Command, context_settings={"show_default": True, "max_content_width": 100})


def models_option(default: str, known: Callable[[], tuple[str, ...]]) -> Callable:
    """``--models family:count,...`` parsed and checked against the zoo."""

    def parse(ctx, param, value):
        try:
            return parse_models(value, known())
        except MlfleetError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return click.option("--models", default=default, callback=parse, help="Fleet composition: family:count,...")


def data_options(fn: Callable) -> Callable:
    """The options that choose and split the data (see :class:`mlfleet.config.DataConfig`)."""
    options = [
        click.option("--data", default="synthetic", help="Built-in name (synthetic, diabetes, breast_cancer, wine, iris, california_housing) or a CSV/Parquet/Delta path or URI."),
        click.option("--target", default="", help="Target column (default: the set's own, else 'target', else the last column)."),
        click.option("--task", type=click.Choice(["auto", "classification", "regression"]), default="auto", help="Force the task instead of detecting it."),
        click.option("--n_samples", type=click.IntRange(min=10), default=DataConfig.n_samples, help="Rows of the synthetic sets."),
        click.option("--n_features", type=click.IntRange(min=2), default=DataConfig.n_features, help="Columns of the synthetic sets."),
        click.option("--test_size", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=DataConfig.test_size, help="Share of rows for the test split."),
        click.option("--val_size", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=DataConfig.val_size, help="Share of rows for the validation split."),
        click.option("--seed", type=int, default=42, help="Seed of the data, the split and every model."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def fleet_options(fn: Callable) -> Callable:
    """Where the fleet runs and where its results go."""
    options = [
        click.option("--results", default=DEFAULT_RESULTS, help="Delta table of results rows: a folder or an s3://, abfss://, gs:// URI."),
        click.option("--address", default="", help="Ray: empty starts a local Ray; 'auto' or host:port or ray://host:port joins a cluster."),
        click.option("--experiment", default="", help="MLflow experiment when run by itself (under `mlflow run`, its --experiment-name applies)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def resume_option(fn: Callable) -> Callable:
    """``--resume SWEEP_ID``: continue an interrupted sweep (same parameters) under its parent run."""
    return click.option(
        "--resume",
        default="",
        help="Continue this sweep (its id is printed at the start): complete models are skipped, the rest trained. Same parameters as the sweep.",
    )(fn)


def data_config(options: dict) -> DataConfig:
    """The :class:`DataConfig` of parsed ``options``."""
    return DataConfig(
        source=options["data"],
        target=options["target"],
        task=options["task"],
        n_samples=options["n_samples"],
        n_features=options["n_features"],
        test_size=options["test_size"],
        val_size=options["val_size"],
        seed=options["seed"],
    )


def fleet_config(options: dict, entry_point: str) -> FleetConfig:
    """The :class:`FleetConfig` of a training command's parsed ``options``."""
    return FleetConfig(
        data=data_config(options),
        models=options["models"],
        first_id=options["first_id"],
        n_trials=options["n_trials"],
        metric=options["metric"],
        results=options["results"],
        address=options["address"],
        experiment=options["experiment"],
        entry_point=entry_point,
        seed=options["seed"],
        device=options.get("device", "cpu"),
        gpus_per_model=options.get("gpus_per_model", 1.0),
        resume=options.get("resume", "").strip(),
    )
