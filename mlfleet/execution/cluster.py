"""Joining or starting Ray, and what the driver learns of the cluster's nodes.

A local Ray starts without its dashboard (about 1 GB less and a second faster); an
``address`` joins a running cluster, within seconds or with one line saying why not.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

import ray

from mlfleet import settings
from mlfleet.errors import MlfleetError, first_line

log = logging.getLogger(__name__)

#: seconds to wait for a TCP answer from a Ray address before calling it unreachable
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Cluster:
    """What the driver learned of the Ray cluster it is connected to."""

    address: str
    nodes: int
    total_cpus: float
    max_cpus: int
    max_gpus: float
    started_here: bool


def connect(address: str = "") -> Cluster:
    """Start a local Ray (empty ``address``) or join one (``auto``, ``host:port``, ``ray://host:port``).

    An empty or ``auto`` address takes ``RAY_ADDRESS`` from the environment when it is set
    (as Ray itself does). Reuses a Ray already initialised in this process. Raises
    MlfleetError when the address does not answer, within seconds rather than Ray's own
    minute of retries.
    """
    started_here = False
    if address in ("", "auto") and settings.get("RAY_ADDRESS"):
        address = settings.get("RAY_ADDRESS")
    if not ray.is_initialized():
        explicit = address and address != "auto"
        if explicit:
            _probe(address)
        if explicit and settings.get(AUTH_MODE_ENV) != "token" and _refused(address):
            _join_with_token(address)  # told by one call, where Ray's own join retries for 20 s before it is refused
        else:
            try:
                _init(address)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if not _auth_refused(exc):
                    raise MlfleetError(
                        f"cannot join Ray at address={address!r} ({_reason(exc)}); "
                        "start one with `ray start --head` or leave address empty for a local Ray"
                    ) from None
                _join_with_token(address)
        started_here = True
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = [n["Resources"].get("CPU", 0.0) for n in nodes]
    gpus = [n["Resources"].get("GPU", 0.0) for n in nodes]
    return Cluster(
        address=address or "local",
        nodes=len(nodes),
        total_cpus=sum(cpus),
        max_cpus=int(max(cpus, default=1)),
        max_gpus=max(gpus, default=0.0),
        started_here=started_here,
    )


def _init(address: str) -> None:
    """``ray.init``: an empty address starts a Ray of this process's own (Ray's ``local``), never
    one already running on the machine (a colleague's ``ray start``); any other joins it."""
    # what the driver's environment gives the workers of a cluster it joins (a local Ray's
    # workers inherit it anyway): the variables mlfleet.settings declares forwarded
    forwarded = settings.forwarded()
    if not address and not settings.is_set(AUTH_MODE_ENV):
        # A Ray of this process's own turns token authentication on by default and warns that it
        # did, which the user cannot act on: the same mode, chosen here, starts it quietly.
        settings.ray_token_mode()
    ray.init(
        address=address or "local",
        runtime_env={"env_vars": forwarded} if address and forwarded else None,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=True,
    )


def _join_with_token(address: str) -> None:
    """Join a cluster that asked for a token, with the one this machine holds (as ``ray`` itself would).

    Ray's driver sends a token only in token mode (``RAY_AUTH_MODE=token``); when the mode is
    not set and a token is at hand (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
    ``~/.ray/auth_token``), the driver switches to token mode and joins again, after one call
    that tells a token the head refuses at once. Only without a token does the one-line error
    remain.
    """
    where = token_source()
    mode = settings.get(AUTH_MODE_ENV)
    if mode or not where:  # RAY_AUTH_MODE set otherwise is the user's choice, not overridden
        raise MlfleetError(
            f"Ray at address={address!r} wants an authentication token and "
            + (f"RAY_AUTH_MODE={mode} is set" if mode else "none is here")
            + "; put the cluster's token in ~/.ray/auth_token (or RAY_AUTH_TOKEN, or a file named by "
            "RAY_AUTH_TOKEN_PATH), as `ray get-auth-token` prints it on the head node"
        ) from None
    ray.shutdown()
    settings.ray_token_mode()
    reason = "Unauthenticated: the token is not the cluster's" if _refused(address, with_token=True) else ""
    if not reason:
        try:
            _init(address)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            reason = _reason(exc)
    if reason:
        raise MlfleetError(
            f"Ray at address={address!r} refused the token from {where} ({reason}); "
            "put the cluster's token there, as `ray get-auth-token` prints it on the head node"
        )
    log.info("joined Ray at %s with the token from %s", address, where)


def _refused(address: str, *, with_token: bool = False) -> bool:
    """Whether the Ray cluster at ``address`` (``host:port``, its GCS) refuses a call for want of a token.

    Without ``with_token`` the call carries none; with it, the token this process's token mode
    sends. One call, answered at once: Ray's own join retries for 20 s before it says it was
    refused. Any other answer (none in time, TLS, another Ray) says no, and the join goes on
    as Ray's own, which then says why.
    """
    if "://" in address:  # Ray Client (ray://) is another protocol; its refusal is quick anyway
        return False
    try:
        import grpc
        from ray._private.authentication.grpc_authentication_client_interceptor import (
            _get_authentication_metadata_tuple,
        )
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

        metadata = _get_authentication_metadata_tuple() if with_token else ()
    except Exception:  # another Ray: its own join decides
        return False
    if with_token and not metadata:  # Ray did not find the token: its own join says so
        return False
    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=CONNECT_TIMEOUT_S, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
    return False


AUTH_MODE_ENV = settings.RAY_AUTH_MODE


def token_source() -> str:
    """Where this machine holds a Ray token (the variable or file), or empty."""
    if settings.get("RAY_AUTH_TOKEN").strip():
        return "RAY_AUTH_TOKEN"
    path = settings.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH ({path})" if os.path.isfile(path) else ""
    default = os.path.join(os.path.expanduser("~"), ".ray", "auth_token")
    return "~/.ray/auth_token" if os.path.isfile(default) else ""


def gpus_per_model(device: str, requested: float, cluster: Cluster) -> float:
    """What each GPU-family model asks Ray for, given ``device`` (auto, cuda, cpu).

    ``cpu`` gives 0; ``auto`` gives 0 when the cluster has no GPU; ``cuda`` without a GPU
    and a request above the largest node's GPUs raise MlfleetError.
    """
    if device not in ("auto", "cuda", "cpu"):
        raise MlfleetError(f"device must be auto, cuda or cpu, but got device={device!r}")
    if requested <= 0:
        raise MlfleetError(
            f"gpus_per_model must be above 0 (fractions such as 0.25 share a GPU), but got gpus_per_model={requested:g}"
        )
    if device == "cpu":
        return 0.0
    if cluster.max_gpus == 0:
        if device == "cuda":
            raise MlfleetError(
                "device=cuda but the Ray cluster has no GPU; use device=auto (falls back to CPU) or device=cpu"
            )
        return 0.0
    if requested > cluster.max_gpus:
        raise MlfleetError(
            f"gpus_per_model must be at most the GPUs of the largest node ({cluster.max_gpus:g}), "
            f"but got gpus_per_model={requested:g}"
        )
    return requested


def disconnect(cluster: Cluster) -> None:
    """Shut down a Ray this process started; leave one it joined or found running."""
    if cluster.started_here and ray.is_initialized():
        ray.shutdown()


def _reason(exc: BaseException) -> str:
    """One line of why Ray refused: Ray Client puts it after a heading line ending in ':'."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[-1]}"
    return first_line(exc)


def _auth_refused(exc: BaseException | None) -> bool:
    """Whether Ray refused us for want of a token (Ray joins an explicit address without one)."""
    while exc is not None:
        if type(exc).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _probe(address: str) -> None:
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise MlfleetError(
            f"address={address!r} is not a Ray address; use empty (local Ray), auto, host:port or ray://host:port"
        )
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise MlfleetError(
            f"Ray address {address} does not answer ({first_line(exc)}); "
            "start the cluster (`ray start --head`) or leave address empty for a local Ray"
        ) from None
