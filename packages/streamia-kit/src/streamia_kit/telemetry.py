"""OpenTelemetry tracing, one TracerProvider per service, and W3C traceparent propagation.

Each service gets its own provider (`Tracing.of(name, endpoint)`), so in embedded mode, where
every service shares one process, each span still carries its own `service.name`. Tracers
come from that provider, never from the global one.

Without an OTLP endpoint nothing is recorded: the sampler drops every span, but spans still
get ids, so traceparents flow through HTTP calls and events and log lines carry a trace id.
The maintained instrumentations (SQLAlchemy, Redis, aiohttp client) are attached only when
spans are exported: they cost CPU on every statement and request even for a dropped span.

Two spans are the kit's own rather than an instrumentation's:
- the server span, opened by `RequestContextMiddleware`, which reads the headers and the route
  for the request id and the metrics anyway: opentelemetry-instrumentation-asgi measured
  51 µs (not recording) / 107 µs (recording) of CPU per request on top of it, with its
  per-message send/receive spans off, against 15 / 48 µs for the whole kit middleware
  (metrics included; a microbenchmark, load average 10 on 2 cores);
- publish and consume (`publish_spans`, `span_after`): opentelemetry-instrumentation-aio-pika
  patches aio-pika only, so the in-process bus of embedded mode would have none, and it knows
  nothing of the outbox (the publish span must be a child of the span that wrote the row).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Status, StatusCode

if TYPE_CHECKING:
    import aiohttp
    from opentelemetry.sdk.trace.export import SpanExporter
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from streamia_kit.events import Envelope

TRACER_NAME = "streamia"
_DISABLED: Tracing | None = None


class Tracing:
    """One service's tracer provider and what is traced with it."""

    _by_service: dict[str, Tracing] = {}

    def __init__(
        self,
        service: str,
        otlp_endpoint: str | None,
        sample_ratio: float = 1.0,
        exporter: SpanExporter | None = None,
    ) -> None:
        """`exporter` instead of OTLP: the SDK's InMemorySpanExporter, in tests."""
        self.service = service
        self.endpoint = otlp_endpoint
        self.sample_ratio = sample_ratio
        self.exporting = bool(otlp_endpoint) or exporter is not None
        root = ALWAYS_ON if sample_ratio >= 1.0 else TraceIdRatioBased(sample_ratio)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            # A caller's decision is kept: a trace is recorded whole or not at all.
            sampler=ParentBased(root) if self.exporting else ALWAYS_OFF,
        )
        if exporter is not None:
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self.provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces"))
            )
        self.tracer = self.provider.get_tracer(TRACER_NAME)
        self._ids = self.provider.id_generator

    def start_span(
        self,
        name: str,
        parent: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        links: Sequence[trace.Link] = (),
    ) -> trace.Span:
        """`tracer.start_span`, and without an exporter the very span the SDK makes then
        (ALWAYS_OFF: fresh ids, or the parent's trace id and state, not sampled) without the
        sampler and the SDK's checks around it: 4.4 -> 1.6 µs on every gateway request."""
        if self.exporting:
            return self.tracer.start_span(name, parent, kind=kind, links=links)
        found = trace.get_current_span(parent).get_span_context()
        if found.is_valid:
            trace_id, state, random = (
                found.trace_id,
                found.trace_state,
                found.trace_flags.random_trace_id,
            )
        else:
            trace_id, state = self._ids.generate_trace_id(), None
            random = self._ids.is_trace_id_random()
        flags = trace.TraceFlags.RANDOM_TRACE_ID if random else trace.TraceFlags.DEFAULT
        return trace.NonRecordingSpan(
            trace.SpanContext(
                trace_id,
                self._ids.generate_span_id(),
                is_remote=False,
                trace_flags=trace.TraceFlags(flags),
                trace_state=state,
            )
        )

    @classmethod
    def of(cls, service: str, otlp_endpoint: str | None, sample_ratio: float = 1.0) -> Tracing:
        """The service's tracing; apps built again in one process (tests) share it."""
        found = cls._by_service.get(service)
        if found is None or (found.endpoint, found.sample_ratio) != (otlp_endpoint, sample_ratio):
            if found is not None:
                found.provider.shutdown()
            found = cls._by_service[service] = cls(service, otlp_endpoint, sample_ratio)
        return found

    @classmethod
    def disabled(cls) -> Tracing:
        """Ids and propagation, nothing recorded (parts built without a service's tracing)."""
        global _DISABLED
        if _DISABLED is None:
            _DISABLED = cls("streamia", None)
        return _DISABLED

    def flush(self) -> None:
        """Export what is buffered (at shutdown, so the last spans are not lost)."""
        self.provider.force_flush(2000)

    # -- the maintained instrumentations, bound to this service's provider ----------------

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A CLIENT span per SQL statement."""
        if not self.exporting:
            return
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeter

        # EngineTracer is what SQLAlchemyInstrumentor().instrument(engine=...) builds; the
        # instrumentor itself is a process-wide singleton that would patch every engine with
        # the first service's provider (all of them, in embedded mode).
        EngineTracer(
            self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
            engine.sync_engine,
            NoOpMeter("sqlalchemy").create_up_down_counter("db.client.connections.usage"),
        )

    def instrument_redis(self, client: Redis) -> None:
        """A CLIENT span per Redis command."""
        if not self.exporting:
            return
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def http_trace_configs(self) -> list[aiohttp.TraceConfig]:
        """For `aiohttp.ClientSession(trace_configs=...)`: a CLIENT span per request, whose
        context goes out in the request's `traceparent`."""
        if not self.exporting:
            return []
        from opentelemetry.instrumentation.aiohttp_client import create_trace_config

        return [create_trace_config(tracer_provider=self.provider)]

    # -- spans of the kit's own -----------------------------------------------------------

    @contextmanager
    def span_after(
        self,
        traceparent: str | None,
        name: str,
        kind: trace.SpanKind = trace.SpanKind.CONSUMER,
        attributes: dict[str, Any] | None = None,
    ) -> Iterator[trace.Span]:
        """A current span whose parent is the one `traceparent` names (the span that published
        an event, the consumer that queued a job); a new trace without one."""
        parent = propagate.extract({"traceparent": traceparent}) if traceparent else None
        with self.tracer.start_as_current_span(
            name, parent, kind=kind, attributes=attributes
        ) as span:
            yield span

    @contextmanager
    def batch_span(
        self, traceparents: Sequence[str | None], name: str, **attributes: Any
    ) -> Iterator[trace.Span]:
        """One consumer span for events applied together, linked to each publisher's span
        (a span has one parent; OpenTelemetry's messaging conventions link a batch's)."""
        links = [
            trace.Link(context)
            for context in (span_context(tp) for tp in dict.fromkeys(traceparents))
            if context is not None
        ]
        with self.tracer.start_as_current_span(
            name, kind=trace.SpanKind.CONSUMER, links=links, attributes=attributes
        ) as span:
            yield span

    @contextmanager
    def publish_spans(self, envelopes: Sequence[Envelope]) -> Iterator[None]:
        """A PRODUCER span per envelope, child of the span that wrote its outbox row; the
        envelope's traceparent becomes the publish span's, so consumers hang below it."""
        spans = []
        for envelope in envelopes:
            parent = (
                propagate.extract({"traceparent": envelope.traceparent})
                if envelope.traceparent
                else None
            )
            span = self.tracer.start_span(
                f"publish {envelope.type}",
                parent,
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.operation.type": "send",
                    "messaging.destination.name": envelope.type,
                    "messaging.message.id": envelope.id,
                },
            )
            envelope.traceparent = traceparent_of(span)
            spans.append(span)
        try:
            yield
        except BaseException as exc:
            for span in spans:
                if span.is_recording():
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            for span in spans:
                span.end()


