"""analyze: read the fleet back from MLflow and Delta; summary, plots, report, top-k vote, champion.

    mlflow run . -e analyze --env-manager local --experiment-name fleet
    python entrypoints/analyze.py --experiment fleet --k 3
"""

import click

from mlfleet.analyze import DEFAULT_K, AnalysisConfig, parse_sweeps, run_analysis
from mlfleet.cli import command
from mlfleet.config import DEFAULT_RESULTS


@command("analyze")
@click.option("--experiment", default="", help="MLflow experiment of the sweeps when run by itself (default mlfleet; under `mlflow run`, its --experiment-name applies).")
@click.option("--results", default=DEFAULT_RESULTS, help="Delta table of results rows: a folder or an s3://, abfss://, gs:// URI.")
@click.option("--sweep", default="", help="Sweep ids to analyse, comma-separated (default: the latest sweep of each entry point).")
@click.option("--metric", default="", help="Metric to rank by (default: the sweeps' primary metric).")
@click.option("--k", type=click.IntRange(min=1), default=DEFAULT_K, help="How many of the best models vote.")
@click.option("--registered_model", default="", help="Registered model for the champion (default: <experiment>-champion).")
@click.option("--output", default="", help="Folder for the report and plots (default: reports/<analysis id>).")
def main(**options) -> int:
    """Analyse the fleet's sweeps: summary, plots and report; the top-k vote; register the champion."""
    config = AnalysisConfig(
        experiment=options["experiment"],
        results=options["results"],
        sweeps=parse_sweeps(options["sweep"]),
        metric=options["metric"],
        k=options["k"],
        registered_model=options["registered_model"],
        output=options["output"],
    )
    return run_analysis(config).exit_code


if __name__ == "__main__":
    main()
