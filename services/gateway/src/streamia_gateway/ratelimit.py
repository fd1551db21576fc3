"""Rate limits: global per IP (a sliding window counter: one Lua call in Redis, two dicts in
memory); password checks on `limits` per IP + account (reserved before the check), per account
from any IP, and failures per IP across accounts (moving windows)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from streamia_gateway.config import GatewaySettings
from streamia_kit.batching import Batcher
from streamia_kit.ratelimit import SweptMemoryStorage

log = structlog.get_logger("streamia.gateway.ratelimit")

# After a storage failure the limits stay open this long without asking the storage: a hung
# Redis costs one request its timeout per pause, not every request its timeouts (a login asks
# four times, 1 s each).
STORAGE_PAUSE_SECONDS = 1.0

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may pass, and the RateLimit-* headers that describe the limit."""

    allowed: bool
    headers: Headers
    reset_seconds: int = 0

    @classmethod
    def unknown(cls) -> Verdict:
        return cls(True, [])

    def refusal_headers(self) -> Headers:
        """The headers of a 429: the RateLimit-* ones plus Retry-After."""
        return [*self.headers, (b"retry-after", str(max(1, self.reset_seconds)).encode())]


def build_storage(settings: GatewaySettings, redis: aioredis.Redis | None) -> Storage:
    """Redis-backed counters shared by every gateway replica, or in-process ones."""
    if redis is None:
        return SweptMemoryStorage(wrap_exceptions=True)
    uri = "async+" + settings.redis_url if settings.redis_url else "async+redis://"
    return RedisStorage(
        uri,
        wrap_exceptions=True,
        implementation="redispy",
        key_prefix=settings.limiter_key_prefix(),
        # The gateway's own pool, shared with revocations and /ready (limits' options are
        # typed as scalars, but redispy takes the pool through them).
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )


