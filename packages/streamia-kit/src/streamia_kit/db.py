"""SQLAlchemy 2 async from one URL per service: PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import aiosqlite
import structlog
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Connection, CursorResult, Result, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from streamia_kit.files import private_file

log = structlog.get_logger("streamia.db")

BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
ON_COMMIT_INFO_KEY = "streamia_on_commit"
ON_ROLLBACK_INFO_KEY = "streamia_on_rollback"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return uuid.uuid4().hex


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE, DELETE or INSERT .. ON CONFLICT touched (its result is a cursor's)."""
    return cast(CursorResult[Any], result).rowcount


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    """ISO 8601 UTC with a `Z`, as the monolith's clients expect."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base with constraint naming; each service keeps its own subclass' tables."""

    metadata = MetaData(naming_convention=NAMING)


class Database:
    """An engine and session factory for one service's own database.

    SQLite (embedded mode) has one writer per database: `transaction()` runs on a single
    write connection that starts with `BEGIN IMMEDIATE`, so a unit of work holds the write
    lock from its first statement, reads included, and a read-modify-write cannot lose an
    update; units of work queue for that connection in arrival order (the pool's queue, in
    this event loop) instead of sleeping in SQLite's busy handler. The connection is taken
    at the first statement, not when the unit of work opens: work before it (a password
    hash) does not hold the lock, work between statements does, so keep it short. Reads
    (`sessions()`) run on their own read-only connections next to the writer (WAL).
    PostgreSQL: one pooled engine for both; row locks (`with_for_update`) order writers.
    """

    def __init__(
        self,
        url: str,
        echo: bool = False,
        pool_size: int = 20,
        statement_timeout: float | None = 30.0,
        pool_timeout: float = 30.0,
    ) -> None:
        """`statement_timeout` bounds each statement (SQLite: the wait for a lock), None: no
        bound; `pool_timeout` bounds the wait for a pooled or a new connection."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            # Waiting for the writer is SQLite's wait for its lock: the statement's bound.
            busy = statement_timeout if statement_timeout is not None else 30.0
            path = make_url(url).database or ""
            self.engine: AsyncEngine = create_async_engine(
                url,
                echo=echo,
                async_creator=lambda: _WriterConnection.open(path, busy),
                pool_size=1,
                max_overflow=0,
                pool_timeout=busy,
            )
            # The writer never sleeps in SQLite's busy handler (it runs in the event loop);
            # `_WriterConnection` waits for another process's lock on its own thread.
            event.listen(
                self.engine.sync_engine,
                "connect",
                lambda conn, _: _sqlite_pragmas(conn, "busy_timeout=0"),
            )
            event.listen(self.engine.sync_engine, "begin", _begin_immediate)
            # Readers run inline too (`_ReaderConnection`). A write through a read session
            # fails at once (query_only) instead of racing the writer for the lock.
            self.read_engine = create_async_engine(
                url,
                echo=echo,
                async_creator=lambda: _ReaderConnection.open(path, busy),
                # No overflow: a connection opened past the pool was closed again after its
                # one use (a thread started and stopped per request under concurrency).
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=pool_timeout,
            )
            event.listen(
                self.read_engine.sync_engine,
                "connect",
                lambda conn, _: _sqlite_pragmas(conn, "busy_timeout=0", "query_only=ON"),
            )
        else:
            connect_args: dict[str, Any] = {"timeout": pool_timeout}
            if statement_timeout is not None:
                # The server cancels a slow statement; the client stops waiting a little
                # later for one that never reaches the server (a hung connection).
                connect_args["server_settings"] = {
                    "statement_timeout": str(int(statement_timeout * 1000))
                }
                connect_args["command_timeout"] = statement_timeout + 0.5
            self.engine = create_async_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=pool_timeout,
                connect_args=connect_args,
            )
            event.listen(self.engine.sync_engine.pool, "checkout", _check_on_checkout)
            event.listen(self.engine.sync_engine.pool, "checkin", _stamp_on_checkin)
            self.read_engine = self.engine
        self.sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Called after a commit that wrote outbox rows (the relay's wake-up).
        self.after_outbox_commit: list[Callable[[], None]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The unit of work: commits on success, rolls back on any error (the commit's too)."""
        async with self._write_sessions() as session:
            try:
                async with session.begin():
                    yield session
            except BaseException:
                undo = session.info.pop(ON_ROLLBACK_INFO_KEY, None)
                if undo:
                    await run_after_commit(undo)
                raise
            if session.info.pop("streamia_outbox_dirty", False):
                for hook in self.after_outbox_commit:
                    hook()
            callbacks = session.info.pop(ON_COMMIT_INFO_KEY, None)
            if callbacks:
                await run_after_commit(callbacks)

    async def ping(self) -> bool:
        try:
            async with self.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def on_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once the transaction of `session` (a `Database.transaction`) commits.

    Awaited by `transaction()` before it returns, so the caller (and a consumer's ack) sees
    it done; never run when the transaction rolls back. A failing callback is logged, not
    raised: the data it follows is committed already.
    """
    session.info.setdefault(ON_COMMIT_INFO_KEY, []).append(callback)


def on_rollback(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` if the transaction of `session` rolls back, its commit included: undo
    what happened outside the database (a file stored for a row that was never written)."""
    session.info.setdefault(ON_ROLLBACK_INFO_KEY, []).append(callback)


def discard_on_commit(session: AsyncSession) -> None:
    """Forget the callbacks registered so far (their transaction was rolled back)."""
    session.info.pop(ON_COMMIT_INFO_KEY, None)


async def run_after_commit(callbacks: list[Callable[[], Awaitable[None]]]) -> None:
    """Await `on_commit` (or `on_rollback`) callbacks in order; one failing stops no other."""
    for callback in callbacks:
        try:
            await callback()
        except Exception as exc:
            log.warning("after_commit_failed", error=f"{type(exc).__name__}: {exc}")


def _sqlite_pragmas(dbapi_conn: Any, *more: str) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", *more):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class _WriterConnection(aiosqlite.Connection):
    """The writer's connection, run in the event loop's thread.

    There a statement takes microseconds (WAL with synchronous=NORMAL: a commit does not
    wait for the disk), while each hop to aiosqlite's thread and back waits for that thread
    to be scheduled, then for a turn of a busy event loop: with ~10 statements a unit of
    work, 50 writers through one process held each writer ~40 ms per unit of work (1 ms when
    idle), which capped every database at a few dozen writes a second. Inline, the writer is
    held only while its unit of work computes. The one statement that can wait, BEGIN
    IMMEDIATE while another process (a CLI command) holds the lock, waits on the thread.
    """

    busy_ms = 0

    @classmethod
    async def open(cls, path: str, busy: float) -> aiosqlite.Connection:
        connect = partial(
            sqlite3.connect, path, timeout=busy, isolation_level=None, check_same_thread=False
        )
        conn = cls(connect, iter_chunk_size=64)
        conn.busy_ms = int(busy * 1000)
        return await conn

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:  # closed: aiosqlite raises
            return await super()._execute(fn, *args, **kwargs)
        if args and args[0] == BEGIN_IMMEDIATE:
            if self._connection.in_transaction:  # left open by a cancelled unit of work
                self._connection.rollback()
            return await self._inline_or_waiting(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def _inline_or_waiting(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn` here at once; if the database is busy, on the connection's thread, waiting."""
        try:
            return fn(*args, **kwargs)  # busy_timeout is 0: never sleeps here
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
        return await aiosqlite.Connection._execute(self, self._waiting, fn, *args, **kwargs)

    def _waiting(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn` with SQLite's busy handler on (in the connection's thread)."""
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={self.busy_ms}")
        try:
            return fn(*args, **kwargs)
        finally:
            conn.execute("PRAGMA busy_timeout=0")


class _ReaderConnection(_WriterConnection):
    """A read connection, run in the event loop's thread like the writer: in WAL a read takes
    no lock a writer holds, so a statement runs at once, where the hops to aiosqlite's thread
    and back cost more than most reads. With the pool no longer closing its overflow after
    each use, `GET /api/users/me` on one users process went 470-760 -> 1,030-1,190 req/s and
    1.3-2.3 -> 0.84-0.90 ms of CPU a request (wrk -c32, alternated). A long read holds the
    loop while it runs (on the thread, SQLite's own work ran beside the loop's Python): embedded
    mode's reads are pages and lookups. The rare read that finds the database busy (another
    process's exclusive lock) waits on the thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:  # closed: aiosqlite raises
            return await aiosqlite.Connection._execute(self, fn, *args, **kwargs)
        return await self._inline_or_waiting(fn, *args, **kwargs)


# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0
_CHECKED_IN_AT = "streamia_checked_in_at"


def _check_on_checkout(dbapi_conn: Any, record: ConnectionPoolEntry, _: Any) -> None:
    """Hand out only live connections, without SQLAlchemy's pre-ping on every checkout.

    `pool_pre_ping` costs three round trips a checkout on asyncpg (BEGIN, `;`, ROLLBACK: its
    ping opens a transaction for pgbouncer's sake), ~17 % of a short request's CPU. Instead:
    a connection the server closed (a restart, `pg_terminate_backend`, a proxy that dropped
    it) is known closed to asyncpg as soon as the event loop has read the end of its socket,
    which costs nothing to ask; only one idle long enough for a silent drop on the way (a NAT
    or firewall timeout, which no one reports) is pinged. Either raises `InvalidatePoolError`:
    the pool drops every connection older than this one and hands out a fresh one, as its
    pre-ping did. A connection that dies between this check and its use fails that one unit
    of work as a transient error (503 `database_unavailable`, retried by consumers and the
    outbox relay), and SQLAlchemy invalidates the pool then too.
    """
    driver = dbapi_conn.driver_connection
    if driver.is_closed():
        raise InvalidatePoolError("the server closed this pooled connection")
    checked_in = record.info.get(_CHECKED_IN_AT)
    if checked_in is not None and time.monotonic() - checked_in > IDLE_PING_SECONDS:
        try:
            dbapi_conn.ping()
        except Exception as exc:
            raise InvalidatePoolError(f"ping failed: {type(exc).__name__}") from exc


def _stamp_on_checkin(_: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql(BEGIN_IMMEDIATE)


async def ensure_database(url: str) -> None:
    """Create the service's PostgreSQL database (or private SQLite file) if it does not exist."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_file(Path(parsed.database))
        return
    name = parsed.database
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if not exists:
                try:
                    await conn.execute(text(f'CREATE DATABASE "{name}"'))
                except Exception as exc:  # another process created it first
                    if "already exists" not in str(exc):
                        raise
    finally:
        await admin.dispose()


async def drop_database(url: str) -> None:
    """Drop a PostgreSQL database (tests clean up after themselves)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            for suffix in ("", "-wal", "-shm"):
                Path(parsed.database + suffix).unlink(missing_ok=True)
        return
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        await admin.dispose()
