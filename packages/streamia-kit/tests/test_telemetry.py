"""Tracing in the kit: an event's trace runs from the span that wrote its outbox row through
the relay's publish span to each consumer's span, on both buses, and the bus's own lines about
an event carry its trace id."""

from __future__ import annotations

import io
import logging

import httpx
import orjson
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from streamia_kit import logging as kit_logging
from streamia_kit.events import Envelope, UserDeleted
from streamia_kit.logging import add_trace_ids
from streamia_kit.messaging import OutboxRelay, idempotent_handler
from streamia_kit.middleware import RequestContextMiddleware
from streamia_kit.telemetry import Tracing, remote_parent, span_context
from streamia_kit.testing import wait_for


def _ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _deleted() -> UserDeleted:
    return UserDeleted(user_id="u1", email="u1@x.io", first_name="A", last_name="B")


async def test_a_consumer_span_is_a_child_of_the_relays_publish_span_in_the_writers_trace(
    harness,
):
    tracing = Tracing.disabled()  # no export: ids are made and flow all the same
    relay = OutboxRelay(harness.db, harness.infra.bus, harness.outbox.table, tracing=tracing)
    seen: list[tuple[str | None, str]] = []

    async def apply(session, event, envelope):
        seen.append((envelope.traceparent, _ids(trace.get_current_span())[0]))

    harness.infra.bus.subscribe(
        "probe",
        "user.deleted",
        idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, apply, tracing=tracing),
    )
    await harness.infra.start()
    with tracing.span_after(None, "request") as request:
        async with harness.db.transaction() as session:
            written = await harness.outbox.add(session, _deleted())
    trace_id, request_span = _ids(request)
    assert written.traceparent is not None
    assert written.traceparent.split("-")[1:3] == [trace_id, request_span]
    with structlog.testing.capture_logs(processors=[add_trace_ids]) as lines:
        await relay.drain()
        await wait_for(lambda: len(seen) == 1, message="the consumer")
        # The step's line is written once the handler's unit of work has committed, after it.
        await wait_for(
            lambda: any(line["event"] == "event_consumed" for line in lines),
            message="the saga step's line",
        )
    # The saga step's INFO line, written inside the consumer's span.
    [step] = [line for line in lines if line["event"] == "event_consumed"]
    assert step["queue"] == "probe.user.deleted" and step["outcome"] == "applied"
    assert step["event_id"] == written.id and step["event_type"] == "user.deleted"
    assert step["trace_id"] == trace_id and step["duration_ms"] >= 0
    [(published, consumer_trace)] = seen
    publish = span_context(published)
    assert publish is not None
    # The relay's publish span: same trace, a span of its own (the consumer's parent).
    assert format(publish.trace_id, "032x") == trace_id
    assert format(publish.span_id, "016x") != request_span
    assert consumer_trace == trace_id


async def test_the_bus_lines_about_a_failing_event_carry_its_trace_id(harness):
    tracing = Tracing.disabled()
    relay = OutboxRelay(harness.db, harness.infra.bus, harness.outbox.table, tracing=tracing)
    attempts: list[str] = []

    async def failing(envelope):
        attempts.append(envelope.id)
        raise RuntimeError("not yet")

    harness.infra.bus.subscribe("failing", "user.deleted", failing)
    await harness.infra.start()
    with tracing.span_after(None, "request") as request:
        async with harness.db.transaction() as session:
            await harness.outbox.add(session, _deleted())
    with structlog.testing.capture_logs(processors=[add_trace_ids]) as lines:
        await relay.drain()
        await wait_for(lambda: len(attempts) >= 1, message="a failed attempt")
        await wait_for(
            lambda: any(line["event"] == "handler_failed" for line in lines),
            message="the retry line",
        )
    failed = next(line for line in lines if line["event"] == "handler_failed")
    assert failed["trace_id"] == _ids(request)[0]


@pytest.mark.parametrize("lines", ["structlog", "json"])
async def test_a_request_span_is_named_by_its_route_and_its_access_line_carries_its_ids(
    lines_to, lines
):
    """Access lines go through structlog (console logs, or logging not configured) or, as
    shipped with JSON logs, straight to the process's `LineBuffer`: the same keys either way."""
    json_out = lines_to(lines == "json")
    exported = InMemorySpanExporter()
    tracing = Tracing("access-probe", None, exporter=exported)
    app = FastAPI()

    @app.get("/api/movies/{movie_id}")
    async def movie(movie_id: str) -> dict[str, str]:
        return {"id": movie_id}

    app.add_api_route("/health", lambda: {"status": "ok"})
    app.add_middleware(RequestContextMiddleware, service="movies", tracing=tracing)
    access = logging.getLogger("streamia.access")
    level = access.level
    access.setLevel(logging.INFO)
    try:
        with structlog.testing.capture_logs(processors=[add_trace_ids]) as captured:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
                resp = await client.get("/api/movies/m42")
                assert (await client.get("/health")).status_code == 200
    finally:
        access.setLevel(level)
    assert resp.headers["x-streamia-route"] == "/api/movies/{movie_id}"
    [span] = exported.get_finished_spans()  # /health: none
    assert span.name == "GET /api/movies/{movie_id}"
    assert span.resource.attributes["service.name"] == "access-probe"
    if json_out is not None:  # the pipeline adds these from the context; the buffer has them
        written = [orjson.loads(raw) for raw in json_out.getvalue().splitlines()]
        assert not [line for line in captured if line["event"] == "request"]
        assert {line["logger"] for line in written} == {"streamia.access"}
        assert written[0]["request_id"] == resp.headers["x-request-id"]
    else:
        written = captured
    [line] = [line for line in written if line["event"] == "request"]  # /health: none
    assert line["route"] == "/api/movies/{movie_id}" and line["status"] == 200
    assert line["service"] == "movies"
    assert (line["trace_id"], line["span_id"]) == (
        format(span.context.trace_id, "032x"),
        format(span.context.span_id, "016x"),
    )


