"""Issue 14, tracing: one trace from the gateway through every saga step, each span with its
own service's name, and the trace id on the log lines of the request and of each step.

A platform of its own per mode (the session's exports nothing), pointed at an in-process
OTLP/HTTP receiver (`harness.OtlpReceiver`), with INFO logs so the lines can be read."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.e2e

TRACE_DEADLINE = 20.0  # spans leave every 0.2 s (OTEL_BSP_SCHEDULE_DELAY below)
MOVIE_ROUTE = "/api/movies/{movie_id}"
DELETION_CONSUMERS = ("favorites", "ratings", "comments", "notifications")
# A caller that is not an internal one: its trace id must not become the gateway's.
OUTSIDE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OUTSIDE_PARENT = f"00-{OUTSIDE_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("distributed", marks=pytest.mark.distributed)],
)
def traced(request: pytest.FixtureRequest, harness, tmp_path_factory) -> Iterator[Any]:
    """(platform, receiver): a platform exporting its spans to the receiver."""
    if request.param == "distributed":
        from streamia_kit.testing import require_infrastructure

        require_infrastructure()
    receiver = harness.OtlpReceiver()
    platform = harness.Platform(
        request.param,
        tmp_path_factory.mktemp(f"e2e-tracing-{request.param}"),
        extra_env={
            "STREAMIA_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "STREAMIA_LOG_LEVEL": "INFO",
            "STREAMIA_ACCESS_LOG": "true",
        },
    )
    try:
        platform.start()
        yield platform, receiver
    finally:
        platform.close()
        receiver.close()


def _root(receiver: Any, request_id: str) -> Any:
    """The gateway's span of the request sent with this X-Request-Id."""
    found = [
        span
        for span in receiver.snapshot()
        if span.service == "gateway" and span.attributes.get("http.request_id") == request_id
    ]
    return found[0] if found else None


def _named(spans: list[Any], service: str, name: str) -> Any:
    return next((s for s in spans if s.service == service and s.name == name), None)


def _log_lines(platform: Any) -> list[dict[str, Any]]:
    lines = []
    for path in (platform.data_dir / "logs").glob("*.log"):
        for raw in path.read_bytes().splitlines():
            if raw.startswith(b"{"):
                try:
                    lines.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    continue
    return lines


async def test_registering_is_one_trace_from_the_gateway_to_the_welcome_email(
    traced, client, harness
) -> None:
    platform, receiver = traced
    request_id = uuid.uuid4().hex
    body = harness.new_user()
    resp = await client.post(
        platform.gateway + "/api/users/register",
        json=body,
        headers={"X-Request-Id": request_id, "traceparent": OUTSIDE_PARENT},
    )
    assert resp.status_code == 201, resp.text
    user_id = resp.json()["user"]["id"]

    async def whole_trace() -> list[Any] | None:
        root = _root(receiver, request_id)
        if root is None:
            return None
        spans = receiver.trace(root.trace_id)
        expected = [
            ("users", "POST /api/users/register"),
            ("users", "publish user.registered"),
            ("notifications", "consume user.registered"),
            ("notifications", "send email welcome"),
        ]
        return spans if all(_named(spans, *key) for key in expected) else None

    spans = await harness.wait_until(whole_trace, TRACE_DEADLINE, 0.1, "the register saga's spans")
    root = _root(receiver, request_id)
    by_id = {span.span_id: span for span in spans}

    # The gateway starts the trace; the client's traceparent is only a link.
    assert root.kind == "SERVER" and root.parent_id == ""
    # Named by the template of the upstream route that answered (users tells it the
    # gateway in a header the client never sees).
    assert root.name == "POST /api/users/register"
    assert "x-streamia-route" not in resp.headers
    assert root.trace_id != OUTSIDE_TRACE
    assert (OUTSIDE_TRACE, "00f067aa0ba902b7") in root.links

    # users' server span (named by its route template) is below the gateway's.
    server = _named(spans, "users", "POST /api/users/register")
    assert server is not None, sorted((s.service, s.name) for s in spans)
    assert _ancestors(server, by_id)[-1] is root
    # ... the outbox row's relay publishes below it, and notifications consumes below that,
    # then sends the email below its consumer span.
    publish = _named(spans, "users", "publish user.registered")
    consume = _named(spans, "notifications", "consume user.registered")
    send = _named(spans, "notifications", "send email welcome")
    assert publish is not None and publish.kind == "PRODUCER"
    assert server in _ancestors(publish, by_id)
    assert consume is not None and consume.kind == "CONSUMER"
    assert consume.parent_id == publish.span_id
    assert consume in _ancestors(send, by_id)
    # Database statements are spans of the service that ran them.
    statements = [s for s in spans if s.kind == "CLIENT" and "db.system" in str(s.attributes)]
    assert {s.service for s in statements} >= {"users", "notifications"}
    # Span names are templates: no span is named after this user's id.
    assert not [s.name for s in spans if user_id in s.name]

    # The same trace id on the gateway's access line, users' and the consumer's lines.
    lines = [line for line in _log_lines(platform) if line.get("trace_id") == root.trace_id]
    assert any(
        line.get("event") == "request" and line.get("upstream") == "users" for line in lines
    ), "no gateway access line with the trace id"
    assert any(
        line.get("event") == "request" and line.get("service") == "users" for line in lines
    ), "no users access line with the trace id"
    consumed = [
        line
        for line in lines
        if line.get("event") == "event_consumed"
        and line.get("queue") == "notifications.user.registered"
    ]
    assert consumed and consumed[0]["outcome"] == "applied" and consumed[0]["span_id"]


