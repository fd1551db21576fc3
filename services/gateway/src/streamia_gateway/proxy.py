"""Forwarding to an upstream: streamed both ways, behind that upstream's circuit breaker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import structlog
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectError, RequestError
from pyreqwest.http import HeaderMap
from pyreqwest.response import Response

from streamia_gateway.config import GatewaySettings
from streamia_gateway.exchange import ClientGone, Exchange, Headers, Receive
from streamia_gateway.routing import Upstream
from streamia_kit.auth import Identity
from streamia_kit.breaker import CircuitBreaker, State
from streamia_kit.deadlines import DEADLINE_HEADER
from streamia_kit.middleware import ROUTE_HEADER
from streamia_kit.telemetry import Tracing, current_traceparent

log = structlog.get_logger("streamia.gateway.proxy")

# Hop-by-hop headers (RFC 9110 §7.6.1) and ones the gateway sets itself.
_HOP_BY_HOP_NAMES = (
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
)
_HOP_BY_HOP = frozenset(name.encode() for name in _HOP_BY_HOP_NAMES)
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
# pyreqwest hands response header names lowercased, as str.
# x-content-type-options: every gateway answer carries its own (exchange.py), once.
_RESPONSE_DROP = frozenset(_HOP_BY_HOP_NAMES) | {
    "x-request-id",
    "date",
    "server",
    "x-content-type-options",
}
_RATELIMIT = frozenset({"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"})
_ROUTE_HEADER = ROUTE_HEADER.decode()
# Headers the services trust only from the gateway: whatever a client sends is dropped.
IDENTITY_PREFIX = b"x-streamia-"
# How often an upstream whose breaker is open is asked whether it is ready again.
READY_POLL_SECONDS = 0.25

# Responses up to this size are read whole and sent in one ASGI message.
_SMALL_BODY = 64 * 1024

# Told the upstream's status (and its body, when small enough to be read whole) before relaying.
OnStatus = Callable[[int, bytes | None], Awaitable[None]]


class RequestBody:
    """The ASGI request body as an async iterator pyreqwest streams upstream. Each chunk
    pushes `deadline` back by `wait`: the wait for the answer counts from the body's last
    progress, so an upload as slow as its client is not cut short, a stalled one is."""

    def __init__(self, receive: Receive, first: bytes = b"") -> None:
        self._receive = receive
        self._first = first  # the chunk already received
        self.finished = False
        self.disconnected = False
        self.deadline: asyncio.Timeout | None = None
        self.wait = 0.0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        if self._first:
            yield self._first
        while not self.finished:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise ClientGone
            chunk = message.get("body", b"")
            self.finished = not message.get("more_body", False)
            if self.deadline is not None:
                self.deadline.reschedule(loop.time() + self.wait)
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
        self._public_base = settings.public_base.rstrip("/")
        self._internal = frozenset(_origin(url) for url in settings.upstream_urls().values())
        self._client: Client | None = None
        self._watchers: dict[str, asyncio.Task[None]] = {}

    @property
    def client(self) -> Client:
        """The pooled upstream client (the gateway's probes and document fetches share it)."""
        assert self._client is not None, "Proxy.open() first"
        return self._client

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def open(self) -> None:
        """Open the pooled upstream client (pyreqwest: reqwest and hyper, in Rust)."""
        if self._client is not None:
            return
        s = self._settings
        self._client = (
            ClientBuilder()
            .max_connections(s.upstream_pool_size)
            .pool_idle_timeout(timedelta(seconds=30))  # below the services' 75 s (platform.py)
            .connect_timeout(timedelta(seconds=s.upstream_connect_timeout_seconds))
            # Each read of a body (and of the headers, which forward() waits for less long).
            .read_timeout(timedelta(seconds=s.upstream_read_timeout_seconds))
            .follow_redirects(False)
            .referer(False)
            # Bodies pass as they are, Accept-Encoding with them: no decompression.
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            # Names as the client sent them (ASGI lowercases them), not title-cased.
            .http1_lower_case_headers()
            .build()
        )

    async def close(self) -> None:
        watchers, self._watchers = list(self._watchers.values()), {}
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None

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
        while breaker.state is State.OPEN and self._client is not None:
            status = await fetch_status(self._client, url, self._settings.ready_timeout_seconds)
            if status == 200:
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

        raw_path: bytes = ex.scope.get("raw_path") or ex.path.encode()
        query: bytes = ex.scope.get("query_string", b"")
        target = upstream.base_url + raw_path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        wait = headers_within or self._settings.breaker_timeout_seconds

        stream: RequestBody | None = None
        try:
            with self._client_span(ex.method, target) as span:
                # The headers must come within `wait` of the request body's last progress, and
                # a small body (read whole) with them: it is part of the answer waited for.
                payload = None
                try:
                    async with asyncio.timeout(wait) as deadline:
                        if body is None and has_body(ex.headers):
                            # A body that came whole in its first message (any small one) goes
                            # up as bytes: streaming it cost a hop to Python per chunk.
                            message = await ex.receive()
                            if message["type"] == "http.disconnect":
                                raise ClientGone
                            if message.get("more_body", False):
                                stream = RequestBody(ex.receive, message.get("body", b""))
                                stream.deadline, stream.wait = deadline, wait
                            else:
                                body = message.get("body", b"")
                        builder = self.client.request(ex.method, target).headers(
                            self._request_headers(ex, identity, keep_authorization, wait)
                        )
                        if body is not None:
                            builder = builder.body_bytes(body)
                        elif stream is not None:
                            builder = builder.body_stream(stream)
                        # 0: the response comes back with its headers alone, and each piece of
                        # its body is handed on as it arrives (else pyreqwest holds 64 KiB first).
                        request = builder.streamed_read_buffer_limit(0).build_streamed()
                        resp = await request.__aenter__()
                        if _read_whole(ex.method, resp):
                            payload = (await resp.bytes()).to_bytes()
                finally:
                    if stream is not None:
                        stream.deadline = None  # an answer before the whole body: no wait left
                if span is not None:
                    span.set_attribute("http.response.status_code", resp.status)
        except asyncio.CancelledError:
            if breaker is not None and permit is not None:
                breaker.release(permit)
            raise
        except Exception as exc:
            if isinstance(exc, ClientGone) or (stream is not None and stream.disconnected):
                if breaker is not None and permit is not None:
                    breaker.release(permit)
                return  # nobody is left to answer
            if breaker is not None and permit is not None:
                breaker.record(permit, False)
            await self._upstream_failed(ex, upstream, exc)
            return

        if breaker is not None and permit is not None:
            if resp.status == 503 and "retry-after" in resp.headers:
                # The upstream shedding load on purpose is alive and answering: neither a
                # success nor an error, or a burst on one route would open the breaker for all.
                breaker.release(permit)
            else:
                breaker.record(permit, resp.status < 500)
        try:
            await self._relay(ex, resp, stream, on_status, payload)
        finally:
            await request.__aexit__(None, None, None)

    @contextlib.contextmanager
    def _client_span(self, method: str, url: str) -> Iterator[trace.Span | None]:
        """A CLIENT span around the wait for the upstream's headers, when spans are exported
        and the request's trace is recorded; its traceparent is the one sent upstream."""
        if not self._tracing.exporting or not trace.get_current_span().is_recording():
            yield None
            return
        parts = urlsplit(url)
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.full": url,
            "server.address": parts.hostname or "",
            "server.port": parts.port or 80,
        }
        with self._tracing.tracer.start_as_current_span(
            method, kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield span

    async def _relay(
        self,
        ex: Exchange,
        resp: Response,
        stream: RequestBody | None,
        on_status: OnStatus | None,
        payload: bytes | None,
    ) -> None:
        """Answer the client: with `payload`, the whole body already read, else streamed."""
        if payload is not None:
            if on_status is not None:
                await on_status(resp.status, payload)
            await ex.start(resp.status, self._response_headers(ex, resp, bool(ex.ratelimit)))
            await ex.body(payload)
            return
        if on_status is not None:
            await on_status(resp.status, None)
        # The headers came in time; from here on only a body read stalled for longer than
        # upstream_read_timeout_seconds is a timeout (the client's read timeout).
        await ex.start(resp.status, self._response_headers(ex, resp, bool(ex.ratelimit)))
        # uvicorn drops writes to a gone client silently: watch for the disconnect, so a
        # long video stream stops pulling from the upstream as soon as the viewer leaves.
        watcher = None
        if stream is None or stream.finished:
            watcher = asyncio.ensure_future(_wait_for_disconnect(ex.receive))
        reader = resp.body_reader
        try:
            while (chunk := await reader.read_chunk()) is not None:
                if watcher is not None and watcher.done():
                    return
                await ex.body(chunk.to_bytes(), more=True)
            await ex.body(b"")
        finally:
            if watcher is not None:
                watcher.cancel()

    def _request_headers(
        self,
        ex: Exchange,
        identity: Identity | None,
        keep_authorization: bool,
        wait: float,
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
        headers.append(("x-forwarded-for", chain))
        headers.append(("x-forwarded-proto", ex.scope.get("scheme", "http")))
        if host:
            headers.append(("x-forwarded-host", host.decode("latin-1")))
        headers.append(("x-request-id", ex.request_id))
        # How long this gateway waits for the answer once the body is sent: the upstream
        # stops short of it, so a 504 here means its work was not done (a client's own
        # X-Streamia-* headers were dropped above).
        headers.append((DEADLINE_HEADER.lower(), str(int(wait * 1000))))
        traceparent = current_traceparent()
        if traceparent is not None:
            headers.append(("traceparent", traceparent))
        if identity is not None:
            headers.append(("x-streamia-user-id", identity.id))
            headers.append(("x-streamia-user-email", identity.email))
            headers.append(("x-streamia-user-role", identity.role))
        return headers

    def _response_headers(self, ex: Exchange, resp: Response, drop_ratelimit: bool) -> Headers:
        out: Headers = []
        for name, value in _header_items(resp.headers):
            if name == _ROUTE_HEADER:  # for the gateway's span name, not for the client
                ex.upstream_route = value
                continue
            if name in _RESPONSE_DROP or name.startswith("access-control-"):
                continue  # CORS is the gateway's business
            if drop_ratelimit and name in _RATELIMIT:
                continue
            raw = value.encode("latin-1")
            if name == "location":
                raw = self._public_location(raw)
            out.append((name.encode("latin-1"), raw))
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
        elif isinstance(exc, ConnectError):
            log.warning("upstream_unavailable", upstream=upstream.name, error=_describe(exc))
            await ex.error(503, "Upstream service unavailable", "upstream_unavailable")
        elif isinstance(exc, RequestError | OSError):
            log.warning("upstream_failed", upstream=upstream.name, error=_describe(exc))
            await ex.error(502, "Bad gateway", "bad_gateway")
        else:
            raise exc


async def fetch_status(client: Client, url: str, within: float) -> int | str:
    """GET `url` for the gateway's own probes: its status, or "timeout" / "unreachable"."""
    try:
        request = client.get(url).timeout(timedelta(seconds=within)).build()
        return (await request.send()).status
    except TimeoutError:
        return "timeout"
    except (RequestError, OSError):
        return "unreachable"


def _read_whole(method: str, resp: Response) -> bool:
    """Whether the answer's body is read whole before it is relayed: none, or a small one."""
    if method == "HEAD" or resp.status in (204, 304):
        return True
    length = resp.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) <= _SMALL_BODY


def _header_items(headers: HeaderMap) -> list[tuple[str, str]]:
    """The headers as (lowercase name, value) pairs. pyreqwest reads a value as str only when
    it is visible ASCII: one that is not (obs-text, RFC 9110 §5.5) is left out, and logged."""
    try:
        return list(headers.items())
    except ValueError:
        pass
    items: list[tuple[str, str]] = []
    for name in dict.fromkeys(headers.keys()):
        try:
            items.extend((name, value) for value in headers.getall(name))
        except ValueError:
            log.warning("upstream_header_unreadable", header=name)
    return items


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
