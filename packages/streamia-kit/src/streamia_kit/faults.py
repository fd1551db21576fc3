"""Which failures are transient (wait for the dependency and try again) and which are final.

The resilience rule (ARCHITECTURE.md): a database, Redis, broker, SMTP or HTTP dependency
that is unreachable or timing out is never a reason to dead-letter or drop work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, NamedTuple, TypeVar

import structlog
from prometheus_client import Counter, Gauge

log = structlog.get_logger("streamia.faults")

T = TypeVar("T")

BACKGROUND_RESTARTS = Counter(
    "streamia_background_task_restarts_total",
    "Background tasks (workers, loops) started again after they failed or stopped",
    ["service", "task"],
)
BACKGROUND_RUNNING = Gauge(
    "streamia_background_task_running",
    "1 while a supervised background task runs, 0 while it waits to be started again",
    ["service", "task"],
)


class TransientError(Exception):
    """Raised by code that knows its dependency is momentarily unavailable."""


# SQLSTATE codes (or classes, by prefix) that say "not now", never "not ever": connection
# exceptions, insufficient resources, operator intervention (shutdown, cannot connect now,
# statement timeout), serialization failures and deadlocks, lock not available.
_TRANSIENT_SQLSTATES = ("08", "53", "57P", "57014", "40001", "40P01", "55P03")
# SQLite result codes of the same kind (a busy or locked file, an I/O hiccup).
_TRANSIENT_SQLITE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN")
# OSErrors about the file system, not about reaching a dependency.
_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


class _Kinds(NamedTuple):
    transient: tuple[type[BaseException], ...]
    http_status: type[BaseException]  # carries the `status` of an HTTP answer
    dbapi: type[BaseException]  # knows whether its connection was invalidated
    driver_wrappers: tuple[type[BaseException], ...]


@functools.cache
def _kinds() -> _Kinds:
    """The dependencies' exception classes, imported at the first classification rather than
    with this module: the `streamia` command line imports it and starts in well under a
    second without them."""
    import aio_pika.exceptions
    import aiohttp
    import asyncpg.exceptions
    import redis.exceptions
    import sqlalchemy.exc

    return _Kinds(
        transient=(
            TransientError,
            redis.exceptions.ConnectionError,  # BusyLoadingError included
            redis.exceptions.TimeoutError,
            aiohttp.ClientConnectionError,  # refused, reset, disconnected, timed out
            aio_pika.exceptions.AMQPConnectionError,
            aio_pika.exceptions.ChannelInvalidStateError,  # its connection is not open now
            asyncpg.exceptions.ConnectionDoesNotExistError,
            sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
        ),
        http_status=aiohttp.ClientResponseError,
        dbapi=sqlalchemy.exc.DBAPIError,
        driver_wrappers=(sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError),
    )


_TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503, 504})
# The longest wait between tries of a transient failure: work resumes within about this
# long once the dependency is back.
MAX_DELAY = 2.0


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, the errors it wraps (`orig`, `__cause__`, `__context__`), outermost first."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            getattr(current, "orig", None),
            current.__cause__,
            None if current.__suppress_context__ else current.__context__,
        ):
            if isinstance(inner, BaseException):
                todo.append(inner)


def _is_transient_one(exc: BaseException) -> bool | None:
    """True/False when this error alone decides; None to look at what it wraps."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_transient(inner) for inner in exc.exceptions)
    kinds = _kinds()
    if isinstance(exc, kinds.transient):
        return True
    if isinstance(exc, kinds.http_status):
        return getattr(exc, "status", None) in _TRANSIENT_HTTP_STATUSES
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_TRANSIENT_SQLSTATES)
    sqlite_code = getattr(exc, "sqlite_errorname", None)
    if isinstance(sqlite_code, str):
        return sqlite_code.startswith(_TRANSIENT_SQLITE)
    if isinstance(exc, kinds.dbapi) and getattr(exc, "connection_invalidated", False):
        return True
    if isinstance(exc, OSError):  # ConnectionError and TimeoutError included
        return not isinstance(exc, _FILE_ERRORS)
    return None


def is_transient(exc: BaseException) -> bool:
    """Could the same work succeed later, once a dependency is reachable again?

    Connection refused/reset/timeouts from the database (SQLAlchemy, asyncpg, aiosqlite),
    Redis, the broker, SMTP and HTTP dependencies are; anything else (a bug, an invalid
    payload, a constraint, a business rule) is not.
    """
    undecided_wrapper = False
    for current in _chain(exc):
        verdict = _is_transient_one(current)
        if verdict is not None:
            return verdict
        if isinstance(current, _kinds().driver_wrappers):
            undecided_wrapper = True
    # A driver's OperationalError/InterfaceError without a code is about the connection.
    return undecided_wrapper


