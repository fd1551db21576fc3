"""Transactional outbox with a relay, and the idempotent inbox consumers run behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
import structlog
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.bus import EventBus, MalformedMessage
from streamia_kit.db import Database, UTCDateTime, utcnow
from streamia_kit.events import Envelope, Event, queue_name
from streamia_kit.telemetry import current_traceparent, span_from

log = structlog.get_logger("streamia.messaging")

E = TypeVar("E", bound=Event)
EventHandler = Callable[[AsyncSession, E, Envelope], Awaitable[None]]

OUTBOX_INFO_KEY = "streamia_outbox_dirty"


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

    async def add(self, session: AsyncSession, event: Event) -> Envelope:
        envelope = Envelope.wrap(event, self.source, current_traceparent())
        await session.execute(
            insert(self.table).values(
                event_id=envelope.id,
                type=envelope.type,
                envelope=envelope.model_dump_json(),
                created_at=utcnow(),
            )
        )
        session.info[OUTBOX_INFO_KEY] = True
        return envelope


class OutboxRelay:
    """Publishes committed outbox rows in order, deleting each batch once the broker confirms."""

    def __init__(
        self, db: Database, bus: EventBus, table: Table, poll_seconds: float = 1.0,
        batch: int = 200,
    ) -> None:
        self.db = db
        self.bus = bus
        self.table = table
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.drain()
                failures = 0
                delay = self.poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                failures += 1
                delay = min(0.2 * 2 ** min(failures, 8), 30.0)
                log.warning("outbox_publish_failed", error=f"{type(exc).__name__}: {exc}",
                            retry_in=delay)
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), delay)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Publish everything pending; returns how many events went out."""
        sent = 0
        while True:
            async with self.db.transaction() as session:
                query = select(self.table.c.seq, self.table.c.envelope).order_by(
                    self.table.c.seq).limit(self.batch)
                if not self.db.is_sqlite:
                    # Several replicas may relay at once; each row goes out through one of them.
                    query = query.with_for_update(skip_locked=True)
                rows = (await session.execute(query)).all()
                if not rows:
                    return sent
                await self.bus.publish([Envelope.model_validate_json(r.envelope) for r in rows])
                await session.execute(
                    delete(self.table).where(self.table.c.seq.in_([r.seq for r in rows]))
                )
                sent += len(rows)

    async def pending(self) -> int:
        async with self.db.sessions() as session:
            return len((await session.execute(select(self.table.c.seq))).all())


class Inbox:
    """Remembers processed event ids per queue, inside the handler's own transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def claim(self, session: AsyncSession, queue: str, event_id: str) -> bool:
        """True the first time this queue sees this event id; False for a redelivery."""
        dialect = session.bind.dialect.name if session.bind else "sqlite"
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(self.table)
        result = await session.execute(
            ins.values(queue=queue, event_id=event_id, processed_at=utcnow())
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount)


def idempotent_handler(
    db: Database, inbox: Inbox, consumer: str, event_cls: type[E], handler: EventHandler[E]
) -> Callable[[Envelope], Awaitable[None]]:
    """Validate the payload, then run `handler` once per event id in one transaction."""

    async def on_envelope(envelope: Envelope) -> None:
        try:
            event = event_cls.model_validate(envelope.data)
        except ValidationError as exc:
            raise MalformedMessage(f"{envelope.type} payload invalid: {exc.error_count()} errors")
        queue = queue_name(consumer, envelope.type)
        with span_from(envelope.traceparent, f"consume {envelope.type}",
                       **{"messaging.destination": queue, "messaging.message_id": envelope.id}):
            async with db.transaction() as session:
                if not await inbox.claim(session, queue, envelope.id):
                    log.info("duplicate_event_skipped", queue=queue, event_id=envelope.id)
                    return
                await handler(session, event, envelope)

    return on_envelope


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()
