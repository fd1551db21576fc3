"""The event-bus port: topic routing by event type, retries with backoff, dead letters."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

import orjson
import structlog
from prometheus_client import Counter
from pydantic import ValidationError

from streamia_kit.events import Envelope, exchange_for, queue_name
from streamia_kit.faults import is_transient, transient_delay
from streamia_kit.telemetry import within

log = structlog.get_logger("streamia.bus")

# `service` is the consuming service (every Streamia series names its service, see
# streamia_kit.metrics); `queue` is `<service>.<event type>`.
EVENTS_CONSUMED = Counter(
    "streamia_events_consumed_total",
    "Event deliveries by outcome",
    ["service", "queue", "outcome"],
)
DEAD_LETTERS = Counter(
    "streamia_dead_letters_total", "Events moved to a dead-letter queue", ["service", "queue"]
)

TRANSIENT_RETRIES = Counter(
    "streamia_consumer_transient_retries_total",
    "Deliveries run again because a dependency was unavailable (no attempt consumed)",
    ["service", "queue"],
)

Handler = Callable[[Envelope], Awaitable[None]]
T = TypeVar("T")


class MalformedMessage(Exception):
    """The message can never be processed; it goes to the dead-letter queue at once."""


class UnknownQueue(LookupError):
    """No such dead-letter queue on the broker (a misspelt name, or its consumer never ran):
    the `dlq` commands say so rather than create it."""


class Outcome(Enum):
    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(slots=True)
class Verdict:
    outcome: Outcome
    error: str | None = None
    delay: float = 0.0


@dataclass(slots=True)
class DeadLetter:
    queue: str
    message_id: str
    type: str
    attempts: int
    error: str | None
    body: bytes
    ref: Any = None  # adapter-specific handle

    def as_dict(self) -> dict[str, Any]:
        try:
            payload: Any = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            payload = self.body.decode("utf-8", "replace")
        return {
            "queue": self.queue,
            "id": self.message_id,
            "type": self.type,
            "attempts": self.attempts,
            "error": self.error,
            "message": payload,
        }


# Which dead letters a `dlq` command acts on; None: all of them.
Selection = Callable[[DeadLetter], bool] | None


@dataclass(slots=True)
class Subscription:
    consumer: str
    event_type: str
    handler: Handler
    queue: str = field(init=False)
    exchange: str = field(init=False)

    def __post_init__(self) -> None:
        self.queue = queue_name(self.consumer, self.event_type)
        self.exchange = exchange_for(self.event_type)


def encode(envelope: Envelope) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json"))


class EventBus(abc.ABC):
    """Publish envelopes to topic exchanges; deliver them to durable per-consumer queues."""

    def __init__(
        self, max_attempts: int = 5, retry_base_delay: float = 0.5, namespace: str = ""
    ) -> None:
        self.max_attempts = max_attempts
        self.retry_base_delay = retry_base_delay
        self.namespace = namespace
        self.subscriptions: dict[str, Subscription] = {}
        # Called when a lost broker connection is back (the outbox relay's wake-up).
        self.on_reconnect: list[Callable[[], None]] = []
        self._counters: dict[tuple[str, Outcome], Any] = {}

    def _reconnected(self) -> None:
        for hook in self.on_reconnect:
            try:
                hook()
            except Exception:
                log.exception("reconnect_hook_failed")

    def name(self, plain: str) -> str:
        """Exchange/queue name, prefixed by the namespace that isolates parallel test runs."""
        return f"{self.namespace}.{plain}" if self.namespace else plain

    def subscribe(self, consumer: str, event_type: str, handler: Handler) -> Subscription:
        sub = Subscription(consumer, event_type, handler)
        if sub.queue in self.subscriptions:
            raise ValueError(f"queue {sub.queue} already has a consumer")
        self.subscriptions[sub.queue] = sub
        # Every series at 0 from the start: `increase()` then sees the first dead letter,
        # and dashboards and alerts find the series before anything has gone wrong.
        for outcome in Outcome:
            EVENTS_CONSUMED.labels(consumer, sub.queue, outcome.value)
        DEAD_LETTERS.labels(consumer, sub.queue)
        TRANSIENT_RETRIES.labels(consumer, sub.queue)
        return sub

    def backoff(self, attempt: int) -> float:
        """Delay before delivery number `attempt + 1`: base * 2^(attempt-1), capped at 5 min."""
        return min(self.retry_base_delay * (2 ** (attempt - 1)), 300.0)

    def _count(self, sub: Subscription, verdict: Verdict) -> Verdict:
        key = (sub.queue, verdict.outcome)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = EVENTS_CONSUMED.labels(
                sub.consumer, sub.queue, verdict.outcome.value
            )
        counter.inc()
        if verdict.outcome is Outcome.DEAD:
            DEAD_LETTERS.labels(sub.consumer, sub.queue).inc()
        return verdict

    async def dispatch(self, sub: Subscription, body: bytes, attempt: int) -> Verdict:
        """Run one delivery and decide: done, retry later, or dead-letter now."""
        envelope = self._parse(sub, body)
        if isinstance(envelope, Verdict):
            return self._count(sub, envelope)
        return self._count(sub, await self._run(sub, envelope, attempt))

    async def dispatch_many(
        self, sub: Subscription, deliveries: Sequence[tuple[bytes, int]]
    ) -> list[Verdict]:
        """Run deliveries that arrived together; one verdict each, in order.

        A handler with a `batch` method (the idempotent inbox handler) gets them all in one
        transaction. If that fails, each delivery runs again on its own, so only the one at
        fault is retried or dead-lettered.
        """
        batch = getattr(sub.handler, "batch", None)
        if batch is None or len(deliveries) < 2:
            return [await self.dispatch(sub, body, attempt) for body, attempt in deliveries]
        verdicts: list[Verdict | None] = [None] * len(deliveries)
        parsed: list[tuple[int, Envelope]] = []
        for position, (body, _) in enumerate(deliveries):
            envelope = self._parse(sub, body)
            if isinstance(envelope, Verdict):
                verdicts[position] = self._count(sub, envelope)
            else:
                parsed.append((position, envelope))
        alone = parsed
        if len(parsed) > 1:
            envelopes = [env for _, env in parsed]
            try:
                invalid = set(await self._until_available(sub, lambda: batch(envelopes)))
            except Exception as exc:
                log.info(
                    "batch_failed_one_by_one",
                    queue=sub.queue,
                    size=len(parsed),
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
            else:
                alone = []
                for n, (position, envelope) in enumerate(parsed):
                    if n in invalid:
                        alone.append((position, envelope))
                    else:
                        verdicts[position] = self._count(sub, Verdict(Outcome.DONE))
        for position, envelope in alone:
            verdicts[position] = self._count(
                sub, await self._run(sub, envelope, deliveries[position][1])
            )
        return verdicts  # type: ignore[return-value]

    @staticmethod
    def _parse(sub: Subscription, body: bytes) -> Envelope | Verdict:
        try:
            return Envelope.model_validate_json(body)
        except ValidationError as exc:
            log.warning("malformed_message", queue=sub.queue, error=str(exc)[:300])
            return Verdict(Outcome.DEAD, f"malformed: {str(exc)[:500]}")

    async def _until_available(self, sub: Subscription, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call` again, as long as it takes, while it fails because a dependency is
        unavailable (see `faults.is_transient`); such failures consume no attempt."""
        failures = 0
        while True:
            try:
                result = await call()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                TRANSIENT_RETRIES.labels(sub.consumer, sub.queue).inc()
                delay = transient_delay(failures, self.retry_base_delay)
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "dependency_unavailable",
                        queue=sub.queue,
                        failures=failures,
                        retry_in=round(delay, 2),
                        error=f"{type(exc).__name__}: {exc}"[:300],
                    )
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info("dependency_back", queue=sub.queue, failures=failures)
            return result

    async def _run(self, sub: Subscription, envelope: Envelope, attempt: int) -> Verdict:
        with within(envelope.traceparent):
            return await self._verdict(sub, envelope, attempt)

    async def _verdict(self, sub: Subscription, envelope: Envelope, attempt: int) -> Verdict:
        try:
            await self._until_available(sub, lambda: sub.handler(envelope))
        except MalformedMessage as exc:
            log.warning("malformed_message", queue=sub.queue, event_id=envelope.id, error=str(exc))
            return Verdict(Outcome.DEAD, f"malformed: {exc}")
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            if attempt >= self.max_attempts:
                log.error(
                    "dead_lettered",
                    queue=sub.queue,
                    event_id=envelope.id,
                    attempts=attempt,
                    error=error,
                )
                return Verdict(Outcome.DEAD, error)
            delay = self.backoff(attempt)
            log.warning(
                "handler_failed",
                queue=sub.queue,
                event_id=envelope.id,
                attempt=attempt,
                retry_in=delay,
                error=error,
            )
            return Verdict(Outcome.RETRY, error, delay)
        return Verdict(Outcome.DONE)

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect, declare exchanges and queues, start consuming subscriptions."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish and wait until the broker has them; raise if it could not take them."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """The first `limit` dead letters of `queue`, left where they are (`UnknownQueue`)."""

    @abc.abstractmethod
    async def dead_letter_counts(self, queues: Sequence[str]) -> dict[str, int | None]:
        """Dead letters per queue, read without consuming any; None where the broker has no
        such dead-letter queue (never created by asking)."""

    @abc.abstractmethod
    async def queue_depths(self, queues: Sequence[str]) -> dict[str, int]:
        """Events waiting in each queue, not yet handed to a consumer (consumer lag beyond
        what the consumers hold: RabbitMQ's ready messages, past their prefetch)."""

    @abc.abstractmethod
    async def replay(self, queue: str, select: Selection = None) -> int:
        """Move the selected dead letters back to their queue with a fresh attempt count."""

    @abc.abstractmethod
    async def purge(self, queue: str, select: Selection = None) -> int:
        """Delete the selected dead letters for good; how many went."""
