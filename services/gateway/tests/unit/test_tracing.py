"""The gateway's span: the root of a request's trace, a client's traceparent only a link
unless the client is an internal caller; its access line carries the span's ids."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

import orjson
import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamia_gateway.access_log import AccessLog
from streamia_gateway.exchange import Exchange
from streamia_gateway.tracing import EdgeTracing
from streamia_kit.logging import LineBuffer
from streamia_kit.telemetry import Tracing

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def _exchange(client_ip: str) -> Exchange:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/api/movies/m1",
        "headers": [(b"traceparent", f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01".encode())],
        "client": (client_ip, 5000),
    }
    ex = Exchange(scope, None, None)  # type: ignore[arg-type]
    ex.route, ex.upstream_route, ex.status = "/api/movies/{path}", "/api/movies/{movie_id}", 200
    return ex


def _edge(trusted: str | None = None) -> tuple[EdgeTracing, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    tracing = Tracing("gateway", None, exporter=exported)
    return EdgeTracing(tracing, [ip_network(trusted)] if trusted else []), exported


def test_an_outside_traceparent_is_a_link_of_a_new_trace() -> None:
    edge, exported = _edge()
    ex = _exchange("203.0.113.9")
    span, token = edge.start(ex)
    edge.finish(ex, span, token)
    [done] = exported.get_finished_spans()
    assert done.parent is None
    assert format(done.context.trace_id, "032x") != CLIENT_TRACE
    [link] = done.links
    assert (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) == (
        CLIENT_TRACE,
        CLIENT_SPAN,
    )
    assert done.name == "GET /api/movies/{movie_id}"  # the upstream's template, not the path


def test_an_internal_callers_traceparent_is_the_parent() -> None:
    edge, exported = _edge("10.0.0.0/8")
    ex = _exchange("10.1.2.3")
    span, token = edge.start(ex)
    edge.finish(ex, span, token)
    [done] = exported.get_finished_spans()
    assert done.parent is not None and format(done.parent.span_id, "016x") == CLIENT_SPAN
    assert format(done.context.trace_id, "032x") == CLIENT_TRACE
    assert not done.links


def test_the_access_line_carries_the_spans_ids() -> None:
    edge, exported = _edge()
    ex = _exchange("203.0.113.9")
    out = io.BytesIO()
    with structlog.testing.capture_logs() as lines:
        span, token = edge.start(ex)
        AccessLog(structlog.get_logger("streamia.access")).write(ex, 0.001, span)  # console
        AccessLog(None, LineBuffer(out)).write(ex, 0.001, span)  # JSON, as shipped
        edge.finish(ex, span, token)
    [done] = exported.get_finished_spans()
    trace_id, span_id = format(done.context.trace_id, "032x"), format(done.context.span_id, "016x")
    [line] = lines
    assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)
    json_line = orjson.loads(out.getvalue())  # one line: no loop running, written at once
    assert (json_line["trace_id"], json_line["span_id"]) == (trace_id, span_id)
    assert json_line["event"] == "request" and json_line["logger"] == "streamia.access"
    assert json_line["level"] == "info" and json_line["client_ip"] == "203.0.113.9"
    stamp = datetime.fromisoformat(json_line["timestamp"].replace("Z", "+00:00"))
    assert json_line["timestamp"].endswith("Z")
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
