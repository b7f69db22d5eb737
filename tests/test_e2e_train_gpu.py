"""`mlflow run . -e train_gpu` on this CPU-only machine.

Side by side with train_cpu: test_scale_tracking.py, test_e2e_analyze.py.
"""

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import assert_nothing_written, load_entrypoint, mlflow_run, project_copy, read_results

pytestmark = pytest.mark.e2e
TABLE = "lakehouse/model_training_results"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    return project_copy(tmp_path)


def runs_of(client, sweep_id):
    return client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.sweep_id = '{sweep_id}' and tags.`mlfleet.role` = 'model'",
    )


def test_train_gpu_falls_back_to_cpu_and_logs_loadable_models(project):
    proc = mlflow_run(project, "train_gpu", {"models": "mlp:2", "device": "auto", "n_trials": "2", "n_samples": "400"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no GPU in the Ray cluster: the GPU families train on CPU (device=auto)" in proc.stderr
    table = read_results(str(project / TABLE))
    assert sorted(table["model_id"]) == [90, 91]
    assert (table["device"] == "cpu").all() and (table["entry_point"] == "train_gpu").all()
    assert set(table["model_type"]) == {"TorchMLPClassifier"}
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    children = {r.info.run_id: r for r in runs_of(client, table["sweep_id"][0])}
    assert set(children) == set(table["mlflow_run_id"])
    for row in table.itertuples():
        run = children[row.mlflow_run_id]
        assert run.info.status == "FINISHED" and run.data.tags["device"] == "cpu"
        assert {"hidden", "lr", "epochs", "batch_size"} <= set(run.data.params)
        model = mlflow.pyfunc.load_model(row.model_uri)
        frame = pd.DataFrame(np.random.default_rng(0).normal(size=(4, 20)), columns=[f"f{i:02d}" for i in range(20)])
        assert set(np.unique(model.predict(frame))) <= {0, 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "cuda"], "device=cuda but the Ray cluster has no GPU"),
        (["--gpus_per_model", "0"], "is not in the range x>0"),
        (["--gpus_per_model", "-1"], "is not in the range x>0"),
        (["--models", "mlp:0"], "at least 1, but got 'mlp:0'"),
        (["--models", "svm:2"], "unknown model family 'svm'"),
    ],
)
def test_train_gpu_bad_input(tmp_path, ray_local, args, message):
    result = CliRunner().invoke(load_entrypoint("train_gpu"), [*args, "--n_samples", "100"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert_nothing_written(tmp_path)