@contextmanager
def within(traceparent: str | None) -> Iterator[None]:
    """Make the span `traceparent` names current (nothing recorded): the lines the bus logs
    about an event (a retry, a dead letter) carry the event's trace id."""
    if not traceparent:
        yield
        return
    token = otel_context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)


def span_context(traceparent: str | None) -> trace.SpanContext | None:
    """The span a W3C traceparent names, or None for a missing or malformed one."""
    if not traceparent:
        return None
    found = trace.get_current_span(remote_parent(traceparent)).get_span_context()
    return found if found.is_valid else None


def traceparent_of(span: trace.Span) -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, trace.set_span_in_context(span, otel_context.Context()))
    return carrier.get("traceparent")


def untraced() -> AbstractContextManager[None]:
    """No HTTP client spans inside: probes are not traced."""
    from opentelemetry.instrumentation.utils import suppress_http_instrumentation

    return suppress_http_instrumentation()


# W3C Trace Context's traceparent, as the TraceContext propagator reads it: a version that is
# not ff, then the trace and parent ids and the flags; version 00 has nothing after the flags.
_TRACEPARENT = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*"
)


def remote_parent(traceparent: str) -> otel_context.Context:
    """The context a caller's traceparent (no tracestate) makes the parent of a server span:
    what `TraceContextTextMapPropagator().extract` gives, at 1.8 µs instead of 6.2 (on every
    request a service gets from the gateway); an empty context for a malformed one."""
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None:
        return otel_context.Context()
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return otel_context.Context()
    found = trace.SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(flags, 16)),
    )
    if not found.is_valid:
        return otel_context.Context()
    return trace.set_span_in_context(trace.NonRecordingSpan(found), otel_context.Context())


def current_traceparent() -> str | None:
    """The current span as a W3C traceparent, spelled as the TraceContext propagator does
    (its `inject` through the global composite costs 2.5 µs; this 0.6, on every proxied call)."""
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return f"00-{found.trace_id:032x}-{found.span_id:016x}-{found.trace_flags:02x}"
