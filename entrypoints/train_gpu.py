"""train_gpu: the PyTorch MLP fleet, one GPU (or a fraction) per model, CPU fallback.

    mlflow run . -e train_gpu --env-manager local -P gpus_per_model=0.25
    python entrypoints/train_gpu.py --models mlp:4 --device cpu
"""

import click

from mlfleet.cli import command, data_options, fleet_config, fleet_options, models_option, resume_option
from mlfleet.config import DEFAULT_GPU_FIRST_ID, DEFAULT_GPU_MODELS
from mlfleet.sweep import run_sweep
from mlfleet.zoo import gpu_families


@command("train_gpu")
@data_options
@models_option(DEFAULT_GPU_MODELS, gpu_families)
@click.option("--first_id", type=click.IntRange(min=0), default=DEFAULT_GPU_FIRST_ID, help="Id of the first model (90: after train_cpu's 0-89).")
@click.option("--n_trials", type=click.IntRange(min=1), default=10, help="Optuna trials per model.")
@click.option("--metric", default="", help="Metric to optimise and rank by (default: f1 for classification, rmse for regression).")
@click.option("--gpus_per_model", type=click.FloatRange(min=0, min_open=True), default=1.0, help="GPUs each model asks Ray for; fractions such as 0.25 share a GPU.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", help="auto: GPUs when the cluster has them, else CPU.")
@fleet_options
@resume_option
def main(**options) -> int:
    """Train the MLP fleet: one Optuna-tuned PyTorch model per job, each a nested MLflow run and a Delta row."""
    return run_sweep(fleet_config(options, "train_gpu")).exit_code


if __name__ == "__main__":
    main()
