"""Cache port: Redis in distributed mode, in process in embedded mode; single-flight loads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import structlog
from prometheus_client import Counter

from streamia_kit.breaker import CircuitBreaker
from streamia_kit.faults import being_cancelled, cancellable

log = structlog.get_logger("streamia.cache")

# A cache call that has not finished within this is given up (and counted as a failure, so
# the breaker skips the next calls): the cache is only ever a shortcut. Redis answers in
# well under a millisecond; its client's own socket timeout (2 s) let a black-holed Redis
# hold every request that long, and a writer that caches under a row lock (the ratings
# summary) held the lock that long: the other writers of that movie hit the statement
# timeout and answered 503 database_unavailable.
CALL_TIMEOUT_SECONDS = 0.25

CACHE_ERRORS = Counter(
    "streamia_cache_errors_total", "Cache calls that failed or were skipped (Redis down)"
)


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
    """JSON values in Redis with a TTL; `prefix` keeps parallel test runs apart.

    Best effort, never an error: while Redis is unreachable or slower than
    `CALL_TIMEOUT_SECONDS` a read is a miss (the caller loads from its database) and a write
    is skipped, and a breaker that opens on the first failure spares the next calls the wait
    for `retry_seconds`. A key whose write or delete did not happen is deleted before the
    next successful call, so this process never reads a stale value once Redis is back (the
    TTL bounds it for the others).
    """

    def __init__(self, redis: Any, prefix: str = "", retry_seconds: float = 1.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._breaker = CircuitBreaker.on_first_failure("cache", retry_seconds)
        self._stale: set[str] = set()

    async def _call(self, command: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        """(True, result) or, when Redis is down or the breaker open, (False, None)."""

        async def run() -> Any:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                if self._stale:
                    keys = list(self._stale)
                    await self._redis.delete(*keys)
                    self._stale.difference_update(keys)
                return await command()

        # In a task of its own: a cancellation redis-py swallowed made a request cancelled
        # at its deadline run on as if it had not been (`cancellable`).
        done, result = await cancellable(self._breaker.attempt(run, _unavailable))
        if not done:
            CACHE_ERRORS.inc()
        return done, result

    async def get(self, key: str) -> Any | None:
        _, raw = await self._call(lambda: self._redis.get(self._prefix + key))
        return None if raw is None else orjson.loads(raw)

    async def set(self, key: str, value: Any, ttl: float) -> None:
        full = self._prefix + key
        done, _ = await self._call(
            lambda: self._redis.set(full, orjson.dumps(value), px=int(ttl * 1000))
        )
        if not done:  # the value it should have replaced may still be there
            self._stale.add(full)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        full = [self._prefix + k for k in keys]
        done, _ = await self._call(lambda: self._redis.delete(*full))
        if not done:
            self._stale.update(full)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False


def _unavailable(exc: Exception) -> None:
    log.warning("cache_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])


class SingleFlight:
    """Concurrent misses for one key share a single load (per process).

    The load runs in the first caller's task, so it ends with that caller: when the first
    caller is cancelled (its request's deadline passed, its client left), the callers
    waiting on it are not, and one of them starts the load again. Handing them the
    leader's CancelledError instead ended their requests with an exception no handler
    renders: uvicorn's bare `500 Internal Server Error` (seen under load on
    `GET /api/movies/:id`)."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    def loading(self, key: str) -> bool:
        """Is a load of `key` running now?"""
        return key in self._inflight

    async def do(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        while (existing := self._inflight.get(key)) is not None:
            try:
                return await asyncio.shield(existing)
            except asyncio.CancelledError:
                if not existing.cancelled() or being_cancelled():
                    raise  # this caller itself is being cancelled
                # The leader was cancelled, not this caller: load again (or join whoever
                # already does).
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved when nobody else waits
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]


async def cache_aside(
    cache: Cache, flight: SingleFlight, key: str, ttl: float, load: Callable[[], Awaitable[Any]]
) -> Any:
    """Return the cached value, or load it once (however many callers miss together).
    A cache that is down reads as a miss: the value is loaded, not the request failed."""
    cached = await cache.get(key)
    if cached is not None:
        return cached

    async def fill() -> Any:
        value = await load()
        if value is not None:
            await cache.set(key, value, ttl)
        return value

    return await flight.do(key, fill)
