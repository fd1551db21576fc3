"""The unit of work on both stacks: atomic read-modify-write, readers beside the writer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text, update
from sqlalchemy.exc import OperationalError

from streamia_kit.db import Database
from streamia_kit.testing import POSTGRES, Stack

COUNTERS = Table(
    "counters",
    MetaData(),
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)


@pytest.fixture
async def db(harness) -> AsyncIterator[Database]:
    # A few PostgreSQL connections: the server's are shared with every other test run.
    db = Database(harness.settings.resolved_database_url(), pool_size=4)
    async with db.engine.begin() as conn:
        await conn.run_sync(COUNTERS.create)
    async with db.transaction() as session:
        await session.execute(COUNTERS.insert().values(name="views", value=0))
    yield db
    await db.dispose()


async def read_value(db: Database) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(COUNTERS.c.value).where(COUNTERS.c.name == "views"))


async def test_concurrent_read_modify_write_units_of_work_lose_no_update(db: Database):
    async def increment() -> None:
        async with db.transaction() as session:
            current = await session.scalar(
                select(COUNTERS.c.value).where(COUNTERS.c.name == "views").with_for_update()
            )
            await asyncio.sleep(0)  # let every other unit of work run between read and write
            await session.execute(
                update(COUNTERS).where(COUNTERS.c.name == "views").values(value=current + 1)
            )

    await asyncio.gather(*(increment() for _ in range(100)))

    assert await read_value(db) == 100


async def test_a_reader_is_answered_while_a_unit_of_work_holds_the_writer(db: Database):
    async with db.transaction() as session:
        await session.execute(update(COUNTERS).values(value=7))
        # Readers do not queue behind the writer: they see the last commit, at once.
        assert await asyncio.wait_for(read_value(db), timeout=2) == 0
    assert await read_value(db) == 7


async def test_a_unit_of_work_takes_the_writer_at_its_first_statement_not_when_it_opens(
    db: Database,
):
    async with db.transaction():
        # Nothing run yet (a password being hashed): another unit of work commits meanwhile.
        async def other() -> None:
            async with db.transaction() as session:
                await session.execute(update(COUNTERS).values(value=1))

        await asyncio.wait_for(other(), timeout=2)
    assert await read_value(db) == 1


async def test_a_write_through_a_read_session_fails_at_once_on_sqlite(harness_factory, tmp_path):
    make, open_ = harness_factory
    harness = make(Stack("embedded", tmp_path))
    await open_(harness)
    try:
        async with harness.db.sessions() as session:
            with pytest.raises(OperationalError, match="readonly"):
                await session.execute(harness.applied.insert().values(event_id="x"))
    finally:
        await harness.infra.close()
        await harness.db.dispose()


async def test_waiting_for_another_process_s_sqlite_lock_does_not_stall_the_event_loop(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.sqlite"
    other, ours = Database(url), Database(url, statement_timeout=5)  # two processes' worth
    try:
        async with other.engine.begin() as conn:
            await conn.run_sync(COUNTERS.create)
            await conn.execute(COUNTERS.insert().values(name="views", value=0))
        committed = asyncio.Event()

        async def write() -> None:
            async with ours.transaction() as session:
                await session.execute(update(COUNTERS).values(value=2))
            committed.set()

        async with other.engine.connect() as conn:  # holds the write lock (BEGIN IMMEDIATE)
            await conn.execute(update(COUNTERS).values(value=1))
            waiting = asyncio.create_task(write())
            began = asyncio.get_running_loop().time()
            for _ in range(10):  # the loop keeps turning while our writer waits
                await asyncio.sleep(0.02)
            assert asyncio.get_running_loop().time() - began < 1.0
            assert not committed.is_set()
            await conn.commit()
        await asyncio.wait_for(waiting, timeout=5)
        assert await read_value(ours) == 2
    finally:
        await other.dispose()
        await ours.dispose()


@pytest.mark.distributed
async def test_a_pooled_connection_the_server_closed_is_replaced_before_a_unit_of_work_uses_it(
    distributed_stack,
):
    """No ping on every checkout (three round trips): a connection PostgreSQL ended (a
    restart, an administrator) is known closed once its socket's end is read, and the next
    unit of work gets a fresh one instead of a 503."""
    db, admin = Database(f"{POSTGRES}/postgres", pool_size=1), Database(f"{POSTGRES}/postgres")
    try:
        closed = asyncio.Event()
        async with db.engine.connect() as conn:
            pooled = (await conn.get_raw_connection()).driver_connection
            pooled.add_termination_listener(lambda _: closed.set())
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with admin.engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.wait_for(closed.wait(), timeout=5)  # the pool's connection knows
        async with db.transaction() as session:
            fresh = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
        assert fresh != pid
    finally:
        await db.dispose()
        await admin.dispose()
