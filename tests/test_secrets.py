"""Nothing sensitive logged: secrets in the environment appear nowhere in what a sweep leaves.

test_e2e_train_cpu.py runs `mlflow run . -e train_cpu` with :data:`SECRETS` in the
environment, then searches the whole project folder byte for byte: the tracking database
(params, tags, metrics, inputs), every artifact (models, their environments, results.csv),
the Delta table (data files and log), and the command's output. test_scale_tracking.py does
the same for all five entry points against a tracking server whose URI carries a password.
"""

from pathlib import Path

import pytest

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


def assert_no_secret_left(project: Path, output: str, *, secrets: dict[str, str] = SECRETS) -> None:
    """Search every byte the commands left under ``project`` (and their output) for each of ``secrets``.

    ``project`` must hold what a sweep leaves (a tracking database, a logged model, a Delta
    table, results.csv), so that an empty folder cannot pass.
    """
    files = [
        p for p in project.rglob("*") if p.is_file() and p.suffix != ".py" and p.name not in ("MLproject", "conda.yaml")
    ]
    assert any(p.suffix == ".db" for p in files) and any(p.name == "MLmodel" for p in files)
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "results.csv" for p in files)
    for name, secret in secrets.items():
        holders = [str(p.relative_to(project)) for p in files if secret.encode() in p.read_bytes()]
        assert not holders, f"{name} found in {holders}"
        assert secret not in output


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://bob:hunter2@example.com/data.csv", "https://bob:***@example.com/data.csv"),
        ("s3://bucket/table?X-Amz-Signature=abc123", "s3://bucket/table?***"),
        (
            "abfss://container@account.dfs.core.windows.net/results",
            "abfss://container@account.dfs.core.windows.net/results",
        ),
        ("postgresql://mlflow:pa55@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("lakehouse/model_training_results", "lakehouse/model_training_results"),
        # a token alone as the user information
        ("https://ghp_Token123@example.com/data.csv", "https://***@example.com/data.csv"),
        # passwords holding @ or /: hidden whole, up to the host
        ("http://user:p@ss@host:5000/api", "http://user:***@host:5000/api"),
        ("http://user:pa/ss@host:5000/api", "http://user:***@host:5000/api"),
        # MLflow's own error repeats the request URL
        (
            "API request to http://u:hunter2@h:5000/api/2.0/mlflow/runs/get failed with exception "
            "HTTPConnectionPool(host='h', port=5000)",
            "API request to http://u:***@h:5000/api/2.0/mlflow/runs/get failed with exception "
            "HTTPConnectionPool(host='h', port=5000)",
        ),
        # a query string after a name, not a URI (a dataset's display name, a file)
        ("table.csv?sig=abc123&se=2027", "table.csv?***"),
        ("s3://bucket/key@v2/part.parquet", "s3://bucket/key@v2/part.parquet"),
    ],
)
def test_credentials_in_uris_are_redacted(text, shown):
    assert redact(text) == shown


def test_rows_and_their_files_are_redacted_where_they_leave(tmp_path):
    """A row's error (MLflow repeats the URL of a failed request) and its dataset name reach Delta and
    results.csv without the secret."""
    from dataclasses import replace

    from test_results import make_row

    from mlfleet.data._dataset import _display_name
    from mlfleet.stores.rows import rows_to_frame
    from mlfleet.stores.tables import open_results

    error = "API request to http://u:hunter2@h:5000/api/2.0/mlflow/runs/create failed"
    row = make_row(status="FAILED", error=error, dataset=_display_name("https://h/t.csv?sig=s3cr3t"))
    assert row.dataset == "t"
    table = open_results(str(tmp_path / "results"))
    table.ensure()
    table.commit_batch([row, replace(row, model_id=1, dataset="t?sig=s3cr3t")], [1, 1])
    written = table.read()
    rows_to_frame([row]).to_csv(tmp_path / "results.csv", index=False)
    for text in (written.to_csv(), (tmp_path / "results.csv").read_text()):
        assert "hunter2" not in text and "s3cr3t" not in text and "http://u:***@h:5000" in text


def test_the_sweep_parameters_never_carry_a_uri_password():
    params = FleetConfig(
        data=DataConfig(source="https://bob:hunter2@example.com/data.csv"), results="s3://bucket/t?sig=xyz"
    ).params()
    assert "hunter2" not in str(params) and "xyz" not in str(params)
    assert params["data"] == "https://bob:***@example.com/data.csv"


def test_under_mlflow_run_a_parameter_with_credentials_stops_in_one_line(monkeypatch, tmp_path):
    from click.testing import CliRunner
    from helpers import assert_nothing_written, load_entrypoint

    monkeypatch.setenv("MLFLOW_RUN_ID", "0123abcd")  # as `mlflow run` sets it, after logging every -P value
    result = CliRunner().invoke(load_entrypoint("train_cpu"), ["--results", "s3://bucket/table?sig=hunter2"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: results holds credentials") and "mlflow runs delete --run-id 0123abcd" in line
    assert "hunter2" not in result.output
    assert_nothing_written(tmp_path)


def test_every_line_and_error_the_command_prints_is_redacted(tmp_path):
    import io
    import logging

    from click.testing import CliRunner
    from helpers import load_entrypoint

    from mlfleet import logs
    from mlfleet.stores import runs

    stream = io.StringIO()
    with logs.console(stream):
        logging.getLogger("mlfleet.anywhere").info("reading https://bob:hunter2@example.com/x.csv?token=abc")
    assert stream.getvalue().strip() == "reading https://bob:***@example.com/x.csv?***"
    assert runs.param("data", "s3://b/t?sig=abc").value == "s3://b/t?***"
    assert runs.tag("error", "no https://u:hunter2@h/x").value == "no https://u:***@h/x"
    # an error about the data names it, without its password
    result = CliRunner().invoke(load_entrypoint("train_cpu"), ["--data", "https://bob:hunter2@127.0.0.1:9/data.csv"])
    assert result.exit_code == 2 and "hunter2" not in result.output
    assert "https://bob:***@127.0.0.1:9/data.csv" in result.stderr
