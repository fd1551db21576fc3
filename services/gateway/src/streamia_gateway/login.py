"""Login limiting: failed logins count per IP + email, so guessing a password gets slow."""

from __future__ import annotations

import orjson

from streamia_gateway.exchange import ClientGone, Exchange
from streamia_gateway.metrics import GatewayMetrics
from streamia_gateway.proxy import Proxy, has_body
from streamia_gateway.ratelimit import RateLimits
from streamia_gateway.routing import Upstream
from streamia_kit.auth import Identity

TOO_MANY_LOGINS = "Too many login attempts, please try again later."
LOGIN_PATH = "/api/users/login"


class LoginLimiter:
    """Forwards logins, refusing an IP + email that failed too often lately."""

    def __init__(
        self, limits: RateLimits, proxy: Proxy, metrics: GatewayMetrics, max_body: int
    ) -> None:
        self._limits = limits
        self._proxy = proxy
        self._metrics = metrics
        self._max_body = max_body

    def applies(self, ex: Exchange) -> bool:
        """Is this a login attempt that the limit watches?"""
        return self._limits.enabled and ex.method == "POST" and ex.path.rstrip("/") == LOGIN_PATH

    async def forward(
        self, ex: Exchange, upstream: Upstream, identity: Identity | None, keep_authorization: bool
    ) -> None:
        """Forward a login, counting it against the IP + email limit only if it fails."""
        try:
            body = await _small_body(ex, self._max_body)
        except ClientGone:
            return
        if body is None:
            await ex.error(413, "Request body too large", "payload_too_large")
            return
        email = _email_from(body)
        verdict = await self._limits.check_login(ex.client_ip, email)
        if not verdict.allowed:
            self._metrics.rate_limited.labels("login").inc()
            ex.ratelimit = []
            await ex.error(429, TOO_MANY_LOGINS, "rate_limited", verdict.refusal_headers())
            return
        ex.ratelimit = verdict.headers
        limits = self._limits

        async def count_failure(status: int) -> None:
            if status == 401:
                ex.ratelimit = (await limits.fail_login(ex.client_ip, email)).headers

        await self._proxy.forward(ex, upstream, identity, keep_authorization, body, count_failure)


async def _small_body(ex: Exchange, cap: int) -> bytes | None:
    """The whole request body, or None when it is larger than `cap` bytes."""
    length = ex.headers.get(b"content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        return None
    if not has_body(ex.headers):
        return b""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await ex.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _email_from(body: bytes) -> str:
    """The lowercased email of a login body, or "" when there is none."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    email = data.get("email") if isinstance(data, dict) else None
    return email.strip().lower() if isinstance(email, str) else ""
