"""Ray tasks: warming workers, submitting, waiting as results come, and what a failed task raised.

Everything that runs on Ray goes through here: the fleet's models, an ensemble's members and
their logging, a benchmark's Ray mode. Data a wave of tasks shares goes into the object store
once (``ray.put``); each task asks for its own CPUs and GPUs.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ray

#: Ray retries a task whose worker process died; application errors are not retried
MAX_RETRIES = 2
#: at most this many warm-up tasks, however large the cluster
MAX_WARM = 64


def cause_of(exc: BaseException) -> BaseException:
    """What a task itself raised: a RayTaskError wraps it (``.cause``); anything else is itself."""
    return getattr(exc, "cause", None) or exc


def traceback_of(exc: BaseException) -> str:
    """The whole traceback of a failed task: the worker's own (a RayTaskError carries it as text), redacted."""
    from mlfleet.errors import full_traceback
    from mlfleet.redaction import redact

    remote = getattr(exc, "traceback_str", "")
    return redact(remote) if remote else full_traceback(exc)


def warm(cpus: float, *, tracking_uri: str = "", hold_s: float = 0.0, wait: bool = False) -> float:
    """One task per CPU (at most :data:`MAX_WARM`) that imports the training code (and opens the tracking store).

    Ray reuses worker processes, so the tasks that follow start on workers that have done
    the seconds of imports (scikit-learn, XGBoost, MLflow, skops) and opened the
    store. ``hold_s`` keeps each task on its worker long enough that every one lands on a
    worker of its own; ``wait`` waits for them (otherwise their work overlaps the driver's).
    A warm-up that fails costs nothing: the first real task on that worker does the imports.
    Returns the seconds spent waiting (0 without ``wait``).
    """
    task = ray.remote(_warm).options(num_cpus=1, max_retries=0)
    t0 = time.perf_counter()
    refs = [task.remote(tracking_uri, hold_s) for _ in range(max(1, min(int(cpus), MAX_WARM)))]
    if wait:
        ray.get(refs)
    return time.perf_counter() - t0 if wait else 0.0


def _warm(tracking_uri: str, hold_s: float) -> int:
    warm_imports()
    if tracking_uri:
        from mlfleet.settings import process_setup
        from mlfleet.stores import store

        process_setup()
        store.warm(tracking_uri)
    time.sleep(hold_s)
    return os.getpid()


def warm_imports() -> None:
    """Import what fitting a model of any CPU family needs (also used by non-Ray worker pools)."""
    import sklearn.ensemble  # noqa: F401
    import xgboost  # noqa: F401

    import mlfleet.training.tuning  # noqa: F401
    import mlfleet.zoo  # noqa: F401


def submit(
    fn: Callable,
    *args: Any,
    cpus: float = 1,
    gpus: float = 0.0,
    name: str = "",
    spread: bool = False,
    retries: int = MAX_RETRIES,
    returns: int = 1,
):
    """``fn(*args)`` as a Ray task asking for ``cpus``/``gpus``; returns its object reference.

    A task whose worker dies is retried ``retries`` times by Ray; one that raises is not.
    ``spread`` places tasks over a cluster's nodes instead of filling the first. ``returns``
    above 1: ``fn`` returns that many values, each its own reference (a list of them), so the
    driver can fetch a small one and leave a big one in the object store for other tasks.
    """
    options: dict[str, Any] = {
        "num_cpus": cpus,
        "num_gpus": gpus,
        "max_retries": retries,
        "retry_exceptions": False,
    }
    if returns != 1:
        options["num_returns"] = returns
    if name:
        options["name"] = name
    if spread:
        options["scheduling_strategy"] = "SPREAD"
    return ray.remote(fn).options(**options).remote(*args)


def worker_died(exc: BaseException) -> bool:
    """Whether a task failed because its worker or node died (what Ray's own retries cover), not by raising."""
    from ray import exceptions

    died = (
        exceptions.WorkerCrashedError,
        exceptions.NodeDiedError,
        exceptions.LocalRayletDiedError,
        exceptions.OutOfMemoryError,
    )
    return isinstance(exc, died)


