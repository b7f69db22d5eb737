"""benchmark: the same models trained one after another, as Ray tasks and with joblib.

    mlflow run . -e benchmark --env-manager local -P preset=diabetes_gb20
    python entrypoints/benchmark.py --model random_forest --n_models 20 --ladder n_estimators=50:240
"""

import click

from mlfleet.benchmark import DEFAULT_TABLE, BenchmarkConfig, run_benchmark
from mlfleet.cli import command, data_config, data_options


@command("benchmark")
@data_options
@click.option("--preset", default="", help="california_rf30, wine_rf10 or diabetes_gb20: the seed labs (model, ladder, data).")
@click.option("--model", default="random_forest", help="The zoo family every model is built from.")
@click.option("--n_models", type=int, default=20, help="How many models, each a step of the ladder.")
@click.option("--ladder", default="n_estimators=50:240", help="name=low:high[,name=low:high]: what the models step through.")
@click.option("--params", default="", help="name=value,...: fixed parameters of every model (e.g. max_depth=20).")
@click.option("--modes", default="sequential,ray,joblib", help="Which modes to run, comma-separated.")
@click.option("--repeats", type=int, default=1, help="Runs of each mode; the median is reported.")
@click.option("--results", default=DEFAULT_TABLE, help="Delta table of one row per mode and benchmark.")
@click.option("--address", default="", help="Ray: empty starts a local Ray; 'auto' or host:port joins a cluster.")
@click.option("--experiment", default="", help="MLflow experiment when run by itself.")
def main(**options) -> int:
    """Measure sequential against parallel training on identical work, with the machine's ceiling."""
    config = BenchmarkConfig(
        data=data_config(options),
        preset=options["preset"],
        model=options["model"],
        n_models=options["n_models"],
        ladder=options["ladder"],
        params=options["params"],
        modes=tuple(m.strip() for m in options["modes"].split(",") if m.strip()),
        repeats=options["repeats"],
        results=options["results"],
        address=options["address"],
        experiment=options["experiment"],
    )
    run_benchmark(config)
    return 0


if __name__ == "__main__":
    main()
