"""Group commit of the hot path: reports that arrive while one batch is being written share
the next batch's single UPDATE and single commit.

Every viewer reports every ~10 s, so a busy service receives many reports at once. Written one
transaction each, each pays a pool checkout, BEGIN, an UPDATE, COMMIT and its WAL flush; in a
batch they pay them once. There is no timer: a lone report is written at once (a batch of
one), and a batch grows only while the previous one is in flight, so batching adds no delay the
database was not already imposing.

On PostgreSQL a batch is one statement on a connection held while reports keep coming (and
LINGER_SECONDS after), in autocommit (a single UPDATE is atomic on its own): one round trip per
batch, where a pooled transaction takes three (BEGIN, UPDATE, COMMIT).
SQLite keeps a transaction per batch: its one writer connection is shared by every unit of work.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from streamia_kit.db import Database
from streamia_playback.metrics import PROGRESS_BATCH_SIZE
from streamia_playback.progress.repository import ProgressRepository, State, Write, advance_many

log = structlog.get_logger("streamia.playback.group_commit")

MAX_BATCH = 500
# How long the writer keeps its PostgreSQL connection after its last batch: reports that come
# meanwhile skip the pool's checkout.
LINGER_SECONDS = 1.0

Pending = tuple[Write, asyncio.Future[State | None]]


class BatchFailed(Exception):
    """The report's batch was not written: its request writes it alone, in its own
    transaction, so one batch's trouble (a deadlock with another replica's batch, a connection
    dropped mid-commit) surfaces only where it still happens."""


class GroupCommit:
    """Writes hot-path reports (`ProgressRepository.advance_many`) in shared transactions.

    A batch holds at most one report per (user, movie): a second one waits for the next batch,
    so reports of one pair are applied in the order they arrived, as separate transactions
    would apply them.
    """

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max = max_batch
        self._pending: list[Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None  # kept between writers, see LINGER
        self._linger: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def advance(self, write: Write) -> State | None:
        """The stored state when the report advanced its row; None when the slow path must
        decide; `BatchFailed` when the request must write it in its own transaction."""
        future: asyncio.Future[State | None] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        connection, self._connection = self._connection, None
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        try:
            while self._pending:
                batch = self._next_batch()
                writes = [write for write, _ in batch]
                try:
                    if self._db.is_sqlite:
                        async with self._db.transaction() as session:
                            stored = await ProgressRepository(session).advance_many(writes)
                    else:
                        if connection is None:
                            connection = await self._db.engine.connect()
                            await connection.execution_options(isolation_level="AUTOCOMMIT")
                        stored = await advance_many(connection, writes)
                except Exception as exc:
                    log.warning(
                        "progress_batch_failed",
                        size=len(batch),
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(BatchFailed())
                    if connection is not None:  # maybe broken: the next batch takes another
                        await _close(connection)
                        connection = None
                    continue
                except BaseException:  # cancelled (shutdown): its requests write alone
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(BatchFailed())
                    if connection is not None:  # maybe mid-statement: not to be reused
                        await _close(connection)
                        connection = None
                    raise
                PROGRESS_BATCH_SIZE.observe(len(batch))
                for write, future in batch:
                    if not future.done():  # a request cancelled meanwhile (its client left)
                        future.set_result(stored.get((write.user_id, write.movie_id)))
        finally:
            self._writer = None
            if connection is not None:
                self._connection = connection
                self._linger = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._release)

    def _release(self) -> None:
        """The linger is over: the connection goes back to the pool."""
        self._linger = None
        connection, self._connection = self._connection, None
        if connection is not None:
            task = asyncio.create_task(_close(connection))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """At shutdown: give the kept connection back (the server has drained its requests)."""
        if self._linger is not None:
            self._linger.cancel()
        self._release()
        if self._closing:
            await asyncio.gather(*self._closing)

    def _next_batch(self) -> list[Pending]:
        batch: list[Pending] = []
        later: list[Pending] = []
        pairs: set[tuple[str, str]] = set()
        for item in self._pending:
            pair = (item[0].user_id, item[0].movie_id)
            if pair in pairs or len(batch) >= self._max:
                later.append(item)
            else:
                pairs.add(pair)
                batch.append(item)
        self._pending = later
        return batch


async def _close(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.close()