@dataclass(frozen=True)
class Done:
    """A finished task: the item it was for, and its value or what it raised (unwrapped, with its traceback)."""

    item: Any
    value: Any = None
    error: BaseException | None = None
    detail: str = ""

    @classmethod
    def failed(cls, item: Any, exc: BaseException) -> Done:
        return cls(item, error=cause_of(exc), detail=traceback_of(exc))


def as_completed(pending: dict, *, poll_s: float = 0.5, on_tick: Callable[[], None] = lambda: None) -> Iterator[Done]:
    """Yield a :class:`Done` per reference of ``pending`` (``{ref: item}``) as each finishes.

    ``pending`` is consumed: each reference leaves it as its task finishes, and a task the
    caller adds to it meanwhile (a retry) is waited for too. ``on_tick`` is called about once
    a second while waiting (a progress line's timer).
    """
    last_tick = 0.0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=poll_s)
        for ref in ready:
            item = pending.pop(ref)
            try:
                yield Done(item, ray.get(ref))
            except Exception as exc:  # the task raised, or its worker died for good
                yield Done.failed(item, exc)
        if time.monotonic() - last_tick > 1.0:
            last_tick = time.monotonic()
            on_tick()


def gather(refs: list) -> list[Done]:
    """Wait for every reference; a :class:`Done` per reference, in order (the item is the reference)."""
    out = []
    for ref in refs:
        try:
            out.append(Done(ref, ray.get(ref)))
        except Exception as exc:
            out.append(Done.failed(ref, exc))
    return out


def map_tasks(
    fn: Callable,
    items: list,
    *,
    shared: object,
    cpus: Callable[[object], float] = lambda item: 1,
    cost: Callable[[object], float] = lambda item: 0.0,
) -> list:
    """``[fn(item, shared) for item in items]`` as Ray tasks, longest ``cost`` first.

    ``shared`` goes to the object store once; each task asks for ``cpus(item)`` CPUs.
    Returns the results in the order of ``items``; a task's exception propagates.
    """
    shared_ref = ray.put(shared)
    order = sorted(range(len(items)), key=lambda i: -cost(items[i]))
    refs = {i: submit(fn, items[i], shared_ref, cpus=cpus(items[i])) for i in order}
    return [ray.get(refs[i]) for i in range(len(items))]


#: a task whose inputs hold more cells than this gives its freed heap back when it ends
BIG_INPUT_CELLS = 10_000_000


def give_back_memory(cells: int) -> None:
    """Once a process is done with ``cells`` input cells: return the freed heap to the system, when they are many.

    glibc and Arrow's memory pool keep what a process freed for reuse, and Ray reuses a worker
    for the next task: an idle worker would go on holding what its last model freed (figures in
    docs/performance.md#a-big-table). This hands the free pages back; it is skipped for small
    inputs, where there is little to give and a fleet of thousands would pay for every call.
    """
    if cells < BIG_INPUT_CELLS:
        return
    import ctypes
    import gc

    import pyarrow

    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def node_name() -> str:
    """``host:node id`` of the node this task runs on (the row's and run's ``node``)."""
    import socket

    return f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:8]}"


class BoardState:
    """Which tasks have started, when, and the run each created: the state of the :data:`Board` actor.

    Tasks report in without waiting for an answer: a task blocked in ``ray.get`` gives its
    CPUs back to Ray, which starts a queued task on them, and the node ends up running more
    models than it has cores. The driver reads the board through a :class:`BoardView`.
    """

    def __init__(self, answer_delay_s: float = 0.0) -> None:
        self._runs: dict[int, str] = {}
        self._since: dict[int, float] = {}  # when the last try started, by this actor's clock
        self._delay_s = answer_delay_s  # what a busy cluster's board costs every answer (tests make one)

    def started(self, key: int) -> None:
        self._since[key] = time.monotonic()

    def forget(self, key: int) -> None:
        """A try of ``key`` is over (the driver retries it): its start no longer counts."""
        self._since.pop(key, None)

    def ages(self) -> dict[int, float]:
        """Seconds since each task's last try started, by one clock (no skew between nodes)."""
        time.sleep(self._delay_s)
        now = time.monotonic()
        return {key: now - since for key, since in self._since.items()}

    def run(self, key: int, run_id: str) -> None:
        self._runs[key] = run_id

    def last(self, key: int) -> str:
        time.sleep(self._delay_s)
        return self._runs.get(key, "")


