"""The per-user limit on progress writes (`limits`, moving window: exact at any instant, so a
burst that straddles a clock boundary still gets no more than the limit): Redis-backed counters
shared by every replica in distributed mode, in-process ones embedded."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import structlog
from limits import parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from streamia_kit.errors import StreamiaError

log = structlog.get_logger("streamia.playback.ratelimit")

TOO_MANY_WRITES = "Too many progress updates, please slow down."
# A slow Redis must not slow every progress write down: past this, the write goes through.
STORAGE_TIMEOUT_SECONDS = 2.0


def build_storage(redis: Any | None, namespace: str) -> Storage:
    if redis is None:
        return MemoryStorage(wrap_exceptions=True)
    return RedisStorage(
        "async+redis://",
        wrap_exceptions=True,
        implementation="redispy",
        key_prefix=f"{namespace}streamia:playback:ratelimit",
        connection_pool=redis.connection_pool,
    )


class WriteLimiter:
    """Counts one user's progress writes; a storage outage lets writes through, not fails them."""

    def __init__(self, limit: str, storage: Storage) -> None:
        self.item = parse(limit)
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, user_id: str) -> None:
        """Count one write, or raise 429 with `Retry-After` when the user is over the limit."""
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
                if await self._limiter.hit(self.item, "progress", user_id):
                    return
                reset_at, _ = await self._limiter.get_window_stats(self.item, "progress", user_id)
        except (StorageError, TimeoutError) as exc:
            log.warning("rate_limit_storage_unavailable", error=f"{type(exc).__name__}: {exc}")
            return
        retry = str(max(1, math.ceil(reset_at - time.time())))
        raise StreamiaError(
            TOO_MANY_WRITES,
            status=429,
            code="rate_limited",
            headers={
                "Retry-After": retry,
                "RateLimit-Limit": str(self.item.amount),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": retry,
            },
        )
