"""The Ray side: joining or starting Ray, resources per node, submitting jobs, progress.

A local Ray starts without its dashboard (about 1 GB less and a second faster); an
``address`` joins a running cluster. Jobs go longest-expected first, each asking for its
family's CPUs/GPUs capped to the largest node, with the data in the object store once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlparse

import ray

from mlfleet.data import Split
from mlfleet.errors import MlfleetError, first_line
from mlfleet.jobs import ModelJob, longest_first
from mlfleet.train import Outcome, SweepSpec, failed_row, train_one

#: seconds to wait for a TCP answer from a Ray address before calling it unreachable
CONNECT_TIMEOUT_S = 5.0
#: Ray retries a task whose worker process died; application errors are not retried
MAX_RETRIES = 2
#: what the driver's environment gives the workers of a cluster it joins (Ray's runtime_env;
#: a local Ray's workers inherit it anyway): storage options and MLflow's server credentials
FORWARDED_ENV = (
    "MLFLEET_STORAGE_OPTIONS",
    "MLFLEET_SHARED_STORAGE",
    "MLFLEET_FAIL_MODEL_IDS",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
)


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
    if address in ("", "auto") and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
    if not ray.is_initialized():
        if address and address != "auto":
            _probe(address)
        forwarded = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        try:
            ray.init(
                address=address or None,
                runtime_env={"env_vars": forwarded} if address and forwarded else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if _auth_refused(exc):
                raise MlfleetError(
                    f"Ray at address={address!r} wants an authentication token; set RAY_AUTH_MODE=token and the "
                    "cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
                ) from None
            raise MlfleetError(
                f"cannot join Ray at address={address!r} ({_reason(exc)}); start one with `ray start --head` or leave address empty for a local Ray"
            ) from None
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


def warm_workers(cluster: Cluster, tracking_uri: str) -> None:
    """Have Ray's workers import the training and logging code now, while the driver opens the sweep.

    One short task per CPU (at most 64), not waited for: Ray reuses worker processes, so
    the fleet's tasks then start on workers that have done the seconds of imports (skops
    imports torch) and opened the tracking store. A warm-up that fails costs nothing; the
    first task of that worker does the work instead.
    """
    warm = ray.remote(_warm).options(num_cpus=1, max_retries=0)
    for _ in range(max(1, min(int(cluster.total_cpus), 64))):
        warm.remote(tracking_uri)


def _warm(tracking_uri: str) -> None:
    from mlfleet import tracking

    for key in tracking.RUN_ENV:  # as train_one does: never touch the run `mlflow run` created
        os.environ.pop(key, None)
    tracking.warm_process(tracking_uri)


def gpus_per_model(device: str, requested: float, cluster: Cluster) -> float:
    """What each GPU-family model asks Ray for, given ``device`` (auto, cuda, cpu).

    ``cpu`` gives 0; ``auto`` gives 0 when the cluster has no GPU; ``cuda`` without a GPU
    and a request above the largest node's GPUs raise MlfleetError.
    """
    if device not in ("auto", "cuda", "cpu"):
        raise MlfleetError(f"device must be auto, cuda or cpu, but got device={device!r}")
    if requested <= 0:
        raise MlfleetError(f"gpus_per_model must be above 0 (fractions such as 0.25 share a GPU), but got gpus_per_model={requested:g}")
    if device == "cpu":
        return 0.0
    if cluster.max_gpus == 0:
        if device == "cuda":
            raise MlfleetError("device=cuda but the Ray cluster has no GPU; use device=auto (falls back to CPU) or device=cpu")
        return 0.0
    if requested > cluster.max_gpus:
        raise MlfleetError(
            f"gpus_per_model must be at most the GPUs of the largest node ({cluster.max_gpus:g}), but got gpus_per_model={requested:g}"
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
        raise MlfleetError(f"address={address!r} is not a Ray address; use empty (local Ray), auto, host:port or ray://host:port")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise MlfleetError(
            f"Ray address {address} does not answer ({first_line(exc)}); start the cluster (`ray start --head`) or leave address empty for a local Ray"
        ) from None


def run_jobs(
    jobs: tuple[ModelJob, ...],
    split: Split,
    spec: SweepSpec,
    *,
    on_update: Callable[[int, int, int, Outcome | None], None] = lambda done, failed, running, outcome: None,
    poll_s: float = 0.5,
) -> list[Outcome]:
    """Run every job as a Ray task and return their outcomes in model-id order.

    ``on_update(done, failed, running, outcome)`` is called as results arrive (and on a
    timer, with ``outcome=None``). A task that dies (its worker crashed after Ray's
    retries) becomes a FAILED row written here; the other models go on.
    """
    split_ref, spec_ref = ray.put(split), ray.put(spec)
    board = _Board.options(num_cpus=0).remote()
    remote = ray.remote(_train_task)
    pending = {}
    for job in longest_first(jobs):
        ref = remote.options(
            num_cpus=job.cpus,
            num_gpus=job.gpus,
            max_retries=MAX_RETRIES,
            retry_exceptions=False,
            scheduling_strategy="SPREAD",  # over a cluster's nodes, not packed onto the first
            name=job.run_name,
        ).remote(job, split_ref, spec_ref, board)
        pending[ref] = job
    outcomes: list[Outcome] = []
    failed = 0
    finished_ids: set[int] = set()
    last_poll = 0.0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=poll_s)
        for ref in ready:
            job = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as exc:  # the task died: worker crash, OOM kill, an error outside train_one
                outcome = _died(job, split, spec, exc, board)
            else:
                if spec.rows_by_driver:  # a Spark table: the driver holds the only SparkSession
                    outcome = _write_here(outcome, job, split, spec, board)
            outcomes.append(outcome)
            finished_ids.add(job.model_id)
            failed += not outcome.row.ok
            on_update(len(outcomes), failed, _running(board, finished_ids), outcome)
        if time.monotonic() - last_poll > 1.0:
            last_poll = time.monotonic()
            on_update(len(outcomes), failed, _running(board, finished_ids), None)
    ray.kill(board)
    return sorted(outcomes, key=lambda o: o.row.model_id)


def map_tasks(fn: Callable, items: list, *, shared: object, cpus: Callable[[object], float] = lambda item: 1, cost: Callable[[object], float] = lambda item: 0.0) -> list:
    """``[fn(item, shared) for item in items]`` as Ray tasks, longest ``cost`` first.

    ``shared`` goes to the object store once; each task asks for ``cpus(item)`` CPUs.
    Returns the results in the order of ``items``; a task's exception propagates.
    """
    shared_ref = ray.put(shared)
    remote = ray.remote(fn)
    order = sorted(range(len(items)), key=lambda i: -cost(items[i]))
    refs = {i: remote.options(num_cpus=cpus(items[i]), max_retries=MAX_RETRIES).remote(items[i], shared_ref) for i in order}
    return [ray.get(refs[i]) for i in range(len(items))]


def _train_task(job: ModelJob, split: Split, spec: SweepSpec, board) -> Outcome:
    tries, previous_run = ray.get(board.started.remote(job.model_id))
    node = f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:8]}"
    return train_one(
        job, split, spec, node=node, previous_run=previous_run, tries=tries, on_run=lambda run_id: ray.get(board.run.remote(job.model_id, run_id))
    )


def _died(job: ModelJob, split: Split, spec: SweepSpec, exc: BaseException, board) -> Outcome:
    """The FAILED row (and run) of a model whose task died for good (Ray's retries are spent), or
    whose row the driver could not write."""
    from mlfleet import results, tracking

    cause = getattr(exc, "cause", None) or exc  # a RayTaskError wraps what the task raised
    error = f"{type(cause).__name__}: {first_line(cause)}"
    try:
        _, run_id = ray.get(board.last.remote(job.model_id), timeout=10)
    except Exception:
        run_id = ""
    if run_id:
        try:
            tracking.fail_child(spec.tracking, run_id, error)
        except Exception as store_exc:
            error = f"{error}; the run could not be marked FAILED ({first_line(store_exc)})"
    row = failed_row(job, spec, split.task, error, run_id=run_id)
    results.append_row(spec.results, row, attempt=job.attempt)
    now = time.time()
    return Outcome(row, 0.0, 0.0, now, now)


def _write_here(outcome: Outcome, job: ModelJob, split: Split, spec: SweepSpec, board) -> Outcome:
    """Write the row a task returned; a write that fails fails the model, as it does in a worker."""
    from mlfleet import results

    start = time.perf_counter()
    try:
        results.append_row(spec.results, outcome.row, attempt=job.attempt)
    except Exception as exc:
        return _died(job, split, spec, exc, board)
    return replace(outcome, delta_s=outcome.delta_s + time.perf_counter() - start)


def _running(board, finished: set[int]) -> int:
    try:
        started = ray.get(board.snapshot.remote(), timeout=2)
    except Exception:
        return 0
    return len(started - finished)



@ray.remote
class _Board:
    """Which models have started, how often, and their runs.

    Tasks report in; the driver reads the set for its progress line. A task Ray retried
    after its worker died learns its try number and the run the earlier try created, so
    the model keeps one run.
    """

    def __init__(self) -> None:
        self._tries: dict[int, int] = {}
        self._runs: dict[int, str] = {}

    def started(self, model_id: int) -> tuple[int, str]:
        self._tries[model_id] = self._tries.get(model_id, 0) + 1
        return self._tries[model_id], self._runs.get(model_id, "")

    def run(self, model_id: int, run_id: str) -> None:
        self._runs[model_id] = run_id

    def last(self, model_id: int) -> tuple[int, str]:
        return self._tries.get(model_id, 0), self._runs.get(model_id, "")

    def snapshot(self) -> set[int]:
        return set(self._tries)