# The global limit in Redis, counted as limits' sliding window counter does, for a batch of
# hits in one call that also returns what the RateLimit-* headers need (limits takes two calls
# a hit: hit, then window stats). KEYS: for each hit, its identifier's previous and current
# window counters (an identifier may repeat: its hits are judged in order); ARGV: the limit,
# the window and the time into it (ms). Answers allowed, previous, current for each hit.
_SLIDING_WINDOW_HITS = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local left = window - tonumber(ARGV[3])
local out = {}
for i = 1, #KEYS, 2 do
  local previous = tonumber(redis.call('get', KEYS[i]) or '0')
  local current = tonumber(redis.call('get', KEYS[i + 1]) or '0')
  local allowed = 0
  if math.floor(previous * left / window) + current < limit then
    current = redis.call('incr', KEYS[i + 1])
    if current == 1 then
      redis.call('pexpire', KEYS[i + 1], 2 * window)
    end
    allowed = 1
  end
  out[#out + 1] = allowed
  out[#out + 1] = previous
  out[#out + 1] = current
end
return out
"""


class RedisSlidingWindow:
    """A sliding window counter per identifier in Redis, shared by every gateway replica.

    The hits that arrive while one round trip is in flight are judged together in the next
    (kit `Batcher`): one script call for all of them, where a call per hit cost the gateway
    a fifth of its main thread (redis-py's ~50 µs a call) in the platform's write bench. A
    batch spans many identifiers' keys: one Redis, not a cluster (as playback's limiter).
    """

    def __init__(self, redis: aioredis.Redis, key_prefix: str, item: RateLimitItem) -> None:
        self._script = redis.register_script(_SLIDING_WINDOW_HITS)
        self._item = item
        self._window = item.get_expiry()
        self._base = f"{key_prefix}:global/{item.amount}/{self._window}/"
        self._batches: Batcher[str, Verdict] = Batcher(self._send)

    async def hit(self, identifier: str) -> Verdict:
        return await self._batches.submit(identifier)

    async def _send(self, identifiers: Sequence[str]) -> list[Verdict]:
        window = self._window
        index, elapsed = divmod(time.time(), window)
        previous_suffix, current_suffix = f"/{int(index) - 1}", f"/{int(index)}"
        keys: list[str] = []
        for identifier in identifiers:
            base = self._base + identifier
            keys += (base + previous_suffix, base + current_suffix)
        answer = await self._script(
            keys=keys, args=[self._item.amount, window * 1000, int(elapsed * 1000)]
        )
        return [
            _sliding_verdict(self._item, bool(answer[i]), answer[i + 1], answer[i + 2], elapsed)
            for i in range(0, len(answer), 3)
        ]

    async def close(self) -> None:
        await self._batches.close()


class MemorySlidingWindow:
    """The same counter in this process for the one global limit: this window's counts and
    the previous window's, a dict each, swapped as a window ends. A hit is two lookups and a
    store, with nothing to expire or sweep (the dicts go whole). Over limits' storage the same
    counter took 8 µs a hit and its sweep walked every key; here 2 µs."""

    def __init__(self, item: RateLimitItem) -> None:
        self._item = item
        self._window = item.get_expiry()
        self._index = 0  # the current window's number (its start // the window)
        self._previous: dict[str, int] = {}
        self._current: dict[str, int] = {}

    async def hit(self, identifier: str) -> Verdict:
        return self.hit_now(identifier, time.time())

    async def close(self) -> None:
        pass

    def hit_now(self, identifier: str, now: float) -> Verdict:
        item, window = self._item, self._window
        index, elapsed = divmod(now, window)
        if index != self._index:
            # The next window: this one's counts weigh in as the previous ones, once.
            self._previous = self._current if index == self._index + 1 else {}
            self._current = {}
            self._index = int(index)
        previous = self._previous.get(identifier, 0)
        current = self._current.get(identifier, 0)
        allowed = math.floor(previous * (window - elapsed) / window) + current < item.amount
        if allowed:
            current += 1
            self._current[identifier] = current
        return _sliding_verdict(item, allowed, previous, current, elapsed)


def _sliding_verdict(
    item: RateLimitItem, allowed: bool, previous: int, current: int, elapsed: float
) -> Verdict:
    """The verdict and RateLimit-* headers of a sliding window counter `elapsed` seconds into
    its current window, after the hit."""
    window = item.get_expiry()
    left = window - elapsed
    weighted = math.floor(previous * left / window) + current
    # When the count next drops by one: a previous hit weighs out, or the window ends.
    reset_in = max(0, math.ceil(left % (window / previous) if previous else left))
    headers = [
        (b"ratelimit-limit", str(item.amount).encode()),
        (b"ratelimit-remaining", str(max(0, item.amount - weighted)).encode()),
        (b"ratelimit-reset", str(reset_in).encode()),
    ]
    return Verdict(allowed, headers, reset_in)


class RateLimits:
    """The gateway's limits; a storage outage lets traffic through rather than failing it,
    and for `STORAGE_PAUSE_SECONDS` after a failure the storage is not asked at all.

    Password checks are never left unlimited, though: with Redis as the storage they are also
    counted in this process, and a check either count refuses is refused. Redis shares the
    count between the replicas; the local one still holds for this replica when Redis times
    out or is down (a busy machine's Redis timeouts let 10 concurrent guesses through where
    the limit is 5)."""

    def __init__(
        self, settings: GatewaySettings, storage: Storage, redis: aioredis.Redis | None = None
    ) -> None:
        self.enabled = settings.rate_limits_enabled
        self.global_limit: RateLimitItem = parse(settings.rate_limit_global)
        self.login_limit: RateLimitItem = parse(settings.rate_limit_login)
        self.account_limit: RateLimitItem = parse(settings.rate_limit_login_account)
        self.spray_limit: RateLimitItem = parse(settings.rate_limit_login_ip)
        self._limiter = MovingWindowRateLimiter(storage)
        self._local = (
            MovingWindowRateLimiter(SweptMemoryStorage(wrap_exceptions=True))
            if redis is not None
            else None
        )
        # Every request counts against the global limit: a sliding window counter costs two
        # counters per IP, O(1), where a moving window keeps (and expires) one entry per
        # request. It may admit a little more or less than the limit near a window's edge,
        # which is fine for a flood guard; the login limits stay exact moving windows.
        self._global: RedisSlidingWindow | MemorySlidingWindow
        if redis is not None:
            self._global = RedisSlidingWindow(
                redis, settings.limiter_key_prefix(), self.global_limit
            )
        else:
            self._global = MemorySlidingWindow(self.global_limit)
        self._paused_until = 0.0

    def _paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def _storage_failed(self, exc: StorageError | RedisError) -> None:
        if not self._paused():
            log.warning("rate_limit_storage_unavailable", error=str(exc))
        self._paused_until = time.monotonic() + STORAGE_PAUSE_SECONDS

    async def close(self) -> None:
        """Stop judging (at shutdown): a batch in flight is cancelled."""
        await self._global.close()

    async def hit_global(self, client_ip: str) -> Verdict:
        """Count one request from `client_ip` against the global limit."""
        if self._paused():
            return Verdict.unknown()
        try:
            return await self._global.hit(client_ip)
        except (StorageError, RedisError) as exc:
            self._storage_failed(exc)
            return Verdict.unknown()

    async def reserve_login(self, client_ip: str, account: str) -> Verdict:
        """Take one password check for this IP + account and for the account from anywhere,
        before it is made: each hit is atomic, so concurrent attempts cannot all slip past the
        limit. Refused (nothing more taken) when this IP failed too often across accounts."""
        if self._local is not None:
            local = await self._reserve(self._local, client_ip, account)
            if not local.allowed:
                return local
        else:
            local = Verdict.unknown()
        if self._paused():
            return local
        try:
            return await self._reserve(self._limiter, client_ip, account)
        except StorageError as exc:
            self._storage_failed(exc)
            return local

    async def _reserve(
        self, limiter: MovingWindowRateLimiter, client_ip: str, account: str
    ) -> Verdict:
        if not await limiter.test(self.spray_limit, "spray", client_ip):
            return await self._verdict(False, self.spray_limit, "spray", client_ip, limiter=limiter)
        if not await limiter.hit(self.login_limit, "login", client_ip, account):
            return await self._verdict(
                False, self.login_limit, "login", client_ip, account, limiter=limiter
            )
        if not await limiter.hit(self.account_limit, "account", account):
            return await self._verdict(
                False, self.account_limit, "account", account, limiter=limiter
            )
        return await self._verdict(
            True, self.login_limit, "login", client_ip, account, limiter=limiter
        )

    async def login_failed(self, client_ip: str) -> None:
        """Count a wrong password against the IP, whichever account it tried."""
        if self._local is not None:
            await self._local.hit(self.spray_limit, "spray", client_ip)
        if self._paused():
            return
        try:
            await self._limiter.hit(self.spray_limit, "spray", client_ip)
        except StorageError as exc:
            self._storage_failed(exc)

    async def login_succeeded(self, client_ip: str, account: str) -> Verdict:
        """The password was right: give back what was reserved for this IP + account and for
        the account (only a proven password refunds, so nothing else can reset a count)."""
        if self._local is not None:
            await self._local.clear(self.login_limit, "login", client_ip, account)
            await self._local.clear(self.account_limit, "account", account)
        if self._paused():
            return Verdict.unknown()
        try:
            await self._limiter.clear(self.login_limit, "login", client_ip, account)
            await self._limiter.clear(self.account_limit, "account", account)
            return await self._verdict(True, self.login_limit, "login", client_ip, account)
        except StorageError as exc:
            self._storage_failed(exc)
            return Verdict.unknown()

    async def _verdict(
        self,
        allowed: bool,
        item: RateLimitItem,
        *identifiers: str,
        limiter: RateLimiter | None = None,
    ) -> Verdict:
        reset_at, remaining = await (limiter or self._limiter).get_window_stats(item, *identifiers)
        reset_in = max(0, math.ceil(reset_at - time.time()))
        headers = [
            (b"ratelimit-limit", str(item.amount).encode()),
            (b"ratelimit-remaining", str(max(0, remaining)).encode()),
            (b"ratelimit-reset", str(reset_in).encode()),
        ]
        return Verdict(allowed, headers, reset_in)
