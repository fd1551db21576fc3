"""Transactional outbox with a relay, and the idempotent inbox consumers run behind."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import structlog
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import (
    Column,
    Delete,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.bus import EventBus, MalformedMessage
from streamia_kit.db import Database, UTCDateTime, rowcount, utcnow
from streamia_kit.events import Envelope, Event, queue_name
from streamia_kit.faults import Supervisor, being_cancelled, is_transient, transient_delay
from streamia_kit.repository import dialect_name
from streamia_kit.repository import insert as upsert
from streamia_kit.telemetry import Tracing, current_traceparent

log = structlog.get_logger("streamia.messaging")

E = TypeVar("E", bound=Event)
EventHandler = Callable[[AsyncSession, E, Envelope], Awaitable[None]]
# Applies several fresh events of one type in the caller's transaction, in delivery order.
BatchEventHandler = Callable[[AsyncSession, Sequence[tuple[E, Envelope]]], Awaitable[None]]

OUTBOX_INFO_KEY = "streamia_outbox_dirty"
# First wait after a failed publish; it doubles up to `faults.MAX_DELAY` (2 s).
RETRY_FIRST_SECONDS = 0.2

PUBLISH_FAILURES = Counter(
    "streamia_outbox_publish_failures_total",
    "Relay passes that could not publish (broker or database away); each is tried again",
    ["service"],
)


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the `outbox` and `inbox` tables to a service's metadata (and so its migrations)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("type", String(100), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("queue", String(200), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )
    return outbox, inbox


class Outbox:
    """Writes events in the caller's transaction; the relay publishes them after commit."""

    def __init__(self, table: Table, source: str) -> None:
        self.table = table
        self.source = source
        # One statement object for every add: its cache key and compiled form are computed
        # once, where `insert().values(...)` built and keyed a new statement each time.
        self._insert = insert(table)

    async def add(self, session: AsyncSession, event: Event) -> Envelope:
        envelope = Envelope.wrap(event, self.source, current_traceparent())
        await session.execute(
            self._insert,
            {
                "event_id": envelope.id,
                "type": envelope.type,
                "envelope": envelope.model_dump_json(),
                "created_at": utcnow(),
            },
        )
        session.info[OUTBOX_INFO_KEY] = True
        return envelope

    async def add_many(self, session: AsyncSession, events: Sequence[Event]) -> list[Envelope]:
        """`add` for many events in one batched insert (kept in the order given)."""
        if not events:
            return []
        traceparent = current_traceparent()
        now = utcnow()
        envelopes = [Envelope.wrap(event, self.source, traceparent) for event in events]
        await session.execute(
            self._insert,
            [
                {
                    "event_id": env.id,
                    "type": env.type,
                    "envelope": env.model_dump_json(),
                    "created_at": now,
                }
                for env in envelopes
            ],
        )
        session.info[OUTBOX_INFO_KEY] = True
        return envelopes


