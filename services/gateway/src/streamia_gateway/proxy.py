"""Forwarding to an upstream: streamed both ways, behind that upstream's circuit breaker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
import structlog
from yarl import URL

from streamia_gateway.config import GatewaySettings
from streamia_gateway.exchange import ClientGone, Exchange, Headers, Receive
from streamia_gateway.routing import Upstream
from streamia_kit.auth import Identity
from streamia_kit.breaker import CircuitBreaker, State
from streamia_kit.deadlines import DEADLINE_HEADER
from streamia_kit.middleware import ROUTE_HEADER
from streamia_kit.telemetry import Tracing, current_traceparent, untraced

log = structlog.get_logger("streamia.gateway.proxy")

# Hop-by-hop headers (RFC 9110 §7.6.1) and ones the gateway sets itself.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_REQUEST_DROP = _HOP_BY_HOP | {
    b"host",
    b"expect",
    b"x-request-id",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    # The gateway's own span goes upstream instead (tracing.py decides what a client's means).
    b"traceparent",
    b"tracestate",
}
# x-content-type-options: every gateway answer carries its own (exchange.py), once.
_RESPONSE_DROP = _HOP_BY_HOP | {b"x-request-id", b"date", b"server", b"x-content-type-options"}
_RATELIMIT = frozenset({b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"})
# Headers the services trust only from the gateway: whatever a client sends is dropped.
IDENTITY_PREFIX = b"x-streamia-"
# How often an upstream whose breaker is open is asked whether it is ready again.
READY_POLL_SECONDS = 0.25

# Responses up to this size are read whole and sent in one ASGI message.
_SMALL_BODY = 64 * 1024

# Told the upstream's status (and its body, when small enough to be read whole) before relaying.
OnStatus = Callable[[int, bytes | None], Awaitable[None]]


class RequestBody:
    """The ASGI request body as an async iterator aiohttp can stream upstream."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.finished = False
        self.disconnected = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.finished:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise ClientGone
            chunk = message.get("body", b"")
            self.finished = not message.get("more_body", False)
            if chunk:
                yield chunk


def has_body(headers: dict[bytes, bytes]) -> bool:
    """Does the request announce a body (a positive Content-Length or chunked encoding)?"""
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"0", b"")
    return b"transfer-encoding" in headers


