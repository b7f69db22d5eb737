"""What does the cluster path cost? The same fleet on a one-node and on a two-node Ray cluster.

Both clusters run on this machine with the same CPUs in all (2 by default): one node with 2
CPUs, or a head and a worker node with 1 CPU each, each started with `ray start --block` and
stopped afterwards. The fleet is made of 1-CPU families, so that every model asks for the same
resources on both (a 2-CPU forest would be capped to 1 CPU on the two-node cluster and be other
work). The command joins each cluster with `--address host:port`, logs to a sqlite store and
writes a local results table (on one machine every node sees the disk: MLFLEET_SHARED_STORAGE=1).

It prints the sweep's wall time (the parent run's `wall_s`: submitting, training, logging, rows)
and the command's, for each cluster, and the two-node run's overhead over the one-node run.
No gain is expected with the same CPUs; the figure is what the cluster path costs.

    python benchmarks/cluster_overhead.py
    python benchmarks/cluster_overhead.py --repeats 2 --models gradient_boosting:6,svm:6 --n_trials 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import _harness  # noqa: E402
from servers import child_env, ray_cluster  # noqa: E402  (the test suite's real clusters)

DEFAULT_MODELS = "gradient_boosting:4,svm:4,logistic:4,naive_bayes:4"


def one_run(address: str, args, label: str) -> tuple[float, float, int, float]:
    """Run train_cpu against ``address`` in a fresh folder.

    Return (sweep wall, command wall, distinct nodes, packing efficiency).
    """
    import mlflow

    from mlfleet.stores.tables import open_results

    work = _harness.workspace(prefix=f"mlfleet-{label}-")
    cmd = [
        sys.executable,
        "entrypoints/train_cpu.py",
        "--address",
        address,
        "--models",
        args.models,
        "--n_trials",
        str(args.n_trials),
        "--n_samples",
        str(args.n_samples),
    ]
    env = child_env(MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", MLFLEET_SHARED_STORAGE="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    command_s = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-4000:])
        sys.exit(f"train_cpu on the {label} cluster failed with exit code {proc.returncode}")
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`mlfleet.role` = 'sweep'"
    )
    rows = open_results(str(work / _harness.TABLE)).read()
    shutil.rmtree(work, ignore_errors=True)
    # how busy each node was between the first model's start and the last model's end
    start, end = rows["started_at"].min(), rows["finished_at"].max()
    span = (end - start).total_seconds()
    busy = {
        node: (part["finished_at"] - part["started_at"]).dt.total_seconds().sum() for node, part in rows.groupby("node")
    }
    print(
        f"  {label}: models {len(rows)}, span {span:.1f} s; per node: "
        + ", ".join(
            f"{n.split(':')[-1]} {len(rows[rows['node'] == n])} models, busy {b:.1f} s" for n, b in busy.items()
        )
        + (
            f"; model work {parent.data.metrics['fit_cpu_s']:.1f} CPU-s, "
            f"packing efficiency {parent.data.metrics['packing_efficiency']:.0%}"
        ),
        flush=True,
    )
    return parent.data.metrics["wall_s"], command_s, rows["node"].nunique(), parent.data.metrics["packing_efficiency"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models", default=DEFAULT_MODELS, help="the fleet: 1-CPU families only, so both clusters run the same work"
    )
    parser.add_argument("--n_trials", type=int, default=5)
    parser.add_argument("--n_samples", type=int, default=3000)
    parser.add_argument(
        "--cpus", type=int, default=2, help="CPUs in all: one node with all of them, or two nodes with half each"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs on each cluster, alternating; the medians are compared"
    )
    args = parser.parse_args()

    half = args.cpus // 2
    layouts = {"one-node": (args.cpus,), "two-node": (half, args.cpus - half)}
    walls: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in layouts}
    for repeat in range(args.repeats):
        for name, cpus in layouts.items():
            with ray_cluster(cpus) as cluster:
                sweep_s, command_s, nodes, efficiency = one_run(cluster.address, args, name)
            walls[name].append((sweep_s, command_s, nodes, efficiency))
            print(
                f"repeat {repeat + 1}/{args.repeats} {name:<9} nodes {cpus}: sweep {sweep_s:6.1f} s, "
                f"command {command_s:6.1f} s, "
                f"models ran on {nodes} node(s)",
                flush=True,
            )
    one = statistics.median(w[0] for w in walls["one-node"])
    two = statistics.median(w[0] for w in walls["two-node"])
    one_cmd = statistics.median(w[1] for w in walls["one-node"])
    two_cmd = statistics.median(w[1] for w in walls["two-node"])
    print(
        f"\nfleet {args.models}, {args.n_trials} trials, {args.n_samples} rows, "
        f"{args.cpus} CPUs in all ({os.cpu_count()} on this machine)"
    )
    print(f"sweep wall    one node {one:6.1f} s   two nodes {two:6.1f} s   overhead {two / one - 1:+.1%}")
    print(
        f"command wall  one node {one_cmd:6.1f} s   two nodes {two_cmd:6.1f} s   overhead {two_cmd / one_cmd - 1:+.1%}"
    )
    # the models' own seconds grow with whatever else runs on the machine; the packing efficiency
    # (the ideal packing of the model work / the sweep's wall) divides that out, so it is the
    # steadier figure on a busy machine
    eff_one = statistics.median(w[3] for w in walls["one-node"])
    eff_two = statistics.median(w[3] for w in walls["two-node"])
    print(
        f"efficiency    one node {eff_one:6.1%}   two nodes {eff_two:6.1%}   "
        f"overhead {eff_one / eff_two - 1:+.1%} (wall per unit of model work)"
    )


if __name__ == "__main__":
    main()
