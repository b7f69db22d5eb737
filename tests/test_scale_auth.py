"""A tracking server with authentication (`mlflow server --app-name basic-auth` on 127.0.0.1), as teams run it.

A sweep with MLFLOW_TRACKING_USERNAME/PASSWORD set logs every model through it (its Ray workers
authenticate too), and the password is in no file the sweep left and no line it printed; a
wrong password stops the command before Ray starts, in one line.
"""

import mlflow
import pytest
from helpers import mlflow_run, project_copy, read_results
from servers import MlflowServer, run_entry

pytestmark = pytest.mark.e2e
PASSWORD = "fleet-pw-9d1c-never-logged"
ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-pw-4471-x"}
SMALL = {"n_trials": "1", "n_samples": "300", "n_features": "8"}
TABLE = "lakehouse/model_training_results"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = MlflowServer(tmp_path_factory.mktemp("auth"), admin_password=ADMIN["MLFLOW_TRACKING_PASSWORD"]).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in ADMIN.items():
                mp.setenv(key, value)
            from mlflow.server import get_app_client

            get_app_client("basic-auth", tracking_uri=srv.uri).create_user("fleet", PASSWORD)
        yield srv
    finally:
        srv.stop()


def fleet_env(server, password: str = PASSWORD) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": server.uri,
        "MLFLOW_TRACKING_USERNAME": "fleet",
        "MLFLOW_TRACKING_PASSWORD": password,
    }


def test_a_sweep_with_credentials_logs_every_model_and_leaks_nothing(server, tmp_path, monkeypatch):
    project = project_copy(tmp_path / "project")
    params = {"models": "logistic:1,naive_bayes:1", **SMALL}
    # its own experiment: the basic-auth default lets a user read others, not write into them
    proc = mlflow_run(project, "train_cpu", params, experiment="fleet", env=fleet_env(server))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = read_results(str(project / TABLE))
    assert len(table) == 2 and (table["status"] == "FINISHED").all()
    for key, value in fleet_env(server).items():
        monkeypatch.setenv(key, value)
    client = mlflow.MlflowClient(server.uri)
    for run_id in table["mlflow_run_id"]:  # logged by the workers, through the server, as user fleet
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"  # (a server without these credentials answers 401)
    holders = [str(p) for p in project.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert not holders and PASSWORD not in proc.stdout + proc.stderr
    assert not (project / "mlflow.db").exists()


def test_a_wrong_password_stops_before_ray_in_one_line(server, tmp_path):
    project = project_copy(tmp_path / "project")
    proc = run_entry(project, "train_cpu", {"models": "svm:1"}, env=fleet_env(server, "not-the-password"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line == (
        f"error: the MLflow tracking server {server.uri} refused the credentials of MLFLOW_TRACKING_USERNAME=fleet; "
        "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account of "
        "that server"
    )
    assert not (project / "lakehouse").exists() and "not-the-password" not in proc.stderr
