"""A service's own database work is bounded below the gateway's wait: statements and the
wait for a connection time out (as transient failures) instead of hanging a request."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import sqlalchemy.exc
from pydantic import ValidationError
from sqlalchemy import text

from streamia_kit.config import ServiceSettings
from streamia_kit.db import Database
from streamia_kit.faults import is_transient
from streamia_kit.testing import POSTGRES


def test_database_timeouts_default_to_fractions_of_the_gateways_wait():
    settings = ServiceSettings(breaker_timeout_seconds=3.0)
    assert settings.statement_timeout == pytest.approx(2.0)
    assert settings.pool_timeout == pytest.approx(1.0)
    longer = ServiceSettings(breaker_timeout_seconds=9.0)
    assert longer.statement_timeout == pytest.approx(6.0)
    assert longer.pool_timeout == pytest.approx(3.0)


def test_a_statement_timeout_of_zero_means_none_and_negative_ones_are_refused():
    assert ServiceSettings(database_statement_timeout_seconds=0).statement_timeout is None
    assert ServiceSettings(database_statement_timeout_seconds=0.5).statement_timeout == 0.5
    for bad in ({"database_statement_timeout_seconds": -1}, {"database_pool_timeout_seconds": 0}):
        with pytest.raises(ValidationError):
            ServiceSettings(**bad)
    with pytest.raises(ValidationError):
        ServiceSettings(breaker_timeout_seconds=0)


@pytest.mark.distributed
async def test_postgresql_cancels_a_statement_longer_than_the_timeout(distributed_stack):
    db = Database(f"{POSTGRES}/postgres", statement_timeout=0.3, pool_timeout=1.0)
    try:
        began = time.monotonic()
        with pytest.raises(sqlalchemy.exc.DBAPIError) as caught:
            async with db.transaction() as session:
                await session.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - began < 2.0
        assert is_transient(caught.value)  # a consumer waits and tries again
    finally:
        await db.dispose()


@pytest.mark.distributed
async def test_waiting_for_a_pooled_connection_is_bounded(distributed_stack):
    db = Database(f"{POSTGRES}/postgres", pool_size=1, statement_timeout=5, pool_timeout=0.3)
    try:
        async with db.engine.connect(), db.engine.connect():  # pool and overflow both taken
            began = time.monotonic()
            with pytest.raises(sqlalchemy.exc.TimeoutError) as caught:
                async with db.engine.connect():
                    pass
            assert time.monotonic() - began < 2.0
            assert is_transient(caught.value)
    finally:
        await db.dispose()


async def test_sqlite_waits_for_a_lock_no_longer_than_the_statement_timeout(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/busy.sqlite"
    holder, waiter = Database(url), Database(url, statement_timeout=0.3)
    try:
        async with holder.transaction() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
        async with holder.engine.connect() as conn:  # the writer: BEGIN IMMEDIATE
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            began = time.monotonic()
            with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
                async with waiter.transaction() as session:
                    await session.execute(text("INSERT INTO t VALUES (2)"))
            assert time.monotonic() - began < 2.0
            assert "locked" in str(caught.value)
            await conn.rollback()
    finally:
        await holder.dispose()
        await waiter.dispose()


async def test_sqlite_reads_run_inline_and_a_busy_one_waits_on_the_connections_thread(tmp_path):
    """Reads run in the event loop's thread; one that finds the database busy (another
    process's exclusive lock) is tried again on aiosqlite's thread, with the busy handler."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/reads.sqlite", statement_timeout=0.3)
    try:
        async with db.sessions() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
        async with db.read_engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            threads: list[int] = []

            def busy_once() -> int:
                threads.append(threading.get_ident())
                if len(threads) == 1:
                    error = sqlite3.OperationalError("database is locked")
                    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
                    raise error
                return raw._conn.execute("PRAGMA busy_timeout").fetchone()[0]

            busy_ms = await raw._execute(busy_once)
            assert threads[0] == threading.get_ident()  # first inline
            assert threads[1] != threading.get_ident()  # then on the thread,
            assert busy_ms == 300  # waiting as long as a statement may
            assert raw._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0  # and back
    finally:
        await db.dispose()
