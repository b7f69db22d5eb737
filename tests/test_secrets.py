"""Nothing sensitive logged: secrets in the environment appear nowhere in what a sweep leaves.

The whole project folder is searched byte for byte after `mlflow run . -e train_cpu`: the
tracking database (params, tags, metrics, inputs), every artifact (models, their
environments, results.csv) and the Delta table (data files and log), and the command's output.
"""

import pytest

from conftest import mlflow_run, project_copy
from mlfleet.config import DataConfig, FleetConfig
from mlfleet.redaction import redact

SECRETS = {
    "MLFLOW_TRACKING_PASSWORD": "mlfleet-secret-tracking-password-7f3a",
    "MLFLOW_TRACKING_TOKEN": "mlfleet-secret-tracking-token-91c2",
    "AWS_SECRET_ACCESS_KEY": "mlfleet-secret-aws-key-5d0e",
    "AZURE_STORAGE_ACCOUNT_KEY": "mlfleet-secret-azure-key-c4b8",
    "DATABRICKS_TOKEN": "mlfleet-secret-databricks-2e6f",
    "MY_SERVICE_API_TOKEN": "mlfleet-secret-service-token-a17d",
}


@pytest.mark.e2e
def test_secrets_in_the_environment_appear_nowhere_in_the_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    project = project_copy(tmp_path / "project")
    proc = mlflow_run(project, "train_cpu", {"models": "logistic:1,xgboost:1", "n_trials": "2", "n_samples": "300"}, env=SECRETS)
    assert proc.returncode == 0, proc.stderr[-3000:]

    files = [p for p in project.rglob("*") if p.is_file() and p.suffix != ".py" and p.name not in ("MLproject", "conda.yaml")]
    assert any(p.name == "mlflow.db" for p in files) and any(p.name == "MLmodel" for p in files)
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "results.csv" for p in files)
    for name, secret in SECRETS.items():
        holders = [str(p.relative_to(project)) for p in files if secret.encode() in p.read_bytes()]
        assert not holders, f"{name} found in {holders}"
        assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://bob:hunter2@example.com/data.csv", "https://bob:***@example.com/data.csv"),
        ("s3://bucket/table?X-Amz-Signature=abc123", "s3://bucket/table?***"),
        ("abfss://container@account.dfs.core.windows.net/results", "abfss://container@account.dfs.core.windows.net/results"),
        ("postgresql://mlflow:pa55@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("lakehouse/model_training_results", "lakehouse/model_training_results"),
    ],
)
def test_credentials_in_uris_are_redacted(text, shown):
    assert redact(text) == shown


def test_the_sweep_parameters_never_carry_a_uri_password():
    params = FleetConfig(data=DataConfig(source="https://bob:hunter2@example.com/data.csv"), results="s3://bucket/t?sig=xyz").params()
    assert "hunter2" not in str(params) and "xyz" not in str(params)
    assert params["data"] == "https://bob:***@example.com/data.csv"

