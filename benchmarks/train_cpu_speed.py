"""How fast is the README's main command, and what does tracking cost?

Runs `mlflow run . -e train_cpu --env-manager local` (the default 90-model fleet unless
-P options are given) in a fresh temporary folder, exactly as a user would, then reads the
sweep back from MLflow and Delta and prints:

* the command's wall time, split into start-up (imports, Ray, stores) and the sweep itself;
* per family: models, mean seconds per model (tuning + refit), CPUs held, CPU cores the work
  really used, and the family's share of the CPU time held;
* tracking cost per model (MLflow logging + Delta append): median, 95th percentile, and the
  sum as a share of the sweep's tuning and training time;
* CPU utilisation (the fleet's process CPU-seconds, fitting and recording, / (sweep wall x
  CPUs)) and the packing efficiency (the ideal packing of the model work, its CPU-seconds over
  every core, / the sweep's wall): shares that cannot pass 100%.

    python benchmarks/train_cpu_speed.py                       # the default fleet
    python benchmarks/train_cpu_speed.py -P models=svm:4 -P n_trials=3
"""

from __future__ import annotations

import argparse
import os
import shutil

import _harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-P", dest="params", action="append", default=[], help="an MLproject parameter, name=value")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    work = _harness.workspace()
    done = _harness.run(work, "train_cpu", args.params)
    parents, children, rows = _harness.sweeps(work)
    parent = parents[0]
    m = parent.data.metrics
    rows["model_s"] = rows["tuning_s"] + rows["train_s"]
    cpu_s = {r.data.tags["model_id"]: r.data.metrics.get("cpu_s", float("nan")) for r in children}
    rows["cpu_s"] = rows["model_id"].astype(str).map(cpu_s)

    print(
        f"\nmachine: {os.cpu_count()} CPUs; fleet: {len(rows)} models, {parent.data.params.get('n_trials')} trials each"
    )
    print(
        f"command wall time        {done.wall_s:8.1f} s  "
        f"(start-up and close {done.wall_s - m['wall_s']:.1f} s, sweep {m['wall_s']:.1f} s)"
    )
    print(
        f"models succeeded/failed  {int(m['n_succeeded'])}/{int(m['n_failed'])}, "
        f"best {parent.data.tags['primary_metric']} {m['best_score']:.4f}"
    )
    print(
        f"tracking per model       median {m['tracking_s_median']:.3f} s, p95 {m['tracking_s_p95']:.3f} s "
        f"(Delta append median {m['delta_s_median']:.3f} s), sum {m['tracking_share']:.1%} of tuning+training time"
    )
    print(
        f"CPU utilisation          {m['cpu_utilisation']:.1%}  "
        f"(the fleet's process CPU, {m['fleet_cpu_s']:.0f} s with its recording, / (sweep wall x CPUs))"
    )
    print(
        f"packing efficiency       {m['packing_efficiency']:.1%}  "
        f"(the ideal packing of the model work, {m['fit_cpu_s']:.0f} CPU-s over every CPU: "
        f"{m['ideal_wall_s']:.1f} s, / the sweep's wall)"
    )
    fam = rows.groupby("family").agg(
        models=("model_id", "size"),
        mean_s=("model_s", "mean"),
        sum_s=("model_s", "sum"),
        cpus=("cpus", "first"),
        cpu_s=("cpu_s", "sum"),
    )
    fam["cores_used"] = fam["cpu_s"] / fam["sum_s"]
    fam["share"] = fam["sum_s"] * fam["cpus"] / (rows["model_s"] * rows["cpus"]).sum()
    print(
        "\nper family (mean_s: seconds per model, tuning + refit; cores_used: CPU-s / wall-s of that work; "
        "share: of the CPU time held by models)"
    )
    print(
        fam.drop(columns=["sum_s", "cpu_s"])
        .sort_values("share", ascending=False)
        .to_string(float_format=lambda v: f"{v:.2f}")
    )
    print(f"\nwhat sets the time: {fam['share'].idxmax()} holds {fam['share'].max():.0%} of the CPU time")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
