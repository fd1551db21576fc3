"""Rate limits on `limits` (moving window): global per IP, failed logins per IP + email."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from streamia_gateway.config import GatewaySettings

log = structlog.get_logger("streamia.gateway.ratelimit")

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
        return MemoryStorage(wrap_exceptions=True)
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


class RateLimits:
    """The gateway's two limits; a storage outage lets traffic through rather than failing it."""

    def __init__(self, settings: GatewaySettings, storage: Storage) -> None:
        self.enabled = settings.rate_limits_enabled
        self.global_limit: RateLimitItem = parse(settings.rate_limit_global)
        self.login_limit: RateLimitItem = parse(settings.rate_limit_login)
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit_global(self, client_ip: str) -> Verdict:
        """Count one request from `client_ip` against the global limit."""
        try:
            allowed = await self._limiter.hit(self.global_limit, "global", client_ip)
            return await self._verdict(allowed, self.global_limit, "global", client_ip)
        except StorageError as exc:
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return Verdict.unknown()

    async def check_login(self, client_ip: str, email: str) -> Verdict:
        """May this IP try to log in as `email` again? Does not count the attempt."""
        try:
            allowed = await self._limiter.test(self.login_limit, "login", client_ip, email)
            return await self._verdict(allowed, self.login_limit, "login", client_ip, email)
        except StorageError as exc:
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return Verdict.unknown()

    async def fail_login(self, client_ip: str, email: str) -> Verdict:
        """Count one failed login for this IP + email."""
        try:
            await self._limiter.hit(self.login_limit, "login", client_ip, email)
            return await self._verdict(True, self.login_limit, "login", client_ip, email)
        except StorageError as exc:
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return Verdict.unknown()

    async def _verdict(self, allowed: bool, item: RateLimitItem, *identifiers: str) -> Verdict:
        reset_at, remaining = await self._limiter.get_window_stats(item, *identifiers)
        reset_in = max(0, math.ceil(reset_at - time.time()))
        headers = [
            (b"ratelimit-limit", str(item.amount).encode()),
            (b"ratelimit-remaining", str(max(0, remaining)).encode()),
            (b"ratelimit-reset", str(reset_in).encode()),
        ]
        return Verdict(allowed, headers, reset_in)