async def test_deleting_an_account_is_one_trace_across_every_consumer(
    traced, client, harness
) -> None:
    platform, receiver = traced
    account = await platform.register(client)
    request_id = uuid.uuid4().hex
    resp = await client.request(
        "DELETE",
        platform.gateway + "/api/users/me",
        headers={**account.auth, "X-Request-Id": request_id},
        json={"password": account.password},
    )
    assert resp.status_code == 204, resp.text

    async def consumers_traced() -> list[Any] | None:
        root = _root(receiver, request_id)
        if root is None:
            return None
        spans = receiver.trace(root.trace_id)
        found = {s.service for s in spans if s.name == "consume user.deleted"}
        done = (
            found >= set(DELETION_CONSUMERS)
            and _named(spans, "users", "publish user.deleted")
            and _named(spans, "notifications", "send email farewell")
        )
        return spans if done else None

    spans = await harness.wait_until(
        consumers_traced, TRACE_DEADLINE, 0.1, "every user.deleted consumer's span"
    )
    root = _root(receiver, request_id)
    publish = _named(spans, "users", "publish user.deleted")
    assert publish.kind == "PRODUCER"
    for service in DELETION_CONSUMERS:
        consume = _named(spans, service, "consume user.deleted")
        assert consume.parent_id == publish.span_id, service
        assert consume.attributes["messaging.destination.name"].endswith(f"{service}.user.deleted")
    assert root.name == "DELETE /api/users/me"
    assert _named(spans, "users", "DELETE /api/users/me") is not None


async def test_probes_and_scrapes_make_no_spans(traced, client, harness) -> None:
    platform, receiver = traced
    for name in ("gateway", "users", "notifications"):
        for path in ("/health", "/ready", "/metrics"):
            resp = await client.get(platform.url(name) + path)
            assert resp.status_code == 200, (name, path)
    # A traced request after them: once its spans are in, theirs would be too.
    request_id = uuid.uuid4().hex
    movie_id = uuid.uuid4().hex[:24]
    resp = await client.get(
        platform.gateway + f"/api/movies/{movie_id}", headers={"X-Request-Id": request_id}
    )
    assert resp.status_code == 404

    async def arrived() -> Any:
        root = _root(receiver, request_id)
        if root is None:
            return None
        spans = receiver.trace(root.trace_id)
        return root if any(s.service == "movies" and s.kind == "SERVER" for s in spans) else None

    root = await harness.wait_until(arrived, TRACE_DEADLINE, 0.1, "the movie lookup's spans")
    # Both spans are named by the movies route's template, not by this movie's id.
    assert root.name == f"GET {MOVIE_ROUTE}"
    assert _named(receiver.trace(root.trace_id), "movies", f"GET {MOVIE_ROUTE}") is not None
    operations = [
        (span.service, span.name)
        for span in receiver.snapshot()
        if any(path in span.name for path in ("/health", "/ready", "/metrics"))
        or span.attributes.get("http.url", "").endswith(("/health", "/ready", "/metrics"))
    ]
    assert operations == []


def _ancestors(span: Any, by_id: dict[str, Any]) -> list[Any]:
    """The span's parent, its parent's parent, ... up to the root (all in one trace)."""
    chain = []
    while span.parent_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain
