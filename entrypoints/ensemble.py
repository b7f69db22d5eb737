"""ensemble: shard the training data, one model per shard on Ray, a vote, compared with one model on all data.

    mlflow run . -e ensemble --env-manager local -P partitions=8
    python entrypoints/ensemble.py --partitions 8 --model xgboost --weights validation
"""

import click

from ensembles import DEFAULT_ENSEMBLE_RESULTS, DEFAULT_FAMILY, DEFAULT_PARTITIONS, WEIGHTS, EnsembleConfig, run_ensemble
from mlfleet.cli import command, data_config, data_options


@command("ensemble")
@data_options
@click.option("--partitions", type=int, default=DEFAULT_PARTITIONS, help="Shards of the training split, one member each (random; stratified by class for classification).")
@click.option("--partition_by", default="", help="A feature column: one shard per value of it instead of random shards (partitions is then not used).")
@click.option("--model", default=DEFAULT_FAMILY, help="Zoo family of the members and of the single all-data model (a CPU family).")
@click.option("--n_trials", type=click.IntRange(min=0), default=0, help="0: the family's default parameters; above 0: Optuna trials each member runs on its own shard.")
@click.option("--weights", type=click.Choice(WEIGHTS), default="equal", help="Members' votes weigh equally, or by their validation score.")
@click.option("--metric", default="", help="Metric that scores, weighs and compares (default: f1 for classification, rmse for regression).")
@click.option("--register", default="", help="Register the ensemble in the MLflow Model Registry under this name (empty: do not register).")
@click.option("--results", default=DEFAULT_ENSEMBLE_RESULTS, help="Delta table of ensemble rows: a folder or an s3://, abfss://, gs:// URI.")
@click.option("--address", default="", help="Ray: empty starts a local Ray; 'auto' or host:port or ray://host:port joins a cluster.")
@click.option("--experiment", default="", help="MLflow experiment when run by itself (under `mlflow run`, its --experiment-name applies).")
def main(**options) -> int:
    """Train a partition ensemble and the same family on all data; log both, compare them, write the rows."""
    config = EnsembleConfig(
        data=data_config(options),
        partitions=options["partitions"],
        partition_by=options["partition_by"],
        model=options["model"],
        n_trials=options["n_trials"],
        weights=options["weights"],
        register=options["register"],
        metric=options["metric"],
        results=options["results"],
        address=options["address"],
        experiment=options["experiment"],
        entry_point="ensemble",
        seed=options["seed"],
    )
    return run_ensemble(config).exit_code


if __name__ == "__main__":
    main()
