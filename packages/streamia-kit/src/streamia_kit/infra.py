"""Infrastructure adapters chosen by configuration: shared by all services in embedded mode."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamia_kit.config import ServiceSettings

# The adapters are imported where they are chosen: `streamia dlq` builds only a bus, and
# starts in a fraction of the time the web stack (auth, cache) takes to import.
if TYPE_CHECKING:
    from streamia_kit.auth import RevocationStore
    from streamia_kit.bus import EventBus
    from streamia_kit.cache import Cache
    from streamia_kit.idempotency import IdempotencyStore


def bus_from_settings(settings: ServiceSettings, namespace: str | None = None) -> EventBus:
    """The event bus the settings select: RabbitMQ with an AMQP URL, else the embedded one."""
    ns = settings.namespace if namespace is None else namespace
    bus_args: dict[str, Any] = dict(
        max_attempts=settings.max_delivery_attempts,
        retry_base_delay=settings.retry_base_delay_seconds,
        namespace=ns,
    )
    if settings.amqp_url:
        from streamia_kit.rabbitmq_bus import RabbitMQBus

        return RabbitMQBus(
            settings.amqp_url,
            prefetch=settings.prefetch,
            batch_size=settings.consumer_batch,
            linger=settings.consumer_linger_ms / 1000,
            **bus_args,
        )
    from streamia_kit.inprocess_bus import InProcessBus

    return InProcessBus(
        settings.data_dir / "bus.sqlite",
        batch_size=settings.consumer_batch,
        linger=settings.consumer_linger_ms / 1000,
        **bus_args,
    )


@dataclass
class Infrastructure:
    """The bus, cache, revocation and idempotency stores and Redis client one process uses."""

    bus: EventBus
    cache: Cache
    revocations: RevocationStore
    idempotency: IdempotencyStore
    redis: Any | None = None
    namespace: str = ""
    started: bool = field(default=False, init=False)

    @classmethod
    def from_settings(
        cls, settings: ServiceSettings, namespace: str | None = None
    ) -> Infrastructure:
        from streamia_kit.auth import RedisRevocationStore, SqliteRevocationStore
        from streamia_kit.cache import MemoryCache, RedisCache
        from streamia_kit.idempotency import RedisIdempotencyStore, SqliteIdempotencyStore

        ns = settings.namespace if namespace is None else namespace
        bus = bus_from_settings(settings, ns)
        redis = None
        cache: Cache
        revocations: RevocationStore
        idempotency: IdempotencyStore
        if settings.redis_url:
            from redis.asyncio import Redis

            # Bounded: a black-holed Redis fails a call in seconds instead of hanging it.
            redis = Redis.from_url(
                settings.redis_url,
                decode_responses=False,
                socket_connect_timeout=1.0,
                socket_timeout=2.0,
            )
            prefix = f"{ns}:" if ns else ""
            cache = RedisCache(redis, prefix=prefix)
            revocations = RedisRevocationStore(
                redis, namespace=ns, grace_seconds=settings.revocation_grace_seconds
            )
            idempotency = RedisIdempotencyStore(redis, namespace=ns)
        else:
            cache = MemoryCache()
            revocations = SqliteRevocationStore(settings.data_dir / "revocations.sqlite")
            idempotency = SqliteIdempotencyStore(settings.data_dir / "idempotency.sqlite")
        return cls(
            bus=bus,
            cache=cache,
            revocations=revocations,
            idempotency=idempotency,
            redis=redis,
            namespace=ns,
        )

    async def start(self) -> None:
        """Start consuming; call once every service in the process has subscribed."""
        await self.bus.start()
        await self.revocations.start()
        self.started = True

    async def close(self) -> None:
        await self.bus.close()
        await self.idempotency.close()
        await self.revocations.close()
        if self.redis is not None:
            await self.redis.aclose()


def random_namespace() -> str:
    return "t" + secrets.token_hex(4)
