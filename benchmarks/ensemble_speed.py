"""How does an 8-partition ensemble compare with one model on all the data, in time and score?

Generates a synthetic set (100k rows by default), runs the ``ensemble`` command's library call
in-process in a fresh temporary folder (sqlite tracking store and Delta table inside it, a
local Ray), and prints:

* the wall time of the members' training wave (all members submitted at once) against the
  single all-data model's (trained alone afterwards, on warm Ray workers as well);
* the test scores of the ensemble, the single model and the members;
* evidence that the members trained in parallel: the members' CPU seconds and fit seconds per
  second of the wave's wall time, and a timeline of each member's fit, with the most members
  fitting at once;
* what the rest of the command cost (start-up, scoring and logging the models, the rows).

    python benchmarks/ensemble_speed.py                                  # 100k rows, 8 partitions, random_forest
    python benchmarks/ensemble_speed.py --n_samples 200000 --model xgboost --keep
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

WIDTH = 60  # characters of the timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n_samples", type=int, default=100_000, help="rows of the generated set")
    parser.add_argument("--n_features", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--model", default="random_forest")
    parser.add_argument("--task", default="classification", choices=["classification", "regression"])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlfleet-ensemble-bench-"))
    os.chdir(work)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    for key in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        os.environ.pop(key, None)

    from ensembles import EnsembleConfig, run_ensemble
    from mlfleet.config import DataConfig

    config = EnsembleConfig(
        data=DataConfig(task=args.task, n_samples=args.n_samples, n_features=args.n_features),
        partitions=args.partitions,
        model=args.model,
        experiment="ensemble-speed",
    )
    t0 = time.perf_counter()
    report = run_ensemble(config, stream=sys.stderr)
    total = time.perf_counter() - t0
    if report.exit_code:
        sys.exit(f"the ensemble failed: {report.problems}")
    print_figures(report, args, total)
    if args.keep:
        print(f"\nkept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def print_figures(report, args, total_s: float) -> None:
    f = report.figures
    metric = report.metric
    members = sorted((r for r in report.rows if r.kind == "member"), key=lambda r: r.member)
    single, ensemble = report.row("single"), report.row("ensemble")
    ens_wall, single_wall = f["ensemble_train_wall_s"], f["single_train_wall_s"]

    print(
        f"\nmachine: {os.cpu_count()} CPUs; "
        f"data: {args.n_samples} generated rows x {args.n_features} features ({args.task}), "
        f"{single.shard_rows} training rows; family {args.model}"
    )
    print(
        f"members: {len(members)} shards of "
        f"{min(r.shard_rows for r in members)}-{max(r.shard_rows for r in members)} rows, "
        f"{members[0].cpus:g} CPU(s) each; single model: {single.cpus:g} CPU(s)"
    )
    print("\ntraining wall time (driver clock, submission to last result; workers warmed beforehand)")
    print(f"  ensemble of {len(members)}, in parallel  {ens_wall:8.2f} s")
    print(f"  single model, all rows        {single_wall:8.2f} s")
    ratio = single_wall / ens_wall
    print(
        f"  -> the ensemble trains {ratio:.2f}x faster"
        if ratio >= 1
        else f"  -> the ensemble trains {1 / ratio:.2f}x slower"
    )
    print(f"\ntest {metric}")
    print(f"  ensemble ({report.voting} vote)   {ensemble.score:.4f}")
    print(f"  single model           {single.score:.4f}")
    print(
        f"  members                mean {f[f'member_{metric}_mean']:.4f}, "
        f"min {f[f'member_{metric}_min']:.4f}, max {f[f'member_{metric}_max']:.4f}"
    )
    second = "accuracy" if single.task == "classification" else "r2"
    print(f"  {second}: ensemble {getattr(ensemble, second):.4f}, single {getattr(single, second):.4f}")
    print(f"verdict: {report.verdict}")

    print("\nparallelism of the members' wave")
    print(
        f"  members' fit seconds, summed   {f['members_fit_s']:8.2f} s  "
        f"-> {f['members_parallelism']:.2f} fitting at once on average"
    )
    print(
        f"  members' CPU seconds, summed   {f['members_cpu_s']:8.2f} s  "
        f"-> {f['members_cpu_per_wall']:.2f} CPU-s per wall-s "
        f"(1.0 would be one core; the machine has {os.cpu_count()})"
    )
    print(f"  single model's CPU-s per wall-s: {single.cpu_s / single.train_s:.2f} (its own threads)")
    print_timeline(members, ensemble)

    logged = total_s - ens_wall - single_wall
    print(
        f"\nwhole command {total_s:.1f} s: training {ens_wall + single_wall:.1f} s; the rest {logged:.1f} s "
        f"(data, Ray start and warm-up, scoring, logging {len(members) + 2} MLflow models, Delta rows, plot)"
    )


def print_timeline(members, ensemble) -> None:
    """One line per member: when it fitted within the wave (worker clocks; one machine here)."""
    start = ensemble.started_at.timestamp()
    spans = [(r.member, r.started_at.timestamp() - start, r.finished_at.timestamp() - start) for r in members]
    end = max(e for _, _, e in spans)
    scale = WIDTH / end if end > 0 else 1.0
    print(f"\ntimeline of the members' fits (0 = the wave's first submission; 1 char = {end / WIDTH:.2f} s)")
    for member, s, e in spans:
        bar = " " * int(s * scale) + "#" * max(1, int(e * scale) - int(s * scale))
        print(f"  m{member:<2d} |{bar:<{WIDTH}}| {s:6.2f} - {e:6.2f} s")
    events = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans], key=lambda x: (x[0], x[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    print(f"  most members fitting at the same moment: {most}")


if __name__ == "__main__":
    main()
