"""How fast is the README's main command, and what does tracking cost?

Runs `mlflow run . -e train_cpu --env-manager local` (the default 90-model fleet unless
-P options are given) in a fresh temporary folder, exactly as a user would, then reads the
sweep back from MLflow and Delta and prints:

* the command's wall time, split into start-up (imports, Ray, stores) and the sweep itself;
* per family: models, mean seconds per model (tuning + refit), CPUs per model, share of the work;
* tracking cost per model (MLflow logging + Delta append): median, 95th percentile, and the
  sum as a share of the sweep's tuning and training time;
* parallel efficiency: CPU-seconds of model work / (sweep wall time x CPUs).

    python benchmarks/train_cpu_speed.py                       # the default fleet
    python benchmarks/train_cpu_speed.py -P models=svm:4 -P n_trials=3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-P", dest="params", action="append", default=[], help="an MLproject parameter, name=value")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    import mlflow
    from mlfleet import results

    work = Path(tempfile.mkdtemp(prefix="mlfleet-bench-"))
    for name in ("MLproject", "conda.yaml"):
        shutil.copy(REPO / name, work / name)
    shutil.copytree(REPO / "entrypoints", work / "entrypoints", ignore=shutil.ignore_patterns("__pycache__"))
    # Measure the code as it is now: Ray starts workers during the run, and an editable
    # install would hand them whatever the working tree holds by then.
    shutil.copytree(REPO / "mlfleet", work / "snapshot" / "mlfleet", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(work / "snapshot"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "mlflow", "run", ".", "-e", "train_cpu", "--env-manager", "local"]
    for p in args.params:
        cmd += ["-P", p]
    print("$", " ".join(cmd[2:]), f"  (in {work})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-4000:])
        sys.exit(f"the command failed with exit code {proc.returncode}")

    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    parent = client.search_runs(experiments, "tags.`mlfleet.role` = 'sweep'")[0]
    m = parent.data.metrics
    rows = results.read_results(str(work / "lakehouse" / "model_training_results"))
    rows["model_s"] = rows["tuning_s"] + rows["train_s"]

    print(f"\nmachine: {os.cpu_count()} CPUs; fleet: {len(rows)} models, {parent.data.params.get('n_trials')} trials each")
    print(f"command wall time        {total:8.1f} s  (start-up {total - m['wall_s']:.1f} s, sweep {m['wall_s']:.1f} s)")
    print(f"models succeeded/failed  {int(m['n_succeeded'])}/{int(m['n_failed'])}, best {parent.data.tags['primary_metric']} {m['best_score']:.4f}")
    print(f"tracking per model       median {m['tracking_s_median']:.3f} s, p95 {m['tracking_s_p95']:.3f} s, "
          f"sum {m['tracking_share']:.1%} of tuning+training time")
    print(f"parallel efficiency      {m['parallel_efficiency']:.1%}  (model work {m['model_work_cpu_s']:.0f} CPU-s, each model's "
          "tuning + refit seconds x the CPUs it held, / (sweep wall x CPUs))")
    print(f"CPU utilisation          {m['cpu_utilisation']:.1%}  (CPU time the models' processes used, {m['model_cpu_s']:.0f} s, / (sweep wall x CPUs))")
    cpu_s = {r.data.tags["model_id"]: r.data.metrics.get("cpu_s", float("nan")) for r in client.search_runs(experiments, f"tags.sweep_id = '{rows.sweep_id[0]}' and tags.`mlfleet.role` = 'model'", max_results=5000)}
    rows["cpu_s"] = rows["model_id"].astype(str).map(cpu_s)
    fam = rows.groupby("family").agg(models=("model_id", "size"), mean_s=("model_s", "mean"), sum_s=("model_s", "sum"), cpus=("cpus", "first"), cpu_s=("cpu_s", "sum"))
    fam["held_cpu_s"] = fam["sum_s"] * fam["cpus"]
    fam["cores_used"] = fam["cpu_s"] / fam["sum_s"]
    fam["share"] = fam["held_cpu_s"] / fam["held_cpu_s"].sum()
    print("\nper family (mean_s = seconds per model, tuning + refit; cores_used = CPU-s / wall-s of that work;"
          " share = of the CPU time the family held)")
    print(fam.sort_values("share", ascending=False).to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\nwhat sets the time: {fam['share'].idxmax()} holds {fam['share'].max():.0%} of the CPU time")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
