"""Ray on Spark: the fleet on a Ray cluster made from a Spark cluster, as on Databricks (opt-in, minutes).

A local Spark standalone cluster in one process (pyspark's ``local-cluster[2,1,1024]``:
two executors of one core), ``ray.util.spark.setup_ray_cluster`` on it, a small train_cpu
sweep with ``address`` set to what it returned, then ``shutdown_ray_cluster``. The sweep's
tasks run on the Ray worker node that Spark started; the stores are local folders declared
shared (``MLFLEET_SHARED_STORAGE``: one machine). About three minutes on two cores, so it runs
only with ``MLFLEET_RAY_ON_SPARK=1 pytest tests/test_scale_ray_on_spark.py``.
"""

import json
import os
import subprocess
import sys

import pytest
from helpers import read_results
from servers import child_env

pytestmark = [
    pytest.mark.scale,
    pytest.mark.skipif(not os.environ.get("MLFLEET_RAY_ON_SPARK"), reason="opt-in: MLFLEET_RAY_ON_SPARK=1 (minutes)"),
]

SCRIPT = r"""
import json, os, sys
os.environ["PYSPARK_PYTHON"] = sys.executable
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local-cluster[2,1,1024]").appName("mlfleet-ray-on-spark")
         .config("spark.ui.enabled", "false").config("spark.task.cpus", "1")
         .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable).getOrCreate())
from ray.util.spark import setup_ray_cluster, shutdown_ray_cluster
address, _ = setup_ray_cluster(max_worker_nodes=1, num_cpus_worker_node=1, num_gpus_worker_node=0)
import ray
import mlfleet
try:
    report = mlfleet.train_cpu(address=address, models="logistic:1,naive_bayes:1", n_trials=1, n_samples=300,
                               n_features=8, results=sys.argv[1], experiment="ray-on-spark")
    ray.init(address=address)  # the sweep let go of the cluster it joined: look at its nodes
    nodes = {n["NodeID"]: n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]}
    ray.shutdown()
    print("RESULT", json.dumps({"exit": report.exit_code, "address": address, "nodes": nodes}), flush=True)
finally:
    shutdown_ray_cluster()
    spark.stop()
"""


def test_a_sweep_on_ray_on_spark(tmp_path):
    results = tmp_path / "lakehouse" / "results"
    env = child_env(
        RAY_AUTH_MODE="disabled",
        MLFLEET_SHARED_STORAGE="1",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(results)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = json.loads(proc.stdout.split("RESULT", 1)[1].splitlines()[0])
    assert found["exit"] == 0
    table = read_results(str(results))
    assert len(table) == 2 and (table["status"] == "FINISHED").all()
    workers = {node[:8] for node, cpus in found["nodes"].items() if cpus > 0}  # the row names a node by 8
    assert set(table["node"].str.split(":").str[-1]) <= workers  # trained on the Spark-started Ray worker