def being_cancelled() -> bool:
    """Is the current task being cancelled (a cancel requested and not yet handled)? True even
    when the CancelledError was swallowed on the way (redis-py can, inside its timeouts:
    redis-py #2028, #2551), and False when a CancelledError that belongs to another task (a
    shared load's) reached this one."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# The name of `cancellable`'s tasks (tests look for any left running).
CANCELLABLE_TASK = "streamia-cancellable-call"


async def cancellable(call: Coroutine[Any, Any, T]) -> T:
    """`await call` in a task of its own, so that cancelling the caller ends the wait at once.

    For Redis calls on a request's path. redis-py can swallow a cancellation that lands in
    its own timeout handling (redis-py #2028, #2551; on Python 3.11 the `asyncio.wait_for`
    around each command's write): awaited directly, a call cancelled at that moment ran on
    for its whole round trip and returned as if nothing happened (with Redis black-holed: a
    request past its deadline went on for the 2 s socket timeout and then down the degraded
    path). The call's own task is cancelled with the caller; should it swallow that too, it
    ends with its socket timeout, and its outcome is dropped."""
    task = asyncio.get_running_loop().create_task(call, name=CANCELLABLE_TASK)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        task.add_done_callback(_drop_outcome)
        raise


def _drop_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: nobody waits for it any more


def transient_delay(failures: int, first: float) -> float:
    """Wait before try number `failures + 1`: exponential from `first`, capped, jittered."""
    ceiling = min(first * 2 ** (failures - 1), MAX_DELAY)
    return random.uniform(ceiling / 2, ceiling)


# How long `Supervisor.stop` waits for a cancelled task to end.
STOP_SECONDS = 5.0
# A task that ran this long before failing was healthy: its next failure starts the backoff
# from the beginning again.
_HEALTHY_RUN_SECONDS = 30.0


class Supervisor:
    """Runs a background task (a worker's main loop) for as long as the service runs: when it
    fails or returns, logs a warning, counts a restart and starts it again after a capped,
    jittered backoff (`transient_delay`; `wake()` cuts the wait short). `alive` is false while
    it waits to restart, for `/ready`; `streamia_background_task_running` says the same to
    Prometheus. A task no one watches would die for good at the first dependency blip.

    The task itself waits out a dependency it knows to be away (a transient failure), so it
    resumes as soon as the dependency is back; whatever else escapes it lands here."""

    def __init__(
        self,
        name: str,
        run: Callable[[], Awaitable[object]],
        *,
        service: str,
        first_delay: float = 0.1,
    ) -> None:
        self.name = name
        self.service = service  # whose task: the `service` label of its series
        self._run = run
        self.first_delay = first_delay
        self.running = False
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._gauge = BACKGROUND_RUNNING.labels(service, name)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=self.name)

    @property
    def alive(self) -> bool:
        """Started, not stopped, and not waiting to restart."""
        return self.running and self._task is not None and not self._task.done()

    async def ping(self) -> bool:
        """`alive`, as a `/ready` check."""
        return self.alive

    def wake(self) -> None:
        """Restart now if waiting to (the dependency it failed on is known to be back)."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Cancel the task and wait for it, at most `STOP_SECONDS`: a task stuck in a cleanup
        that never ends (a broker channel closing under a closing connection) is left behind
        with a warning rather than holding the service's shutdown for ever."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_SECONDS)
            if done:
                with contextlib.suppress(BaseException):
                    task.result()
            else:
                log.warning("background_task_stop_timeout", task=self.name, service=self.service)
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self._gauge.set(1 if running else 0)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            self._set_running(True)
            try:
                await self._run()
                error = "stopped"
            except asyncio.CancelledError:
                self._set_running(False)
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            self._set_running(False)
            failures = 1 if loop.time() - started > _HEALTHY_RUN_SECONDS else failures + 1
            delay = transient_delay(failures, self.first_delay)
            BACKGROUND_RESTARTS.labels(self.service, self.name).inc()
            log.warning(
                "background_task_restarting",
                task=self.name,
                service=self.service,
                failures=failures,
                retry_in=round(delay, 2),
                error=error,
            )
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)
