"""The per-user limit on progress writes: a moving window (exact at any instant, so a burst
that straddles a clock boundary still gets no more than the limit), in Redis shared by every
replica in distributed mode, in-process embedded.

Every viewer writes every ~10 s, so this is asked on every write. In Redis, the checks that
arrive while one round trip is in flight share the next one: one script call judges the whole
batch, hit by hit, atomically (the group commit of the limiter; see `group_commit.py`). A
lone write is judged at once, so batching adds no delay Redis was not already imposing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter

from streamia_kit.batching import Batcher
from streamia_kit.breaker import CircuitBreaker
from streamia_kit.errors import StreamiaError
from streamia_kit.ratelimit import SweptMemoryStorage

log = structlog.get_logger("streamia.playback.ratelimit")

TOO_MANY_WRITES = "Too many progress updates, please slow down."
# A slow Redis must not slow every progress write down: past this, the writes go through, and
# for RETRY_SECONDS after a failure they go through without asking (a breaker).
STORAGE_TIMEOUT_SECONDS = 2.0
RETRY_SECONDS = 1.0

# KEYS: one window per hit (a key may repeat: its hits are judged in order); ARGV: now, the
# limit, the window (seconds). A window is the list of its latest `limit` hit times, newest
# first: a hit is refused while the `limit`-th newest is still inside the window, and then the
# answer is that time (a slot frees when it leaves); an accepted hit answers ''.
_JUDGE = """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local ttl = math.ceil(window)
local verdicts = {}
for i, key in ipairs(KEYS) do
  local edge = redis.call('lindex', key, limit - 1)
  if edge and tonumber(edge) > now - window then
    verdicts[i] = edge
  else
    redis.call('lpush', key, ARGV[1])
    redis.call('ltrim', key, 0, limit - 1)
    redis.call('expire', key, ttl)
    verdicts[i] = ''
  end
end
return verdicts
"""

# A hit's verdict: None when accepted, else the seconds until the window has room again.
Verdict = float | None


class InProcessWindows:
    """The moving windows of one process (embedded mode): limits' moving window over the kit's
    in-process storage, which drops idle users once a second rather than on every hit."""

    def __init__(self, item: RateLimitItem) -> None:
        self._item = item
        self._limiter = MovingWindowRateLimiter(SweptMemoryStorage(wrap_exceptions=True))

    async def judge(self, user_id: str) -> Verdict:
        if await self._limiter.hit(self._item, user_id):
            return None
        # A refused hit took no slot; the window has room when its oldest hit leaves it.
        reset_at, _ = await self._limiter.get_window_stats(self._item, user_id)
        return max(0.0, reset_at - time.time())


class RedisWindows:
    """The moving windows in Redis, judged in batches: one script call per round trip."""

    def __init__(self, redis: Any, key_prefix: str, limit: int, window: float) -> None:
        self._script = redis.register_script(_JUDGE)
        self._prefix = key_prefix
        self._args = (limit, window)
        self._window = window
        self._breaker = CircuitBreaker.on_first_failure("progress_rate_limit", RETRY_SECONDS)
        self._batches: Batcher[str, Verdict] = Batcher(self._send)

    async def judge(self, user_id: str) -> Verdict:
        return await self._batches.submit(self._prefix + user_id)

    async def _send(self, keys: Sequence[str]) -> list[Verdict]:
        now = time.time()

        async def call() -> list[bytes]:
            async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
                return await self._script(keys=list(keys), args=(repr(now), *self._args))

        # No answer from Redis (down, slow, refused by the breaker): every write goes through.
        _, answer = await self._breaker.attempt(call, _unavailable)
        verdicts = answer or []
        return [
            float(verdicts[i]) + self._window - now if i < len(verdicts) and verdicts[i] else None
            for i in range(len(keys))
        ]


def _unavailable(exc: Exception) -> None:
    log.warning("rate_limit_storage_unavailable", error=f"{type(exc).__name__}: {exc}")


class WriteLimiter:
    """Counts one user's progress writes; a storage outage lets writes through, not fails them."""

    def __init__(self, limit: str, redis: Any | None, namespace: str) -> None:
        self.item = parse(limit)
        window = float(self.item.get_expiry())
        self.windows: InProcessWindows | RedisWindows
        if redis is None:
            self.windows = InProcessWindows(self.item)
        else:
            prefix = f"{namespace}streamia:playback:ratelimit:{self.item.amount}/{window:g}s:"
            self.windows = RedisWindows(redis, prefix, self.item.amount, window)

    async def hit(self, user_id: str) -> None:
        """Count one write, or raise 429 with `Retry-After` when the user is over the limit."""
        wait = await self.windows.judge(user_id)
        if wait is None:
            return
        retry = str(max(1, math.ceil(wait)))
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
