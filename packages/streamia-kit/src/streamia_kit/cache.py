"""Cache port: Redis in distributed mode, in process in embedded mode; single-flight loads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import structlog

log = structlog.get_logger("streamia.cache")


class Cache(Protocol):
    async def get(self, key: str) -> Any | None: ...
    async def set(self, key: str, value: Any, ttl: float) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def ping(self) -> bool: ...


class MemoryCache:
    """A TTL dict for embedded mode (every service lives in the same process)."""

    def __init__(self, max_items: int = 50_000) -> None:
        self._items: dict[str, tuple[float, Any]] = {}
        self._max = max_items

    async def get(self, key: str) -> Any | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return item[1]

    async def set(self, key: str, value: Any, ttl: float) -> None:
        if len(self._items) >= self._max:
            now = time.monotonic()
            self._items = {k: v for k, v in self._items.items() if v[0] > now}
            if len(self._items) >= self._max:
                self._items.clear()
        self._items[key] = (time.monotonic() + ttl, value)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._items.pop(key, None)

    async def ping(self) -> bool:
        return True


class RedisCache:
    """JSON values in Redis with a TTL; `prefix` keeps parallel test runs apart."""

    def __init__(self, redis: Any, prefix: str = "") -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> Any | None:
        raw = await self._redis.get(self._prefix + key)
        return None if raw is None else orjson.loads(raw)

    async def set(self, key: str, value: Any, ttl: float) -> None:
        await self._redis.set(self._prefix + key, orjson.dumps(value), px=int(ttl * 1000))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._redis.delete(*(self._prefix + k for k in keys))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False


class SingleFlight:
    """Concurrent misses for one key share a single load (per process)."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    async def do(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        existing = self._inflight.get(key)
        if existing is not None:
            return await asyncio.shield(existing)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved when nobody else waits
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(key, None)


async def cache_aside(
    cache: Cache, flight: SingleFlight, key: str, ttl: float, load: Callable[[], Awaitable[Any]]
) -> Any:
    """Return the cached value, or load it once (however many callers miss together).
    A cache that is down is skipped: the value is loaded, not the request failed."""
    try:
        cached = await cache.get(key)
    except Exception as exc:
        log.warning("cache_unavailable", key=key, error=f"{type(exc).__name__}: {exc}"[:300])
        return await load()
    if cached is not None:
        return cached

    async def fill() -> Any:
        value = await load()
        if value is not None:
            try:
                await cache.set(key, value, ttl)
            except Exception as exc:
                log.warning(
                    "cache_unavailable", key=key, error=f"{type(exc).__name__}: {exc}"[:300]
                )
        return value

    return await flight.do(key, fill)
