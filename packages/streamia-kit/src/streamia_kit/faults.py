"""Which failures are transient (wait for the dependency and try again) and which are final.

The resilience rule (ARCHITECTURE.md): a database, Redis, broker, SMTP or HTTP dependency
that is unreachable or timing out is never a reason to dead-letter or drop work.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import aio_pika.exceptions
import aiohttp
import asyncpg.exceptions
import redis.exceptions
import sqlalchemy.exc


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
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    redis.exceptions.ConnectionError,  # BusyLoadingError included
    redis.exceptions.TimeoutError,
    aiohttp.ClientConnectionError,  # refused, reset, disconnected, timed out
    aio_pika.exceptions.AMQPConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free in time
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
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in _TRANSIENT_HTTP_STATUSES
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_TRANSIENT_SQLSTATES)
    sqlite_code = getattr(exc, "sqlite_errorname", None)
    if isinstance(sqlite_code, str):
        return sqlite_code.startswith(_TRANSIENT_SQLITE)
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
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
        if isinstance(current, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            undecided_wrapper = True
    # A driver's OperationalError/InterfaceError without a code is about the connection.
    return undecided_wrapper


def transient_delay(failures: int, first: float) -> float:
    """Wait before try number `failures + 1`: exponential from `first`, capped, jittered."""
    ceiling = min(first * 2 ** (failures - 1), MAX_DELAY)
    return random.uniform(ceiling / 2, ceiling)