class OutboxRelay:
    """Publishes committed outbox rows in order, deleting each batch once the broker confirms.

    Runs under a `Supervisor` (`outbox-relay` in metrics and logs): it waits out an
    unreachable database or broker itself (woken on commit and on the broker's reconnect);
    anything else ends the loop, and the supervisor starts it again."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        table: Table,
        poll_seconds: float = 1.0,
        batch: int = 200,
        tracing: Tracing | None = None,
        service: str = "",
    ) -> None:
        self.db = db
        self.bus = bus
        self.table = table
        self.tracing = tracing or Tracing.disabled()
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._wakeup = asyncio.Event()
        self.supervisor = Supervisor(
            "outbox-relay", self._run, service=service, first_delay=RETRY_FIRST_SECONDS
        )
        # At 0 from the start, so the first failure is an increase.
        self._failures = PUBLISH_FAILURES.labels(service)
        self._sqlite_turn = asyncio.Lock()
        hooks = getattr(bus, "on_reconnect", None)
        if hooks is not None:
            hooks.append(self.wake)

    def wake(self) -> None:
        self._wakeup.set()
        self.supervisor.wake()

    def start(self) -> None:
        self.supervisor.start()

    async def stop(self) -> None:
        await self.supervisor.stop()

    async def _run(self) -> None:
        failures = 0
        while True:
            # Cleared before the pass, not after: a commit made while the pass runs wakes
            # the next one at once, so the pass can stop at its first short batch.
            self._wakeup.clear()
            try:
                await self.drain()
                failures = 0
                delay = self.poll_seconds
            except Exception as exc:
                if being_cancelled():
                    raise
                self._failures.inc()  # transient or not (then the supervisor restarts us)
                if not is_transient(exc):
                    raise
                failures += 1
                # Short and capped: once the broker is back, events wait at most ~2 s (and
                # the bus wakes the relay as soon as its connection is restored).
                delay = transient_delay(failures, RETRY_FIRST_SECONDS)
                # Commits made meanwhile do not cut the wait short; a reconnect does.
                self._wakeup.clear()
                log.warning(
                    "outbox_publish_failed",
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    retry_in=round(delay, 2),
                )
            try:
                await asyncio.wait_for(self._wakeup.wait(), delay)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Publish everything committed before the call; returns how many events went out."""
        sent = 0
        while True:
            published = await self._relay_batch()
            sent += published
            # A short batch was all there was: one more read would find it empty.
            if published < self.batch:
                return sent

    def _pending(self) -> Select[tuple[int, str]]:
        return (
            select(self.table.c.seq, self.table.c.envelope)
            .order_by(self.table.c.seq)
            .limit(self.batch)
        )

    async def _publish(self, rows: Sequence[Row[tuple[int, str]]]) -> None:
        envelopes = [Envelope.model_validate_json(r.envelope) for r in rows]
        with self.tracing.publish_spans(envelopes):
            await self.bus.publish(envelopes)

    def _delete(self, rows: Sequence[Row[tuple[int, str]]]) -> Delete:
        return delete(self.table).where(self.table.c.seq.in_([r.seq for r in rows]))

    async def _relay_batch(self) -> int:
        """Publish one batch and delete it once the broker has it; how many went out."""
        if self.db.is_sqlite:
            return await self._relay_batch_sqlite()
        async with self.db.transaction() as session:
            # Several replicas may relay at once; each row goes out through one of them.
            query = self._pending().with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if rows:
                await self._publish(rows)
                await session.execute(self._delete(rows))
        return len(rows)

    async def _relay_batch_sqlite(self) -> int:
        # Read and published outside the write unit of work: SQLite has one writer per
        # database, and holding it while the bus publishes stalled every write of the service
        # for the publish's event-loop turns. One relay per database (this process, in turn),
        # so rows still go out in order; deleted once published (a crash in between publishes
        # them again: at least once, as with PostgreSQL).
        async with self._sqlite_turn:
            async with self.db.sessions() as session:
                rows = (await session.execute(self._pending())).all()
            if rows:
                await self._publish(rows)
                async with self.db.transaction() as session:
                    await session.execute(self._delete(rows))
        return len(rows)

    async def pending(self) -> int:
        async with self.db.sessions() as session:
            return len((await session.execute(select(self.table.c.seq))).all())


