"""The embedded broker: the same routing, retry and dead-letter rules as RabbitMQ, kept in a
SQLite file so queued events survive a restart and the `dlq` command can reach them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Sequence
from pathlib import Path

import aiosqlite
import structlog

from streamia_kit.bus import (
    DeadLetter,
    EventBus,
    Outcome,
    Selection,
    Subscription,
    UnknownQueue,
    encode,
)
from streamia_kit.events import Envelope, exchange_for
from streamia_kit.faults import Supervisor, is_transient
from streamia_kit.files import private_file

log = structlog.get_logger("streamia.bus.inprocess")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings (
    queue TEXT NOT NULL, exchange TEXT NOT NULL, routing_key TEXT NOT NULL,
    PRIMARY KEY (queue, exchange, routing_key)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body BLOB NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    available_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'ready',
    error TEXT
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, state, available_at, id);
"""

_BATCH = 32


class InProcessBus(EventBus):
    """Durable in-process queues; consumers run as tasks in this event loop."""

    def __init__(
        self, path: Path | str, batch_size: int = _BATCH, linger: float = 0.0, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.path = Path(path)
        # Deliveries of a queue applied together (one transaction, see `dispatch_many`), and
        # while a queue is busy, the seconds its consumer waits for more before it claims.
        self.batch_size = batch_size
        self.linger = linger
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._consumers: list[Supervisor] = []
        self._closing = False

    async def _conn(self) -> aiosqlite.Connection:
        if self._db is not None:
            return self._db
        async with self._connect_lock:
            if self._db is None:
                private_file(self.path)
                db = await aiosqlite.connect(self.path, isolation_level=None)
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute("PRAGMA synchronous=NORMAL")
                await db.execute("PRAGMA busy_timeout=5000")
                await db.executescript(_SCHEMA)
                self._db = db
        return self._db

    async def start(self) -> None:
        db = await self._conn()
        async with self._lock:
            # Deliveries that were in flight when the process died are redelivered.
            await db.execute("UPDATE messages SET state='ready' WHERE state='inflight'")
            for sub in self.subscriptions.values():
                await db.execute(
                    "INSERT OR IGNORE INTO bindings VALUES (?, ?, ?)",
                    (self.name(sub.queue), self.name(sub.exchange), sub.event_type),
                )
        for sub in self.subscriptions.values():
            self._wakeups[sub.queue] = asyncio.Event()
            consumer = Supervisor(
                f"bus:{sub.queue}", functools.partial(self._consume, sub), service=sub.consumer
            )
            self._consumers.append(consumer)
            consumer.start()

    async def close(self) -> None:
        self._closing = True
        await asyncio.gather(*(consumer.stop() for consumer in self._consumers))
        self._consumers.clear()
        async with self._connect_lock:
            if self._db is not None:
                async with self._lock:
                    await self._db.close()
                self._db = None

    async def ping(self) -> bool:
        """Open, and every queue's consumer running (none waiting to be restarted)."""
        return self._db is not None and all(consumer.alive for consumer in self._consumers)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        db = await self._conn()
        now = time.time()
        touched: set[str] = set()
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                for env in envelopes:
                    cursor = await db.execute(
                        "SELECT queue FROM bindings WHERE exchange=? AND routing_key=?",
                        (self.name(exchange_for(env.type)), env.type),
                    )
                    body = encode(env)
                    for (queue,) in await cursor.fetchall():
                        await db.execute(
                            "INSERT INTO messages (queue, message_id, type, body, available_at)"
                            " VALUES (?, ?, ?, ?, ?)",
                            (queue, env.id, env.type, body, now),
                        )
                        touched.add(queue)
                await db.execute("COMMIT")
            except BaseException:
                # Keep the original error (often a cancellation) rather than a failed rollback.
                if db.in_transaction:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(db.execute("ROLLBACK"))
                raise
        self._wake(touched)

    def _wake(self, queues: set[str]) -> None:
        for sub in self.subscriptions.values():
            if self.name(sub.queue) in queues:
                self._wakeups[sub.queue].set()

    async def _claim(self, queue: str) -> tuple[list[tuple[int, bytes, int]], float | None]:
        """Take up to a batch of due messages; also report when the next one falls due."""
        db = await self._conn()
        now = time.time()
        async with self._lock:
            cursor = await db.execute(
                "UPDATE messages SET state='inflight' WHERE id IN ("
                " SELECT id FROM messages WHERE queue=? AND state='ready' AND available_at<=?"
                " ORDER BY id LIMIT ?) RETURNING id, body, attempt",
                (queue, now, self.batch_size),
            )
            rows = sorted(await cursor.fetchall())
            next_due = None
            if not rows:
                cursor = await db.execute(
                    "SELECT MIN(available_at) FROM messages WHERE queue=? AND state='ready'",
                    (queue,),
                )
                (next_due,) = await cursor.fetchone()  # type: ignore[misc]
        return [(r[0], bytes(r[1]), r[2]) for r in rows], next_due

    async def _consume(self, sub: Subscription) -> None:
        """One queue's consumer loop (under a `Supervisor`: whatever ends it, it runs again)."""
        queue = self.name(sub.queue)
        wakeup = self._wakeups[sub.queue]
        # Started again after a failure: deliveries this loop had claimed and not settled are
        # delivered again (the only claimer of this queue is this loop; the inbox skips
        # whatever was applied already).
        db = await self._conn()
        async with self._lock:
            await db.execute(
                "UPDATE messages SET state='ready' WHERE queue=? AND state='inflight'", (queue,)
            )
        busy = False
        while not self._closing:
            if busy and self.linger > 0:
                # The last batch held more than one delivery: let the next one fill up (a
                # lone event on a quiet queue never waits).
                await asyncio.sleep(self.linger)
            try:
                batch, next_due = await self._claim(queue)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("claim_failed", queue=queue, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
                continue
            busy = len(batch) > 1
            if not batch:
                timeout = 1.0 if next_due is None else max(0.0, min(1.0, next_due - time.time()))
                wakeup.clear()
                try:
                    await asyncio.wait_for(wakeup.wait(), timeout)
                except TimeoutError:
                    pass
                continue
            # One transaction for the whole batch when the handler can (see dispatch_many).
            verdicts = await self.dispatch_many(
                sub, [(body, attempt) for _, body, attempt in batch]
            )
            done = [
                row_id
                for (row_id, _, _), v in zip(batch, verdicts, strict=True)
                if v.outcome is Outcome.DONE
            ]
            if done:
                await self._settle_done(done)
            for (row_id, _, attempt), verdict in zip(batch, verdicts, strict=True):
                if verdict.outcome is not Outcome.DONE:
                    await self._settle(
                        row_id, attempt, verdict.outcome, verdict.error, verdict.delay
                    )

    async def _settle_done(self, row_ids: list[int]) -> None:
        db = await self._conn()
        async with self._lock:
            await db.execute(
                f"DELETE FROM messages WHERE id IN ({','.join('?' * len(row_ids))})", row_ids
            )

    async def _settle(
        self, row_id: int, attempt: int, outcome: Outcome, error: str | None, delay: float
    ) -> None:
        db = await self._conn()
        async with self._lock:
            if outcome is Outcome.DONE:
                await db.execute("DELETE FROM messages WHERE id=?", (row_id,))
            elif outcome is Outcome.RETRY:
                await db.execute(
                    "UPDATE messages SET state='ready', attempt=?, available_at=?, error=?"
                    " WHERE id=?",
                    (attempt + 1, time.time() + delay, error, row_id),
                )
            else:
                await db.execute(
                    "UPDATE messages SET state='dead', error=? WHERE id=?", (error, row_id)
                )

    async def _known(self, db: aiosqlite.Connection, queue: str) -> str:
        """`queue`'s name in the file; `UnknownQueue` when no consumer ever bound it."""
        name = self.name(queue)
        cursor = await db.execute("SELECT 1 FROM bindings WHERE queue=? LIMIT 1", (name,))
        if await cursor.fetchone() is None:
            raise UnknownQueue(queue)
        return name

    async def _dead(self, queue: str, limit: int) -> list[DeadLetter]:
        db = await self._conn()
        cursor = await db.execute(
            "SELECT id, message_id, type, attempt, error, body FROM messages"
            " WHERE queue=? AND state='dead' ORDER BY id LIMIT ?",
            (await self._known(db, queue), limit),
        )
        return [
            DeadLetter(queue, r[1], r[2], r[3], r[4], bytes(r[5]), ref=r[0])
            for r in await cursor.fetchall()
        ]

    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        return await self._dead(queue, limit)

    async def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        # 'ready' includes deliveries waiting for their retry delay, as RabbitMQ's main
        # queue does not (they sit in its delay queues): both are work not yet done.
        return await self._counts(queues, "ready")

    async def _counts(self, queues: Sequence[str], state: str) -> dict[str, int]:
        db = await self._conn()
        counts = {}
        for queue in queues:
            cursor = await db.execute(
                "SELECT COUNT(*) FROM messages WHERE queue=? AND state=?", (self.name(queue), state)
            )
            (counts[queue],) = await cursor.fetchone()  # type: ignore[misc]
        return counts

    async def dead_letter_counts(self, queues: Sequence[str]) -> dict[str, int | None]:
        db = await self._conn()
        cursor = await db.execute(
            "SELECT b.queue, COUNT(m.id) FROM (SELECT DISTINCT queue FROM bindings) b"
            " LEFT JOIN messages m ON m.queue = b.queue AND m.state = 'dead' GROUP BY b.queue"
        )
        found = {queue: count for queue, count in await cursor.fetchall()}
        return {queue: found.get(self.name(queue)) for queue in queues}

    async def _change_dead(
        self, queue: str, select: Selection, change: str, params: Sequence[object] = ()
    ) -> int:
        """Run `change` (an UPDATE/DELETE ending in its WHERE clause) on the selected dead
        letters of `queue`; how many rows it touched."""
        db = await self._conn()
        if select is None:
            rows = None
            name = await self._known(db, queue)
        else:
            name = self.name(queue)
            letters = await self._dead(queue, -1)  # SQLite: LIMIT -1 is no limit
            rows = [letter.ref for letter in letters if select(letter)]
            if not rows:
                return 0
        sql = f"{change} queue=? AND state='dead'"
        args = [*params, name]
        if rows is not None:
            sql += f" AND id IN ({','.join('?' * len(rows))})"
            args.extend(rows)
        async with self._lock:
            cursor = await db.execute(sql, args)
        self._wake({name})
        return cursor.rowcount

    async def replay(self, queue: str, select: Selection = None) -> int:
        return await self._change_dead(
            queue,
            select,
            "UPDATE messages SET state='ready', attempt=1, available_at=? WHERE",
            [time.time()],
        )

    async def purge(self, queue: str, select: Selection = None) -> int:
        return await self._change_dead(queue, select, "DELETE FROM messages WHERE")
