"""RabbitMQ adapter: topic exchanges, durable queues, confirms, manual acks, delay queues."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import heapq
from collections.abc import Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from streamia_kit.bus import (
    DeadLetter,
    EventBus,
    Outcome,
    Selection,
    Subscription,
    UnknownQueue,
    Verdict,
    encode,
)
from streamia_kit.events import EXCHANGES, Envelope, exchange_for
from streamia_kit.faults import Supervisor

log = structlog.get_logger("streamia.bus.rabbitmq")

ATTEMPT_HEADER = "x-streamia-attempt"
ERROR_HEADER = "x-streamia-error"


class _Acks:
    """Coalesced acks for one consumer channel.

    Workers settle batches out of order; the broker is sent one `basic.ack(multiple=True)`
    for the highest delivery tag below which every delivery is settled, instead of one ack
    per message. Tags belong to the channel they came on: after a reconnect the old ones
    are void (the broker redelivers those, and the inbox skips what was applied).
    """

    def __init__(self) -> None:
        self._channel: Any = None  # the aiormq channel the tags below belong to
        self._outstanding: list[int] = []  # heap of delivered, not yet acked tags
        self._settled: set[int] = set()  # settled here, waiting for the ones below
        self._nacked: set[int] = set()  # settled already on the broker (nack)

    @staticmethod
    def _channel_of(message: AbstractIncomingMessage) -> Any:
        try:
            return message.channel
        except Exception:  # its channel is closed
            return None

    @staticmethod
    def _tag(message: AbstractIncomingMessage) -> int:
        tag = message.delivery_tag
        assert tag is not None  # consumed with manual acks: every delivery is tagged
        return tag

    def received(self, message: AbstractIncomingMessage) -> None:
        channel = self._channel_of(message)
        if channel is None:
            return
        if channel is not self._channel:
            self._channel = channel
            self._outstanding.clear()
            self._settled.clear()
            self._nacked.clear()
        heapq.heappush(self._outstanding, self._tag(message))

    def _mine(self, message: AbstractIncomingMessage) -> bool:
        return self._channel is not None and self._channel_of(message) is self._channel

    async def nack(self, message: AbstractIncomingMessage) -> None:
        """Return one delivery to its queue now."""
        if not self._mine(message):
            return
        with contextlib.suppress(Exception):
            await message.nack(requeue=True)
        self._nacked.add(self._tag(message))
        await self.ack([])

    async def ack(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        channel = self._channel
        for message in messages:
            if self._mine(message):
                self._settled.add(self._tag(message))
        upto = None
        heap = self._outstanding
        while heap and (heap[0] in self._settled or heap[0] in self._nacked):
            tag = heapq.heappop(heap)
            if tag in self._settled:
                self._settled.discard(tag)
                upto = tag  # only ever ack a tag that is still unacked on the broker
            else:
                self._nacked.discard(tag)
        if upto is not None and channel is not None and not channel.is_closed:
            try:
                await channel.basic_ack(upto, multiple=True)
            except Exception:  # the channel closed meanwhile: the broker redelivers
                log.info("ack_failed", delivery_tag=upto)


class _Deliveries:
    """The deliveries of one queue waiting for a worker, and how workers take them in batches.

    One worker at a time forms a batch (the others run theirs meanwhile): it takes what is
    waiting, up to `size`. While the queue is busy (the last batch held more than one
    delivery) it also lingers up to `linger` seconds for more to arrive, so a trickle of
    deliveries is applied in a few transactions rather than one each; a lone event (a saga
    step on a quiet queue) never waits.
    """

    def __init__(self, size: int, linger: float) -> None:
        self.size = max(1, size)
        self.linger = linger
        self._waiting: collections.deque[AbstractIncomingMessage] = collections.deque()
        self._arrived = asyncio.Event()
        self._forming = asyncio.Lock()
        self._busy = False

    def put(self, message: AbstractIncomingMessage) -> None:
        self._waiting.append(message)
        self._arrived.set()

    def _take(self, batch: list[AbstractIncomingMessage]) -> None:
        waiting = self._waiting
        while waiting and len(batch) < self.size:
            batch.append(waiting.popleft())
        if not waiting:
            self._arrived.clear()

    async def batch(self) -> list[AbstractIncomingMessage]:
        async with self._forming:
            while not self._waiting:
                await self._arrived.wait()
                self._arrived.clear()
            batch: list[AbstractIncomingMessage] = []
            self._take(batch)
            if len(batch) < self.size:
                await asyncio.sleep(0)  # deliveries read off the socket with it join
                self._take(batch)
            if self._busy and self.linger > 0 and len(batch) < self.size:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self.linger
                while len(batch) < self.size and (left := deadline - loop.time()) > 0:
                    # Waiting on the event, never on a getter: a timeout can lose no delivery.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), left)
                    self._take(batch)
            self._busy = len(batch) > 1
            return batch


class RabbitMQBus(EventBus):
    """Each subscription gets `<queue>`, `<queue>.retry.<n>` delay queues and `<queue>.dlq`.

    Delay queues have a fixed TTL per attempt level and dead-letter back into the main queue,
    so a message waiting for its retry never holds up the ones behind it.
    """

    def __init__(
        self,
        url: str,
        prefetch: int = 64,
        workers: int = 4,
        batch_size: int = 32,
        linger: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.prefetch = prefetch
        # Per queue: up to `workers` batches in flight, each of up to `batch_size` deliveries
        # that were waiting together (one transaction per batch, see `dispatch_many`).
        self.workers = workers
        self.batch_size = batch_size
        # Seconds a worker waits for more deliveries to fill a batch while the queue is busy.
        self.linger = linger
        self._workers: list[Supervisor] = []
        self._conn: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._consume_channels: list[AbstractChannel] = []
        self._exchanges: dict[str, AbstractExchange] = {}
        self._publish_lock = asyncio.Lock()

    async def _connection(self) -> AbstractRobustConnection:
        if self._conn is None or self._conn.is_closed:
            self._conn = await aio_pika.connect_robust(self.url, timeout=5)
            self._conn.reconnect_callbacks.add(self._on_reconnect)
        return self._conn

    def _on_reconnect(self, *_: Any) -> None:
        self._reconnected()

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
        for sub in self.subscriptions.values():
            # A channel per queue: its delivery tags are its own, so acks can be coalesced,
            # and a slow queue never holds back another's prefetch window.
            channel = await conn.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=self.prefetch)
            self._consume_channels.append(channel)
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

        pending = _Deliveries(self.batch_size, self.linger)
        acks = _Acks()

        async def on_message(message: AbstractIncomingMessage) -> None:
            acks.received(message)
            pending.put(message)

        for n in range(max(1, self.workers)):
            worker = Supervisor(
                f"bus:{sub.queue}:{n}",
                functools.partial(self._work, channel, sub, pending, acks),
                service=sub.consumer,
            )
            self._workers.append(worker)
            worker.start()
        await queue.consume(on_message, no_ack=False)

    async def _work(
        self,
        channel: AbstractChannel,
        sub: Subscription,
        pending: _Deliveries,
        acks: _Acks,
    ) -> None:
        """Take a batch of the deliveries waiting (see `_Deliveries`), run it, settle each.

        Runs under a `Supervisor`; a batch that fails is logged and the loop goes on."""
        while True:
            batch = await pending.batch()
            try:
                await self._deliver(channel, sub, batch, acks)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Unsettled deliveries come back when the channel closes; keep consuming.
                log.exception("delivery_failed", queue=self.name(sub.queue))

    @staticmethod
    def _attempt(message: AbstractIncomingMessage) -> int:
        try:
            return int((message.headers or {}).get(ATTEMPT_HEADER, 1))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 1

    async def _deliver(
        self,
        channel: AbstractChannel,
        sub: Subscription,
        messages: Sequence[AbstractIncomingMessage],
        acks: _Acks,
    ) -> None:
        attempts = [self._attempt(message) for message in messages]
        verdicts = await self.dispatch_many(
            sub,
            [(message.body, attempt) for message, attempt in zip(messages, attempts, strict=True)],
        )
        settled = []
        for message, attempt, verdict in zip(messages, attempts, verdicts, strict=True):
            if verdict.outcome is Outcome.DONE or await self._park(
                channel, sub, message, attempt, verdict
            ):
                settled.append(message)
            else:
                await acks.nack(message)
        await acks.ack(settled)

    async def _park(
        self,
        channel: AbstractChannel,
        sub: Subscription,
        message: AbstractIncomingMessage,
        attempt: int,
        verdict: Verdict,
    ) -> bool:
        """Move a failed delivery to its retry queue or the DLQ; False if that failed (the
        delivery is then returned to the queue)."""
        queue_name = self.name(sub.queue)
        try:
            if verdict.outcome is Outcome.RETRY:
                await channel.default_exchange.publish(
                    self._copy(message, {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: verdict.error}),
                    routing_key=f"{queue_name}.retry.{attempt}",
                )
            else:
                await channel.default_exchange.publish(
                    self._copy(message, {ATTEMPT_HEADER: attempt, ERROR_HEADER: verdict.error}),
                    routing_key=f"{queue_name}.dlq",
                )
            return True
        except Exception:
            # Could not park the message: give it back so the broker redelivers it.
            log.exception("settle_failed", queue=queue_name)
            return False

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
        """False while the robust connection is lost and reconnecting, not only once closed,
        and while a consumer's worker waits to be restarted."""
        conn = self._conn
        return (
            conn is not None
            and not conn.is_closed
            and conn.connected.is_set()
            and all(worker.alive for worker in self._workers)
        )

    async def close(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self._workers))
        self._workers.clear()
        if self._conn is not None:
            await self._conn.close()
        self._conn = self._publish_channel = None
        self._consume_channels.clear()

    async def _dlq(self, channel: AbstractChannel, queue: str) -> AbstractQueue:
        """The dead-letter queue of `queue`, declared passively: asking never creates one."""
        try:
            return await channel.declare_queue(f"{self.name(queue)}.dlq", passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            raise UnknownQueue(queue) from None

    async def _fetch_dead(
        self, channel: AbstractChannel, queue: str, limit: int
    ) -> list[tuple[DeadLetter, AbstractIncomingMessage]]:
        """Take up to `limit` dead letters, unacked: the ones not acked go back to the DLQ
        (in their order) when the channel closes."""
        dlq = await self._dlq(channel, queue)
        out: list[tuple[DeadLetter, AbstractIncomingMessage]] = []
        while len(out) < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = message.headers or {}
            out.append(
                (
                    DeadLetter(
                        queue=queue,
                        message_id=message.message_id or "",
                        type=message.type or "",
                        attempts=int(headers.get(ATTEMPT_HEADER, 1)),  # type: ignore[arg-type]
                        error=str(headers.get(ERROR_HEADER) or ""),
                        body=message.body,
                    ),
                    message,
                )
            )
        return out

    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        conn = await self._connection()
        channel = await conn.channel()
        try:
            return [dl for dl, _ in await self._fetch_dead(channel, queue, limit)]
        finally:
            await channel.close()  # unacked messages go back to the DLQ

    async def dead_letter_counts(self, queues: Sequence[str]) -> dict[str, int | None]:
        conn = await self._connection()
        counts: dict[str, int | None] = {}

        async def count(share: Sequence[str]) -> None:
            # A passive declare of a missing queue closes its channel: open another.
            channel = await conn.channel()
            try:
                for queue in share:
                    try:
                        dlq = await self._dlq(channel, queue)
                    except UnknownQueue:
                        counts[queue] = None
                        channel = await conn.channel()
                        continue
                    counts[queue] = dlq.declaration_result.message_count or 0
            finally:
                await _close(channel)

        # Up to a few channels at once for many queues: each declare is a round trip.
        channels = min(_COUNT_CHANNELS, max(1, len(queues) // 8))
        await asyncio.gather(*(count(queues[n::channels]) for n in range(channels)))
        return {queue: counts[queue] for queue in queues}

    async def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        conn = await self._connection()
        channel = await conn.channel()
        try:
            counts = {}
            for queue in queues:
                # Passive: only asks; the consumer declared the queue with its arguments.
                q = await channel.declare_queue(self.name(queue), passive=True)
                counts[queue] = q.declaration_result.message_count or 0
            return counts
        finally:
            await _close(channel)

    async def replay(self, queue: str, select: Selection = None) -> int:
        conn = await self._connection()
        channel = await conn.channel(publisher_confirms=True)
        replayed = 0
        try:
            for dead, message in await self._fetch_dead(channel, queue, _ALL):
                if select is not None and not select(dead):
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

    async def purge(self, queue: str, select: Selection = None) -> int:
        conn = await self._connection()
        channel = await conn.channel()
        purged = 0
        try:
            if select is None:
                result = await (await self._dlq(channel, queue)).purge()
                return int(result.message_count or 0)
            for dead, message in await self._fetch_dead(channel, queue, _ALL):
                if select(dead):
                    await message.ack()
                    purged += 1
        finally:
            await channel.close()
        return purged


_COUNT_CHANNELS = 8
_ALL = 1_000_000  # every dead letter of a queue (they are held in memory while sorted out)


async def _close(channel: AbstractChannel) -> None:
    """Close a short-lived channel, within a second: a channel the broker closed (a passive
    declare of a missing queue) or one cancelled mid-call must not hold its caller's exit."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(channel.close(), 1.0)