#: the board as a Ray actor
Board = ray.remote(BoardState)


def open_board(answer_delay_s: float = 0.0):
    """A :data:`Board` actor that holds no CPU (``answer_delay_s``: see :class:`BoardState`)."""
    return Board.options(num_cpus=0).remote(answer_delay_s)


class BoardView:
    """The driver's view of the board: what it last heard, so a slow board delays news but never loses it.

    :meth:`poll` never waits: it collects the answer to the last question when there is one
    and asks again. What has been heard stays known (a task seen starting stays started),
    so the time limits apply whatever the actor's latency; :meth:`surely_started` waits for
    a fresh answer when it decides a model's record.
    """

    #: seconds :meth:`surely_started` and :meth:`last_run` wait for the board
    ANSWER_S = 30.0

    def __init__(self, board) -> None:
        self.board = board
        self._started_at: dict[int, float] = {}  # the driver's monotonic clock
        self._asked = None
        self._asked_at = 0.0
        self._known_at = -math.inf  # when the question behind the last answer taken was asked
        self._forgotten: dict[int, float] = {}  # when a key's earlier try was forgotten (monotonic)

    def poll(self) -> None:
        """Take in the board's last answer, if it came, and ask again (never blocks)."""
        if self._asked is not None:
            ready, _ = ray.wait([self._asked], timeout=0)
            if not ready:
                return
            with contextlib.suppress(Exception):  # the actor died: what was heard stays
                self._take(ray.get(self._asked), self._asked_at)
        self._asked, self._asked_at = self.board.ages.remote(), time.monotonic()

    def _take(self, ages: dict[int, float], asked_at: float) -> None:
        now = time.monotonic()
        # an answer asked before a key was forgotten may still carry its earlier try's start
        fresh = {key: age for key, age in ages.items() if self._forgotten.get(key, -math.inf) < asked_at}
        self._started_at.update({key: now - age for key, age in fresh.items()})
        self._known_at = max(self._known_at, asked_at)

    def forget(self, key: int) -> None:
        """``key`` is tried again: its new try starts the clock anew."""
        self._forgotten[key] = time.monotonic()
        self._started_at.pop(key, None)
        self.board.forget.remote(key)

    def started(self) -> set[int]:
        """The tasks heard to have started."""
        return set(self._started_at)

    def overdue(self, limit_s: float) -> set[int]:
        """The tasks heard to have run for more than ``limit_s`` seconds (finished ones included)."""
        now = time.monotonic()
        return {key for key, at in self._started_at.items() if now - at > limit_s}

    def surely_started(self, key: int, stopped_at: float) -> bool:
        """Whether ``key``, stopped at ``stopped_at`` (monotonic), had started; True when the board does not answer.

        Deciding "never started" leaves a model without a run or row (resume trains it), so
        that answer needs the board's word asked after the stop: without it the model is
        taken as started and gets its FAILED record. One fresh answer serves every model
        stopped before it was asked.
        """
        if key in self._started_at:
            return True
        if self._known_at <= stopped_at:
            asked_at = time.monotonic()
            try:
                self._take(ray.get(self.board.ages.remote(), timeout=self.ANSWER_S), asked_at)
            except Exception:
                return True
        return key in self._started_at

    def last_run(self, key: int) -> str:
        """The run the last try of task ``key`` created ('' when none, or the board does not answer)."""
        try:
            return ray.get(self.board.last.remote(key), timeout=self.ANSWER_S)
        except Exception:
            return ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            ray.kill(self.board)


def cancel(ref) -> None:
    """Stop a task: a queued one never starts, a running one's worker is killed (Ray does not retry it)."""
    with contextlib.suppress(Exception):  # it finished meanwhile
        ray.cancel(ref, force=True)
