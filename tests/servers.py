"""Real servers for the scale-out tests, each started here and stopped by its own process id.

* :func:`ray_cluster`: a Ray head (``ray start --head --block``) and optional worker nodes on
  127.0.0.1, each with its own CPUs, in a temp dir of their own. ``--block`` keeps each node's
  processes under the one ``ray start`` we launched, and SIGTERM to it stops exactly those
  (``ray stop`` would stop every Ray on the machine, other people's included).
* :class:`MlflowServer` / :func:`mlflow_server`: ``mlflow server`` with a sqlite or PostgreSQL
  backend, serving artifacts (the class can stop it and start it again on the same port).
* :func:`postgres`: a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) in a temp dir, run
  as the ``postgres`` user when we are root (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a server or command: our code first on the path, no run of `mlflow run`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_RUN", "RAY_ADDRESS"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.update(extra)
    return env


def _wait_for(
    predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start in {timeout:.0f} s\n{tail}")


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process we started (it stops its own children), then SIGKILL its group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # started in a session of its own: only what it started
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(10)


@dataclass(frozen=True)
class RayCluster:
    address: str  # host:port of the head's GCS, what `address=` and RAY_ADDRESS take
    client_address: str  # ray://host:port of the head's Ray Client server
    nodes: int
    token_path: str = ""  # the cluster's token, when it was started with token authentication
    tmpdir: str = ""  # as RAY_TMPDIR, it makes this cluster the one `ray.init()` finds on the machine
    pids: tuple[int, ...] = ()  # each node's `ray start --block` process: the node's processes descend from it
    metrics_ports: tuple[int, ...] = ()  # each node's Prometheus metrics (http://127.0.0.1:PORT/metrics)


@contextmanager
def ray_cluster(cpus_per_node: tuple[int, ...] = (2,), *, token: bool = False, memory: int = 0):
    """A Ray cluster on 127.0.0.1: one node per entry of ``cpus_per_node`` (the first is the head).

    With ``token`` it demands Ray's token authentication, with a token of its own in a file
    (``token_path``), not the machine's ``~/.ray/auth_token``. ``memory``: each node's ``--memory``
    (bytes Ray may schedule there), when given.
    """
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port, client_port = free_port(), free_port()
    token_path = temp / "auth_token"
    if token:
        token_path.write_text(secrets.token_hex(32))
    auth = (
        {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)} if token else {"RAY_AUTH_MODE": "disabled"}
    )
    procs: list[subprocess.Popen] = []
    metrics_ports = [free_port() for _ in cpus_per_node]
    try:
        for i, cpus in enumerate(cpus_per_node):
            log = temp / f"node{i}.log"
            if i == 0:
                args = [
                    "--head",
                    f"--port={port}",
                    f"--ray-client-server-port={client_port}",
                    "--include-dashboard=false",
                ]
            else:
                args = [f"--address=127.0.0.1:{port}"]
            cmd = [
                str(BIN / "ray"),
                "start",
                "--block",
                *args,
                "--node-ip-address=127.0.0.1",
                f"--num-cpus={cpus}",
                "--num-gpus=0",
                f"--temp-dir={temp / 'ray'}",  # Ray's default under RAY_TMPDIR={temp}: found as a local Ray would be
                "--disable-usage-stats",
                f"--object-store-memory={100 * 1024 * 1024}",
                f"--dashboard-agent-listen-port={free_port()}",
                f"--dashboard-agent-grpc-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}",
                f"--metrics-export-port={metrics_ports[i]}",
                *([f"--memory={memory}"] if memory else []),
            ]
            with open(log, "w") as out:
                # without it, `ray start` turns token authentication on wherever ~/.ray/auth_token exists
                # and Ray Client's proxy gives a new client's server 30 s to answer, too little on a busy 2-core machine
                env = child_env(**auth, RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="180")
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            procs.append(proc)
            _wait_for(
                lambda log=log: "Ray runtime started" in log.read_text(errors="replace"), 90, f"Ray node {i}", proc, log
            )
        _wait_for(lambda: _alive_nodes(port, auth) >= len(cpus_per_node), 60, f"{len(cpus_per_node)} Ray nodes")
        yield RayCluster(
            f"127.0.0.1:{port}",
            f"ray://127.0.0.1:{client_port}",
            len(cpus_per_node),
            str(token_path) if token else "",
            str(temp),
            tuple(p.pid for p in procs),
            tuple(metrics_ports),
        )
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _alive_nodes(port: int, auth: dict[str, str]) -> int:
    code = (
        f"import ray; ray.init(address='127.0.0.1:{port}', log_to_driver=False, logging_level='ERROR');"
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    env = child_env(**auth)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    lines = proc.stdout.strip().splitlines()
    return int(lines[-1]) if proc.returncode == 0 and lines and lines[-1].isdigit() else 0


@contextmanager
def postgres():
    """A PostgreSQL cluster in a temp dir on a free port; yields the SQLAlchemy URI of database ``mlflow``."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (binaries[-1] if binaries else None)
    if initdb is None:
        import pytest

        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    bindir = Path(initdb).resolve().parent  # /usr/local/bin may hold links to a few of them only
    root = os.geteuid() == 0
    temp = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
    if root:
        shutil.chown(temp, "postgres", "postgres")

    def as_pg(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        full = ["runuser", "-u", "postgres", "--", *cmd] if root else list(cmd)
        return subprocess.run(full, capture_output=True, text=True, check=check, timeout=120, cwd=temp)

    port = free_port()
    data = temp / "data"
    started = False
    try:
        as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        as_pg(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(temp / "pg.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {temp} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        started = True
        as_pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        if started:
            as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(temp, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 serving artifacts, that a test can stop and start again.

    The backend defaults to a sqlite file in ``root``; a restart keeps the port and the store.
    """

    def __init__(self, root: Path, backend: str = "", artifacts: Path | None = None, admin_password: str = "") -> None:
        self.root = root
        self.admin_password = admin_password  # set: MLflow's basic-auth app, admin "admin" with this password
        self.backend = backend or f"sqlite:///{root / 'server.db'}"
        self.artifacts = artifacts or root / "artifacts"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.uri}/health", timeout=2).ok
        except requests.RequestException:
            return False

    def start(self, timeout: float = 120) -> MlflowServer:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        log = self.root / f"mlflow-server-{self.port}.log"
        cmd = [
            str(BIN / "mlflow"), "server",
            "--backend-store-uri", self.backend, "--artifacts-destination", str(self.artifacts),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        env = child_env()
        if self.admin_password:
            cmd += ["--app-name", "basic-auth"]
            (self.root / "basic_auth.ini").write_text(
                "[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{self.root / 'basic_auth.db'}\n"
                "admin_username = admin\n"
                f"admin_password = {self.admin_password}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            )
            env.update(
                MLFLOW_AUTH_CONFIG_PATH=str(self.root / "basic_auth.ini"),
                MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
            )
        with open(log, "a") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.root, start_new_session=True
            )
        try:
            _wait_for(self.healthy, timeout, "mlflow server", self.proc, log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and everything it started (its workers and job runners); the port is free after."""
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
        _wait_for(lambda: not _listening(self.port), 10, "the port to be free")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def mlflow_server(backend: str, artifacts: Path):
    """``mlflow server`` on 127.0.0.1 with ``backend`` as its store, serving artifacts from ``artifacts``.

    Yields its URI.
    """
    server = MlflowServer(artifacts.parent, backend=backend, artifacts=artifacts).start()
    try:
        yield server.uri
    finally:
        server.stop()


def run_entry(
    project: Path, entry_point: str, params: dict[str, str], *, env: dict[str, str] | None = None, timeout: int = 600
):
    """``python entrypoints/ENTRY.py --k v ...`` in ``project`` (the command without `mlflow run`)."""
    cmd = [sys.executable, f"entrypoints/{entry_point}.py"]
    for key, value in params.items():
        cmd += [f"--{key}", value]
    return subprocess.run(
        cmd, cwd=project, env=child_env(**(env or {})), capture_output=True, text=True, timeout=timeout
    )


#: a recognisable secret: tests check that it never reaches MLflow or a log line
SECRET = "s3cr3t-never-logged"


@contextmanager
def s3_server(bucket: str = "lake"):
    """A local S3 (moto's server) on a free port with ``bucket``; yields the delta-rs storage options for it."""
    import boto3
    import requests

    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="s3")) / "moto.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(),
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(endpoint, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    try:
        _wait_for(up, 60, "moto S3 server", proc, log)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        yield options
    finally:
        _stop(proc)
        shutil.rmtree(log.parent, ignore_errors=True)