class Inbox:
    """Remembers processed event ids per queue, inside the handler's own transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._claim_stmt: Any = None

    async def claim(self, session: AsyncSession, queue: str, event_id: str) -> bool:
        """True the first time this queue sees this event id; False for a redelivery."""
        result = await session.execute(
            upsert(session, self.table)
            .values(queue=queue, event_id=event_id, processed_at=utcnow())
            .on_conflict_do_nothing()
        )
        return bool(rowcount(result))

    async def claim_many(
        self, session: AsyncSession, keys: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """`claim` for many (queue, event id) pairs in one statement: the pairs seen first."""
        if not keys:
            return set()
        now = utcnow()
        unique = list(dict.fromkeys(keys))
        if dialect_name(session) == "postgresql":
            # One statement text whatever the batch size: compiled and prepared once.
            rows = await session.execute(
                self._claim_arrays(),
                {
                    "queues": [queue for queue, _ in unique],
                    "ids": [event_id for _, event_id in unique],
                    "now": now,
                },
            )
        else:
            rows = await session.execute(
                upsert(session, self.table)
                .values(
                    [
                        {"queue": queue, "event_id": event_id, "processed_at": now}
                        for queue, event_id in unique
                    ]
                )
                .on_conflict_do_nothing()
                .returning(self.table.c.queue, self.table.c.event_id)
            )
        return {(row[0], row[1]) for row in rows}

    def _claim_arrays(self) -> Any:
        if self._claim_stmt is None:
            c = self.table.c
            rows = select(
                func.unnest(bindparam("queues", type_=postgresql.ARRAY(String))),
                func.unnest(bindparam("ids", type_=postgresql.ARRAY(String))),
                bindparam("now", type_=UTCDateTime),
            )
            self._claim_stmt = (
                postgresql.insert(self.table)
                .from_select([c.queue, c.event_id, c.processed_at], rows)
                .on_conflict_do_nothing()
                .returning(c.queue, c.event_id)
            )
        return self._claim_stmt


class IdempotentHandler:
    """Validate the payload, then run `handler` once per event id in one transaction.

    Called with one envelope by the bus; `batch` applies several deliveries that arrived
    together in a single transaction (one inbox insert for all of them). When a batch fails
    the bus runs its deliveries again one by one, so a poison message still gets its own
    retries and dead letter and the others go through. With `many`, the fresh events of a
    batch are handed over together (one statement for all of them instead of one each).
    """

    def __init__(
        self,
        db: Database,
        inbox: Inbox,
        consumer: str,
        event_cls: type[E],
        handler: EventHandler[E],
        many: BatchEventHandler[E] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.db = db
        self.inbox = inbox
        self.consumer = consumer
        self.event_cls = event_cls
        self.handler = handler
        self.many = many
        self.tracing = tracing or Tracing.disabled()

    def _event(self, envelope: Envelope) -> Event:
        try:
            return self.event_cls.model_validate(envelope.data)
        except ValidationError as exc:
            raise MalformedMessage(
                f"{envelope.type} payload invalid: {exc.error_count()} errors"
            ) from None

    def _span(self, queue: str, envelope: Envelope) -> Any:
        return self.tracing.span_after(
            envelope.traceparent,
            f"consume {envelope.type}",
            attributes={
                "messaging.operation.type": "process",
                "messaging.destination.name": queue,
                "messaging.message.id": envelope.id,
            },
        )

    async def _apply(
        self, session: AsyncSession, queue: str, event: Event, envelope: Envelope
    ) -> None:
        with self._span(queue, envelope):
            started = time.perf_counter()
            await self.handler(session, event, envelope)  # type: ignore[arg-type]
            _log_step(queue, envelope, "applied", started)

    async def __call__(self, envelope: Envelope) -> None:
        event = self._event(envelope)
        queue = queue_name(self.consumer, envelope.type)
        with self._span(queue, envelope):
            started = time.perf_counter()
            try:
                async with self.db.transaction() as session:
                    if not await self.inbox.claim(session, queue, envelope.id):
                        _log_step(queue, envelope, "duplicate", started)
                        return
                    await self.handler(session, event, envelope)  # type: ignore[arg-type]
            except Exception as exc:
                # The bus decides what follows (a retry, or the dead-letter queue) and says so;
                # a dependency being down it reports once per outage, not once per attempt.
                outcome = "unavailable" if is_transient(exc) else "failed"
                _log_step(queue, envelope, outcome, started, error=type(exc).__name__)
                raise
            _log_step(queue, envelope, "applied", started)

    async def batch(self, envelopes: Sequence[Envelope]) -> list[int]:
        """Apply every envelope whose payload is valid in ONE transaction (all or none).

        Returns the positions of the envelopes left out because their payload is invalid:
        the caller dispatches those alone (they go to the dead-letter queue).
        """
        items: list[tuple[str, Event, Envelope]] = []
        invalid: list[int] = []
        for position, envelope in enumerate(envelopes):
            try:
                event = self._event(envelope)
            except MalformedMessage:
                invalid.append(position)
                continue
            items.append((queue_name(self.consumer, envelope.type), event, envelope))
        if not items:
            return invalid
        async with self.db.transaction() as session:
            fresh = await self.inbox.claim_many(session, [(q, env.id) for q, _, env in items])
            todo: list[tuple[str, Event, Envelope]] = []
            for queue, event, envelope in items:
                key = (queue, envelope.id)
                if key not in fresh:  # a redelivery, or the same event twice in this batch
                    _log_step(queue, envelope, "duplicate", time.perf_counter())
                    continue
                fresh.discard(key)
                todo.append((queue, event, envelope))
            if self.many is not None and len(todo) > 1:
                queue, _, first = todo[0]
                attributes = {
                    "messaging.destination.name": queue,
                    "messaging.batch.message_count": len(todo),
                }
                with self.tracing.batch_span(
                    [env.traceparent for _, _, env in todo], f"consume {first.type}", **attributes
                ):
                    started = time.perf_counter()
                    await self.many(session, [(event, env) for _, event, env in todo])  # type: ignore[misc]
                    for queue, _, envelope in todo:
                        _log_step(queue, envelope, "applied", started, batch=len(todo))
            else:
                for queue, event, envelope in todo:
                    await self._apply(session, queue, event, envelope)
        return invalid


# The name services and tests build it by.
idempotent_handler = IdempotentHandler


def _log_step(queue: str, envelope: Envelope, outcome: str, started: float, **fields: Any) -> None:
    """One INFO line per saga step (inside its consumer span, so it carries the trace id)."""
    log.log(
        {"failed": logging.WARNING, "unavailable": logging.DEBUG}.get(outcome, logging.INFO),
        "event_consumed",
        queue=queue,
        event_id=envelope.id,
        event_type=envelope.type,
        outcome=outcome,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        **fields,
    )


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()
