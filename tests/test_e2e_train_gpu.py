"""`mlflow run . -e train_gpu`: on CUDA where the machine has a GPU, on the CPU where it has none.

Side by side with train_cpu: test_scale_tracking.py, test_e2e_analyze.py.
"""

import mlflow
import pytest
from click.testing import CliRunner
from helpers import (
    assert_nothing_written,
    assert_serves_what_was_scored,
    load_entrypoint,
    mlflow_run,
    project_copy,
    read_results,
)

from mlfleet.config import DataConfig
from mlfleet.data import load_dataset

pytestmark = pytest.mark.e2e
TABLE = "lakehouse/model_training_results"


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    return project_copy(tmp_path)


def runs_of(client, sweep_id):
    return client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.sweep_id = '{sweep_id}' and tags.`mlfleet.role` = 'model'",
    )


def test_train_gpu_trains_where_it_can_and_logs_loadable_models(project):
    proc = mlflow_run(project, "train_gpu", {"models": "mlp:2", "device": "auto", "n_trials": "2", "n_samples": "400"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    device = "gpu" if has_gpu() else "cpu"
    fell_back = "no GPU in the Ray cluster: the GPU families train on CPU (device=auto)" in proc.stderr
    assert fell_back == (device == "cpu")
    table = read_results(str(project / TABLE))
    assert sorted(table["model_id"]) == [90, 91]
    assert (table["device"] == device).all() and (table["entry_point"] == "train_gpu").all()
    assert set(table["model_type"]) == {"TorchMLPClassifier"}
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    children = {r.info.run_id: r for r in runs_of(client, table["sweep_id"][0])}
    assert set(children) == set(table["mlflow_run_id"])
    for row in table.itertuples():
        run = children[row.mlflow_run_id]
        assert run.info.status == "FINISHED" and run.data.tags["device"] == device
        assert {"hidden", "lr", "epochs", "batch_size"} <= set(run.data.params)
        data = load_dataset(DataConfig(n_samples=400))
        assert_serves_what_was_scored(row.model_uri, data.X, data.y, min_accuracy=0.6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--device", "cuda"],
            "device=cuda but the Ray cluster has no GPU",
            marks=pytest.mark.skipif("has_gpu()", reason="this machine has a GPU"),
        ),
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


def test_train_gpu_without_torch_stops_in_one_line_saying_what_to_install(project, tmp_path):
    # the README's base install has no PyTorch: here a `torch` that cannot be imported stands in for none
    missing = tmp_path / "without_torch" / "torch"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    env = {"PYTHONPATH": str(missing.parent)}
    proc = mlflow_run(project, "train_gpu", {"models": "mlp:1", "n_samples": "100"}, env=env)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: the mlp family needs PyTorch, which is not installed here: pip install -e '.[gpu]' "
        "(on a machine without a GPU, a CPU build of torch first: see the README)"
    ], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr.split("error: ")[0][-2000:]
    assert not (project / "lakehouse").exists()