class Proxy:
    """Sends one request to an upstream and streams the answer back to the client."""

    def __init__(
        self,
        settings: GatewaySettings,
        breakers: dict[str, CircuitBreaker],
        tracing: Tracing | None = None,
    ) -> None:
        self._settings = settings
        self._breakers = breakers
        self._tracing = tracing or Tracing.disabled()
        self._read_timeout = settings.upstream_read_timeout_seconds
        self._public_base = settings.public_base.rstrip("/")
        self._internal = frozenset(_origin(url) for url in settings.upstream_urls().values())
        self._session: aiohttp.ClientSession | None = None
        self._watchers: dict[str, asyncio.Task[None]] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled upstream client (the gateway's probes and document fetches share it)."""
        assert self._session is not None, "Proxy.open() first"
        return self._session

    @property
    def is_open(self) -> bool:
        return self._session is not None

    def open(self) -> None:
        """Open the pooled upstream client; aiohttp needs the running loop for it."""
        if self._session is not None:
            return
        s = self._settings
        connector = aiohttp.TCPConnector(
            limit=s.upstream_pool_size,
            limit_per_host=0,
            ttl_dns_cache=60,
            keepalive_timeout=30,  # below the services' 75 s (platform.py)
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=s.upstream_connect_timeout_seconds,
                sock_connect=s.upstream_connect_timeout_seconds,
                sock_read=s.breaker_timeout_seconds,
            ),
            auto_decompress=False,
            # Pass the client's headers verbatim: add none of aiohttp's own.
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            read_bufsize=256 * 1024,
            # A CLIENT span per upstream call when spans are exported (its traceparent replaces
            # the one _request_headers adds).
            trace_configs=self._tracing.http_trace_configs(),
        )

    async def close(self) -> None:
        watchers, self._watchers = list(self._watchers.values()), {}
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _watch_ready(self, name: str, breaker: CircuitBreaker) -> None:
        """While `name`'s breaker is open and clients are refused, ask its `/ready` every
        READY_POLL_SECONDS; once it answers 200, let the next call probe at once instead of
        after the reset time (30 s): an outage ends for clients right after the dependency
        behind the upstream returns."""
        task = self._watchers.get(name)
        if task is None or task.done():
            self._watchers[name] = asyncio.create_task(
                self._poll_ready(name, breaker), name=f"breaker-ready-{name}"
            )

    async def _poll_ready(self, name: str, breaker: CircuitBreaker) -> None:
        url = self._settings.upstream_urls()[name] + "/ready"
        timeout = aiohttp.ClientTimeout(total=self._settings.ready_timeout_seconds)
        while breaker.state is State.OPEN and self._session is not None:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError), untraced():
                async with self._session.get(url, timeout=timeout) as resp:
                    if resp.status == 200:
                        breaker.probe_now()
                        return
            await asyncio.sleep(READY_POLL_SECONDS)

    async def forward(
        self,
        ex: Exchange,
        upstream: Upstream,
        identity: Identity | None,
        keep_authorization: bool = True,
        body: bytes | None = None,
        on_status: OnStatus | None = None,
        headers_within: float | None = None,
    ) -> None:
        """Forward `ex`; `headers_within` replaces the wait for the response headers."""
        ex.upstream = upstream.name
        breaker = self._breakers.get(upstream.name)
        permit = breaker.acquire() if breaker is not None else None
        if breaker is not None and permit is None:
            self._watch_ready(upstream.name, breaker)
            await ex.error(
                503,
                "Service temporarily unavailable",
                "circuit_open",
                [(b"retry-after", breaker.retry_after_header().encode())],
            )
            return

        stream: RequestBody | None = None
        data: bytes | RequestBody | None = body
        if body is None and has_body(ex.headers):
            data = stream = RequestBody(ex.receive)
        raw_path: bytes = ex.scope.get("raw_path") or ex.path.encode()
        query: bytes = ex.scope.get("query_string", b"")
        target = upstream.base_url + raw_path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")

        try:
            resp = await self.session.request(
                ex.method,
                URL(target, encoded=True),
                headers=self._request_headers(ex, identity, keep_authorization, headers_within),
                data=data,
                allow_redirects=False,
                timeout=self._timeout(headers_within),
            )
        except asyncio.CancelledError:
            if breaker is not None and permit is not None:
                breaker.release(permit)
            raise
        except Exception as exc:
            if stream is not None and stream.disconnected:
                if breaker is not None and permit is not None:
                    breaker.release(permit)
                return  # nobody is left to answer
            if breaker is not None and permit is not None:
                breaker.record(permit, False)
            await self._upstream_failed(ex, upstream, exc)
            return

        if breaker is not None and permit is not None:
            if resp.status == 503 and "Retry-After" in resp.headers:
                # The upstream shedding load on purpose is alive and answering: neither a
                # success nor an error, or a burst on one route would open the breaker for all.
                breaker.release(permit)
            else:
                breaker.record(permit, resp.status < 500)
        try:
            await self._relay(ex, upstream, resp, stream, on_status)
        finally:
            resp.release()

    async def _relay(
        self,
        ex: Exchange,
        upstream: Upstream,
        resp: aiohttp.ClientResponse,
        stream: RequestBody | None,
        on_status: OnStatus | None,
    ) -> None:
        length = resp.content_length
        if (
            ex.method == "HEAD"
            or resp.status in (204, 304)
            or (length is not None and length <= _SMALL_BODY)
        ):
            try:
                payload = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                await self._upstream_failed(ex, upstream, exc)
                return
            if on_status is not None:
                await on_status(resp.status, payload)
            await ex.start(resp.status, self._response_headers(ex, resp, bool(ex.ratelimit)))
            await ex.body(payload)
            return
        if on_status is not None:
            await on_status(resp.status, None)
        headers = self._response_headers(ex, resp, drop_ratelimit=bool(ex.ratelimit))

        # The headers came in time; from here on only a stalled body stream is a timeout.
        protocol = resp.connection.protocol if resp.connection is not None else None
        if protocol is not None:
            protocol.read_timeout = self._read_timeout
            protocol.start_timeout()
        await ex.start(resp.status, headers)
        # uvicorn drops writes to a gone client silently: watch for the disconnect, so a
        # long video stream stops pulling from the upstream as soon as the viewer leaves.
        watcher = None
        if stream is None or stream.finished:
            watcher = asyncio.ensure_future(_wait_for_disconnect(ex.receive))
        try:
            async for chunk in resp.content.iter_any():
                if watcher is not None and watcher.done():
                    return
                await ex.body(chunk, more=True)
            await ex.body(b"")
        finally:
            if watcher is not None:
                watcher.cancel()

    def _timeout(self, headers_within: float | None) -> aiohttp.ClientTimeout:
        """The session's timeouts, with another wait for the response headers if given."""
        if headers_within is None:
            return self.session.timeout
        connect = self._settings.upstream_connect_timeout_seconds
        return aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect, sock_read=headers_within
        )

    def _request_headers(
        self,
        ex: Exchange,
        identity: Identity | None,
        keep_authorization: bool,
        headers_within: float | None = None,
    ) -> list[tuple[str, str]]:
        raw = ex.scope["headers"]
        drop = _REQUEST_DROP
        connection = ex.headers.get(b"connection")
        if connection:
            drop = drop | {t.strip().lower() for t in connection.split(b",")}
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in raw
            if name not in drop
            and not name.startswith(IDENTITY_PREFIX)
            and (keep_authorization or name != b"authorization")
        ]
        host = ex.headers.get(b"host")
        forwarded_for = ex.headers.get(b"x-forwarded-for")
        chain = forwarded_for.decode("latin-1") if forwarded_for else ""
        if not chain:
            chain = ex.client_ip
        elif chain.rsplit(",", 1)[-1].strip() != ex.client_ip:
            chain = f"{chain}, {ex.client_ip}"
        headers.append(("X-Forwarded-For", chain))
        headers.append(("X-Forwarded-Proto", ex.scope.get("scheme", "http")))
        if host:
            headers.append(("X-Forwarded-Host", host.decode("latin-1")))
        headers.append(("X-Request-Id", ex.request_id))
        # How long this gateway waits for the answer once the body is sent: the upstream
        # stops short of it, so a 504 here means its work was not done (a client's own
        # X-Streamia-* headers were dropped above).
        wait = headers_within or self._settings.breaker_timeout_seconds
        headers.append((DEADLINE_HEADER, str(int(wait * 1000))))
        traceparent = current_traceparent()
        if traceparent is not None:
            headers.append(("traceparent", traceparent))
        if identity is not None:
            headers.append(("X-Streamia-User-Id", identity.id))
            headers.append(("X-Streamia-User-Email", identity.email))
            headers.append(("X-Streamia-User-Role", identity.role))
        return headers

    def _response_headers(
        self, ex: Exchange, resp: aiohttp.ClientResponse, drop_ratelimit: bool
    ) -> Headers:
        out: Headers = []
        for name, value in resp.raw_headers:
            lower = name.lower()
            if lower == ROUTE_HEADER:  # for the gateway's span name, not for the client
                ex.upstream_route = value.decode("latin-1")
                continue
            if lower in _RESPONSE_DROP or lower.startswith(b"access-control-"):
                continue  # CORS is the gateway's business
            if drop_ratelimit and lower in _RATELIMIT:
                continue
            if lower == b"location":
                value = self._public_location(value)
            out.append((lower, value))
        return out

    def _public_location(self, value: bytes) -> bytes:
        """A redirect to a service's own address, moved onto the public URL: a client can
        neither reach the internal address nor should it learn it."""
        url = urlsplit(value.decode("latin-1"))
        if not url.scheme or _origin(value.decode("latin-1")) not in self._internal:
            return value
        public = self._public_base + (url.path or "/")
        if url.query:
            public += "?" + url.query
        return public.encode("latin-1")

    @staticmethod
    async def _upstream_failed(ex: Exchange, upstream: Upstream, exc: Exception) -> None:
        if isinstance(exc, TimeoutError):
            log.warning("upstream_timeout", upstream=upstream.name, error=_describe(exc))
            await ex.error(504, "Upstream service timed out", "upstream_timeout")
        elif isinstance(exc, aiohttp.ClientConnectorError):
            log.warning("upstream_unavailable", upstream=upstream.name, error=_describe(exc))
            await ex.error(503, "Upstream service unavailable", "upstream_unavailable")
        elif isinstance(exc, aiohttp.ClientError | OSError):
            log.warning("upstream_failed", upstream=upstream.name, error=_describe(exc))
            await ex.error(502, "Bad gateway", "bad_gateway")
        else:
            raise exc


async def _wait_for_disconnect(receive: Receive) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass


def _origin(url: str) -> str:
    """`scheme://host:port` of a URL, lowercased, with the scheme's default port made explicit."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:  # not a port number: not one of ours either
        return url
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def _describe(exc: Exception) -> str:
    """A log-sized description of an upstream failure (some carry the bytes they choked on)."""
    text = repr(exc)
    return text if len(text) <= 300 else text[:300] + "..."
