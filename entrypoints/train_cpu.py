"""train_cpu: the CPU fleet (scikit-learn and XGBoost), tuned with Optuna, on Ray.

    mlflow run . -e train_cpu --env-manager local -P models=random_forest:4,svm:2
    python entrypoints/train_cpu.py --models random_forest:4,svm:2
"""

import click

from mlfleet.cli import command, data_options, fleet_config, fleet_options, models_option, resume_option
from mlfleet.config import DEFAULT_CPU_MODELS
from mlfleet.sweep import run_sweep
from mlfleet.zoo import cpu_families


@command("train_cpu")
@data_options
@models_option(DEFAULT_CPU_MODELS, cpu_families)
@click.option("--first_id", type=click.IntRange(min=0), default=0, help="Id of the first model; the others follow.")
@click.option("--n_trials", type=click.IntRange(min=1), default=10, help="Optuna trials per model.")
@click.option("--metric", default="", help="Metric to optimise and rank by (default: f1 for classification, rmse for regression).")
@fleet_options
@resume_option
def main(**options) -> int:
    """Train the CPU fleet: one Optuna-tuned model per job, each a nested MLflow run and a Delta row."""
    return run_sweep(fleet_config(options, "train_cpu")).exit_code


if __name__ == "__main__":
    main()
