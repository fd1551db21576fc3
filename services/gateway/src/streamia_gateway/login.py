"""The routes that check a password: a few at a time per IP, limited per IP + account, per
account and per IP across accounts, each attempt reserved before the password is checked."""

from __future__ import annotations

from collections import Counter

import orjson

from streamia_gateway.config import GatewaySettings
from streamia_gateway.exchange import ClientGone, Exchange
from streamia_gateway.metrics import GatewayMetrics
from streamia_gateway.proxy import Proxy, has_body
from streamia_gateway.ratelimit import RateLimits
from streamia_gateway.routing import Upstream
from streamia_kit.auth import Identity

TOO_MANY_LOGINS = "Too many login attempts, please try again later."
TOO_MANY_AT_ONCE = "Too many requests at once, please try again shortly."
LOGIN_PATH = "/api/users/login"
# Where the users service checks a password; a wrong one answers code `invalid_credentials`.
# Login names its account in the body; the others act on the caller's own account.
_LOGIN = ("POST", LOGIN_PATH)
_ACCOUNT_CHECKS = frozenset({("PUT", "/api/users/change-password"), ("DELETE", "/api/users/me")})
_HASHING = frozenset({("POST", "/api/users/register"), ("POST", "/api/users/reset-password")})
_WRONG_PASSWORD = "invalid_credentials"


class LoginLimiter:
    """Forwards the password-checking routes within the limits of their IP and account."""

    def __init__(
        self,
        settings: GatewaySettings,
        limits: RateLimits,
        proxy: Proxy,
        metrics: GatewayMetrics,
    ) -> None:
        self._limits = limits
        self._proxy = proxy
        self._metrics = metrics
        self._max_body = settings.login_body_max_bytes
        self._per_ip = settings.credential_concurrency_per_ip
        self._timeout = settings.credential_timeout_seconds
        # In flight per IP, in this replica: the cap protects this replica's upstream pool.
        self._in_flight: Counter[str] = Counter()

    def applies(self, ex: Exchange) -> bool:
        """Does this request make the users service hash or check a password?"""
        route = (ex.method, ex.path.rstrip("/"))
        return route == _LOGIN or route in _ACCOUNT_CHECKS or route in _HASHING

    async def forward(
        self, ex: Exchange, upstream: Upstream, identity: Identity | None, keep_authorization: bool
    ) -> None:
        """Forward within the per-IP concurrency cap; count and refund password checks."""
        ip = ex.client_ip
        if self._in_flight[ip] >= self._per_ip:
            self._metrics.rate_limited.labels("credentials_concurrency").inc()
            await ex.error(429, TOO_MANY_AT_ONCE, "rate_limited", [(b"retry-after", b"1")])
            return
        self._in_flight[ip] += 1
        try:
            await self._forward(ex, upstream, identity, keep_authorization)
        finally:
            self._in_flight[ip] -= 1
            if not self._in_flight[ip]:
                del self._in_flight[ip]

    async def _forward(
        self, ex: Exchange, upstream: Upstream, identity: Identity | None, keep_authorization: bool
    ) -> None:
        route = (ex.method, ex.path.rstrip("/"))
        body: bytes | None = None
        account: str | None = None  # whose password is checked, when one is
        if route == _LOGIN:
            try:
                body = await _small_body(ex, self._max_body)
            except ClientGone:
                return
            if body is None:
                await ex.error(413, "Request body too large", "payload_too_large")
                return
            account = _email_from(body)
        elif route in _ACCOUNT_CHECKS and identity is not None:
            account = identity.email.lower()
        if account is None or not self._limits.enabled:
            await self._proxy.forward(
                ex, upstream, identity, keep_authorization, body, headers_within=self._timeout
            )
            return
        verdict = await self._limits.reserve_login(ip := ex.client_ip, account)
        if not verdict.allowed:
            self._metrics.rate_limited.labels("login").inc()
            ex.ratelimit = []
            await ex.error(429, TOO_MANY_LOGINS, "rate_limited", verdict.refusal_headers())
            return
        ex.ratelimit = verdict.headers
        limits = self._limits

        async def settle(status: int, payload: bytes | None) -> None:
            if 200 <= status < 300:
                ex.ratelimit = (await limits.login_succeeded(ip, account)).headers
            elif status in (400, 401) and _code(payload) == _WRONG_PASSWORD:
                await limits.login_failed(ip)

        await self._proxy.forward(
            ex, upstream, identity, keep_authorization, body, settle, headers_within=self._timeout
        )


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


def _code(payload: bytes | None) -> str:
    """The `code` of an API.md error body ("" for anything else)."""
    try:
        data = orjson.loads(payload or b"")
    except orjson.JSONDecodeError:
        return ""
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else ""
