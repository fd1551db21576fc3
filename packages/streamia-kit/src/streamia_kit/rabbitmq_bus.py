"""RabbitMQ adapter: topic exchanges, durable queues, confirms, manual acks, delay queues."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from streamia_kit.bus import DeadLetter, EventBus, Outcome, Subscription, encode
from streamia_kit.events import EXCHANGES, Envelope, exchange_for

log = structlog.get_logger("streamia.bus.rabbitmq")

ATTEMPT_HEADER = "x-streamia-attempt"
ERROR_HEADER = "x-streamia-error"


class RabbitMQBus(EventBus):
    """Each subscription gets `<queue>`, `<queue>.retry.<n>` delay queues and `<queue>.dlq`.

    Delay queues have a fixed TTL per attempt level and dead-letter back into the main queue,
    so a message waiting for its retry never holds up the ones behind it.
    """

    def __init__(self, url: str, prefetch: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.prefetch = prefetch
        self._conn: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._consume_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._publish_lock = asyncio.Lock()

    async def _connection(self) -> AbstractRobustConnection:
        if self._conn is None or self._conn.is_closed:
            self._conn = await aio_pika.connect_robust(self.url, timeout=5)
        return self._conn

    async def _publisher(self) -> AbstractChannel:
        if self._publish_channel is None or self._publish_channel.is_closed:
            conn = await self._connection()
            channel = await conn.channel(publisher_confirms=True)
            self._exchanges = {
                name: await channel.declare_exchange(
                    self.name(name), aio_pika.ExchangeType.TOPIC, durable=True
                )
                for name in EXCHANGES
            }
            self._publish_channel = channel
        return self._publish_channel

    async def start(self) -> None:
        await self._publisher()
        if not self.subscriptions:
            return
        conn = await self._connection()
        channel = await conn.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        self._consume_channel = channel
        for sub in self.subscriptions.values():
            await self._declare(channel, sub)

    async def _declare(self, channel: AbstractChannel, sub: Subscription) -> None:
        queue_name = self.name(sub.queue)
        exchange = await channel.declare_exchange(
            self.name(sub.exchange), aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(queue_name, durable=True)
        await queue.bind(exchange, routing_key=sub.event_type)
        await channel.declare_queue(f"{queue_name}.dlq", durable=True)
        for attempt in range(1, self.max_attempts):
            await channel.declare_queue(
                f"{queue_name}.retry.{attempt}",
                durable=True,
                arguments={
                    "x-message-ttl": int(self.backoff(attempt) * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": queue_name,
                },
            )

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._deliver(channel, sub, message)

        await queue.consume(on_message, no_ack=False)

    async def _deliver(
        self, channel: AbstractChannel, sub: Subscription, message: AbstractIncomingMessage
    ) -> None:
        headers = dict(message.headers or {})
        try:
            attempt = int(headers.get(ATTEMPT_HEADER, 1))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            attempt = 1
        verdict = await self.dispatch(sub, message.body, attempt)
        queue_name = self.name(sub.queue)
        try:
            if verdict.outcome is Outcome.RETRY:
                await channel.default_exchange.publish(
                    self._copy(message, {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: verdict.error}),
                    routing_key=f"{queue_name}.retry.{attempt}",
                )
            elif verdict.outcome is Outcome.DEAD:
                await channel.default_exchange.publish(
                    self._copy(message, {ATTEMPT_HEADER: attempt, ERROR_HEADER: verdict.error}),
                    routing_key=f"{queue_name}.dlq",
                )
            await message.ack()
        except Exception:
            # Could not park the message: leave it unacked so the broker redelivers it.
            log.exception("settle_failed", queue=queue_name)
            if not channel.is_closed:
                await message.nack(requeue=True)

    @staticmethod
    def _copy(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
        return aio_pika.Message(
            body=message.body,
            headers={**(message.headers or {}), **headers},
            content_type=message.content_type,
            message_id=message.message_id,
            type=message.type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        async with self._publish_lock:
            await self._publisher()
            # Confirms are awaited together: one round trip for the whole batch.
            await asyncio.gather(*(self._publish_one(env) for env in envelopes))

    async def _publish_one(self, env: Envelope) -> None:
        headers: dict[str, Any] = {ATTEMPT_HEADER: 1}
        if env.traceparent:
            headers["traceparent"] = env.traceparent
        message = aio_pika.Message(
            body=encode(env),
            content_type="application/cloudevents+json",
            message_id=env.id,
            type=env.type,
            headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._exchanges[exchange_for(env.type)].publish(message, routing_key=env.type)

    async def ping(self) -> bool:
        return self._conn is not None and not self._conn.is_closed

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = self._publish_channel = self._consume_channel = None

    async def _fetch_dead(
        self, channel: AbstractChannel, queue: str, limit: int
    ) -> list[tuple[DeadLetter, AbstractIncomingMessage]]:
        dlq = await channel.declare_queue(f"{self.name(queue)}.dlq", durable=True)
        out = []
        while len(out) < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = message.headers or {}
            out.append((
                DeadLetter(
                    queue=queue,
                    message_id=message.message_id or "",
                    type=message.type or "",
                    attempts=int(headers.get(ATTEMPT_HEADER, 1)),  # type: ignore[arg-type]
                    error=str(headers.get(ERROR_HEADER) or ""),
                    body=message.body,
                ),
                message,
            ))
        return out

    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        conn = await self._connection()
        channel = await conn.channel()
        try:
            return [dl for dl, _ in await self._fetch_dead(channel, queue, limit)]
        finally:
            await channel.close()  # unacked messages go back to the DLQ

    async def dead_letter_counts(self, queues: Sequence[str]) -> dict[str, int]:
        conn = await self._connection()
        channel = await conn.channel()
        try:
            counts = {}
            for queue in queues:
                q = await channel.declare_queue(f"{self.name(queue)}.dlq", durable=True)
                counts[queue] = q.declaration_result.message_count or 0
            return counts
        finally:
            await channel.close()

    async def replay(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        conn = await self._connection()
        channel = await conn.channel(publisher_confirms=True)
        replayed = 0
        try:
            for dead, message in await self._fetch_dead(channel, queue, 100_000):
                if message_ids and dead.message_id not in message_ids:
                    continue
                await channel.default_exchange.publish(
                    self._copy(message, {ATTEMPT_HEADER: 1, ERROR_HEADER: None}),
                    routing_key=self.name(queue),
                )
                await message.ack()
                replayed += 1
        finally:
            await channel.close()
        return replayed
