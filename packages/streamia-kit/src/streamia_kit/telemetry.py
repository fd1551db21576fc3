"""OpenTelemetry tracing (OTLP when configured) and W3C traceparent propagation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

_configured = False


def configure_tracing(service_name: str, otlp_endpoint: str | None) -> None:
    """Install an SDK tracer provider; export over OTLP/HTTP only when an endpoint is set."""
    global _configured
    if _configured:
        return
    _configured = True
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces"))
        )
    trace.set_tracer_provider(provider)
    _tracers.clear()  # proxies handed out before still delegate to the new provider


_tracers: dict[str, trace.Tracer] = {}


def tracer(name: str = "streamia") -> trace.Tracer:
    """One tracer per name (a proxy until a provider is installed, so caching stays right)."""
    found = _tracers.get(name)
    if found is None:
        found = _tracers[name] = trace.get_tracer(name)
    return found


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span_from(traceparent: str | None, name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A consumer span whose parent is the span that published the event."""
    ctx = propagate.extract({"traceparent": traceparent} if traceparent else {})
    token = otel_context.attach(ctx)
    try:
        with tracer().start_as_current_span(name, kind=trace.SpanKind.CONSUMER) as span:
            for key, value in attributes.items():
                span.set_attribute(key, value)
            yield span
    finally:
        otel_context.detach(token)


@contextmanager
def batch_span(
    traceparents: Sequence[str | None], name: str, **attributes: Any
) -> Iterator[trace.Span]:
    """One consumer span for events applied together, linked to each publisher's span."""
    links = []
    for traceparent in dict.fromkeys(tp for tp in traceparents if tp):
        parent = trace.get_current_span(propagate.extract({"traceparent": traceparent}))
        context = parent.get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    with tracer().start_as_current_span(
        name, kind=trace.SpanKind.CONSUMER, links=links, attributes=attributes
    ) as span:
        yield span


@contextmanager
def server_span(headers: dict[str, str], name: str) -> Iterator[trace.Span]:
    ctx = propagate.extract(headers)
    token = otel_context.attach(ctx)
    try:
        with tracer().start_as_current_span(name, kind=trace.SpanKind.SERVER) as span:
            yield span
    finally:
        otel_context.detach(token)
