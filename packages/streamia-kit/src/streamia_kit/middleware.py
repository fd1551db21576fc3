"""Pure ASGI middleware: request id, JSON access log, metrics, body-size limit, one
trailing slash."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException

from streamia_kit.errors import error_body, send_error
from streamia_kit.faults import being_cancelled
from streamia_kit.logging import (
    REQUEST_ID_HEADER,
    access_lines,
    new_request_id,
    request_id_var,
)
from streamia_kit.telemetry import Tracing, remote_parent

access_log = structlog.get_logger("streamia.access")
log = structlog.get_logger("streamia.middleware")
# The stdlib logger behind `access_log`: asked first, so a level above INFO costs nothing.
_access_stdlib = logging.getLogger("streamia.access")
_REQUEST_ID_HEADER = REQUEST_ID_HEADER.encode()
# On every answer (JSON, media, video): a browser must never guess a script out of bytes
# that were uploaded as a subtitle or a cover.
NOSNIFF = (b"x-content-type-options", b"nosniff")

HTTP_REQUESTS = Counter(
    "streamia_http_requests_total",
    "HTTP requests served",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "streamia_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# The template of the route that answered, on every answer of a service: the gateway names
# its span after it (`GET /api/movies/{movie_id}`), then drops the header.
ROUTE_HEADER = b"x-streamia-route"
# The `route` label of a request no route matched: raw paths would be unbounded label values.
UNMATCHED_ROUTE = "unmatched"
# Probes and scrapes are not traffic: counting them would dilute every rate and latency.
OPERATIONS_PATHS = frozenset({"/health", "/ready", "/metrics"})

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]
_TRACE_CONTEXT = TraceContextTextMapPropagator()


def route_template(scope: Scope) -> str:
    """The template of the route that served the request (`/api/movies/{movie_id}`), which
    FastAPI's router leaves in the scope once it has matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Request id in and out, one JSON access-log line, Prometheus counters."""

    def __init__(self, app: ASGIApp, service: str, tracing: Tracing | None = None):
        self.app = app
        self.service = service
        # The service's own (Service.tracing); without one, spans get ids and nothing else.
        self._tracing = tracing or Tracing.disabled()
        # Metric children per label set: `.labels()` hashes and locks on every call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = HTTP_REQUESTS.labels(self.service, method, route, str(status))
            if len(self._counters) < 1000:  # methods are client-chosen: bound the memo
                self._counters[(method, route, status)] = counter
        counter.inc()
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = HTTP_LATENCY.labels(self.service, method, route)
            if len(self._latencies) < 1000:
                self._latencies[(method, route)] = latency
        latency.observe(elapsed)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
        rid = new_request_id(incoming)
        token = request_id_var.set(rid)
        status = 500
        answered = False
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (_REQUEST_ID_HEADER, rid.encode()),
                    NOSNIFF,
                ]
                route = route_template(scope)
                if route != UNMATCHED_ROUTE:
                    message["headers"].append((ROUTE_HEADER, route.encode()))
            await send(message)

        method = scope["method"]
        if scope["path"] in OPERATIONS_PATHS:
            # Probes and scrapes: no span, no metrics, no access line.
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                request_id_var.reset(token)
            return

        # The span continues the caller's trace (the gateway's), so the outbox can carry it
        # into every saga step this request causes. No traceparent: a new root span (what
        # extracting from an empty carrier gives, without the propagators' work). Only the
        # W3C headers are read, so only their propagator runs (not the global composite's
        # baggage one too: 4.3 -> 3.7 us).
        if not carrier:
            parent = otel_context.Context()
        elif len(carrier) == 1 and "traceparent" in carrier:
            parent = remote_parent(carrier["traceparent"])
        else:  # a tracestate too: the propagator keeps it
            parent = _TRACE_CONTEXT.extract(carrier)
        span = self._tracing.start_span(method, parent, kind=trace.SpanKind.SERVER)
        context_token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            if answered or being_cancelled():
                raise  # answered already, or this request really is being cancelled
            # A cancellation that belongs to another task (a shared load's) leaked into
            # this request: no handler renders a BaseException, and uvicorn would send its
            # text/plain 500. Still a bug, so a 500, but in the API.md shape.
            log.error("leaked_cancellation", path=scope["path"], exc_info=True)
            await send_error(send_with_id, 500, "Internal server error", "internal_error")
        except Exception as exc:  # what start_as_current_span records, without its wrappers
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            if span.is_recording():
                # Named by the route's template once the router has matched it: raw paths
                # (`GET /api/movies/ec54…`) would make every movie its own operation.
                if route != UNMATCHED_ROUTE:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("http.request_id", rid)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            self._observe(method, route, status, elapsed)
            if _access_stdlib.isEnabledFor(logging.INFO):
                fields = {
                    "service": self.service,
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                }
                lines = access_lines()
                if lines is not None:
                    fields["request_id"] = rid
                    lines.json("streamia.access", "request", fields, span)
                else:
                    # Still inside the span's context: the line carries its trace and span ids.
                    access_log.info("request", **fields)
            span.end()
            otel_context.detach(context_token)
            request_id_var.reset(token)


class TrailingSlashMiddleware:
    """Serve `/path/` as `/path`: Express answered both, and FastAPI's redirect to the
    service's own address would name an internal URL and drop the client's token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path[:-1]}
            raw: bytes | None = scope.get("raw_path")
            if raw and raw.endswith(b"/"):
                scope["raw_path"] = raw[:-1]
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 JSON for bodies over the limit, unless the path streams large uploads itself."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: Callable[[str], bool] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt or (lambda _path: False)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    if int(value) <= _DRAIN_LIMIT:
                        # Read and drop a modest body so the client gets the 413, not a reset.
                        while (await receive()).get("more_body", False):
                            pass
                    await _too_large(send, self.max_bytes)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # The server delivers no more than the Content-Length just checked (none: no
            # body): only a chunked body needs counting as it comes.
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


_DRAIN_LIMIT = 16 * 1024 * 1024


class _BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing re-raises it to the 413 handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body too large (limit {limit} bytes)")


async def _too_large(send: Any, limit: int) -> None:
    body = orjson.dumps(
        error_body(f"Request body too large (limit {limit} bytes)", "payload_too_large")
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
