"""Where traces start: the gateway's SERVER span for each request, named by its route."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from streamia_gateway.exchange import Exchange
from streamia_kit.middleware import UNMATCHED_ROUTE
from streamia_kit.telemetry import Tracing


class EdgeTracing:
    """Opens the root span of a request's trace; a caller's `traceparent` is its parent only
    when the caller is one of `trusted` (internal callers), otherwise just a link."""

    def __init__(self, tracing: Tracing, trusted: Iterable[IPv4Network | IPv6Network]) -> None:
        self.tracing = tracing
        self._trusted = tuple(trusted)

    def _is_trusted(self, address: str) -> bool:
        if not self._trusted:
            return False
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def start(self, ex: Exchange) -> tuple[trace.Span, object]:
        """The request's span, made current; `finish` ends it."""
        parent = otel_context.Context()
        links: tuple[trace.Link, ...] = ()
        traceparent = ex.headers.get(b"traceparent")
        if traceparent is not None:
            carrier = {"traceparent": traceparent.decode("latin-1")}
            tracestate = ex.headers.get(b"tracestate")
            if tracestate is not None:
                carrier["tracestate"] = tracestate.decode("latin-1")
            incoming = propagate.extract(carrier)
            if self._is_trusted(ex.client_ip):
                parent = incoming
            else:
                context = trace.get_current_span(incoming).get_span_context()
                if context.is_valid:
                    links = (trace.Link(context, {"streamia.link": "client traceparent"}),)
        span = self.tracing.start_span(ex.method, parent, kind=trace.SpanKind.SERVER, links=links)
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def finish(ex: Exchange, span: trace.Span, token: object) -> None:
        """Name the span by the template of the upstream's route that answered, else by the
        gateway's own route (`/api/movies/{path}`), then end it."""
        if span.is_recording():
            route = ex.upstream_route or ex.route
            if route != UNMATCHED_ROUTE:
                span.update_name(f"{ex.method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.request.method", ex.method)
            span.set_attribute("http.response.status_code", ex.status)
            span.set_attribute("http.request_id", ex.request_id)
            if ex.upstream:
                span.set_attribute("streamia.upstream", ex.upstream)
            if ex.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]