@pytest.fixture
def lines_to(monkeypatch):
    """`lines_to(json)`: the process's JSON access lines into a BytesIO (returned), or none."""

    def use(json: bool) -> io.BytesIO | None:
        out = io.BytesIO() if json else None
        buffer = kit_logging.LineBuffer(out) if out is not None else None
        monkeypatch.setattr(kit_logging, "_access_lines", buffer)
        return out

    return use


def test_each_service_has_its_own_provider_and_service_name():
    users = Tracing.of("users-probe", None)
    movies = Tracing.of("movies-probe", None)
    assert users.provider is not movies.provider
    assert users.provider.resource.attributes["service.name"] == "users-probe"
    assert movies.provider.resource.attributes["service.name"] == "movies-probe"
    assert Tracing.of("users-probe", None) is users  # apps built twice share it


def test_the_sample_ratio_decides_new_traces_and_a_callers_decision_is_followed():
    from opentelemetry.sdk.trace.sampling import Decision
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    # An endpoint nobody listens on: nothing is recorded here, so nothing is sent.
    tracing = Tracing("sampled-probe", "http://127.0.0.1:9", sample_ratio=0.0)
    full = Tracing("all-probe", "http://127.0.0.1:9")
    try:
        sampler = tracing.provider.sampler
        trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736
        assert sampler.should_sample(None, trace_id, "root").decision is Decision.DROP
        sampled_parent = set_span_in_context(
            NonRecordingSpan(SpanContext(trace_id, 0x00F067AA0BA902B7, True, TraceFlags(1)))
        )
        decision = sampler.should_sample(sampled_parent, trace_id, "child").decision
        assert decision is Decision.RECORD_AND_SAMPLE
        assert full.provider.sampler.should_sample(None, trace_id, "root").decision.is_sampled()
    finally:
        tracing.provider.shutdown()
        full.provider.shutdown()


async def test_a_step_failing_on_a_dependency_is_a_debug_line_and_any_other_failure_a_warning(
    harness,
):
    errors: list[Exception] = [ConnectionRefusedError("database down"), RuntimeError("a bug")]

    async def apply(session, event, envelope):
        raise errors.pop(0)

    handler = idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, apply)
    envelope = Envelope.wrap(_deleted(), "streamia/test")
    with structlog.testing.capture_logs() as lines:
        for _ in range(2):
            try:
                await handler(envelope)
            except (ConnectionRefusedError, RuntimeError):
                pass
    steps = [
        (line["outcome"], line["log_level"]) for line in lines if line["event"] == "event_consumed"
    ]
    # The bus says once per outage that a dependency is down; the step does not say it per try.
    assert steps == [("unavailable", "debug"), ("failed", "warning")]


def test_without_an_exporter_a_span_is_the_one_the_sdk_would_drop_and_its_traceparent_goes_on():
    from opentelemetry import context as otel_context
    from opentelemetry import propagate

    from streamia_kit.telemetry import current_traceparent

    tracing = Tracing("unexported-probe", None)
    parent_header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    parent = propagate.extract({"traceparent": parent_header, "tracestate": "vendor=kept"})
    for given in (parent, otel_context.Context()):
        ours = tracing.start_span("GET", given, kind=trace.SpanKind.SERVER)
        sdks = tracing.tracer.start_span("GET", given, kind=trace.SpanKind.SERVER)
        assert not ours.is_recording() and not sdks.is_recording()
        mine, theirs = ours.get_span_context(), sdks.get_span_context()
        assert mine.is_valid and mine.span_id != theirs.span_id
        assert (mine.trace_flags, mine.trace_state, mine.is_remote) == (
            theirs.trace_flags,
            theirs.trace_state,
            theirs.is_remote,
        )
        if given is parent:
            assert mine.trace_id == theirs.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
        token = otel_context.attach(trace.set_span_in_context(ours, given))
        try:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            assert current_traceparent() == carrier["traceparent"]
        finally:
            otel_context.detach(token)
    assert current_traceparent() is None  # outside any span


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",  # a later version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # 00 has no more
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # hex is lowercase
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "",
        "garbage",
    ],
)
def test_a_callers_traceparent_is_read_as_the_trace_context_propagator_reads_it(traceparent):
    expected = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    got = remote_parent(traceparent)
    want = trace.get_current_span(expected).get_span_context()
    found = trace.get_current_span(got).get_span_context()
    assert (found.is_valid, found.trace_id, found.span_id, found.trace_flags, found.is_remote) == (
        want.is_valid,
        want.trace_id,
        want.span_id,
        want.trace_flags,
        want.is_remote,
    )
