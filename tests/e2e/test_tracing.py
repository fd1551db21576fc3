"""Issue 14, tracing: one trace from the gateway through every saga step, each span with its
own service's name, in both modes.

The session's platform exports to an in-process OTLP/HTTP receiver (`otlp`, decoding
ExportTraceServiceRequest) only the traces a test starts: each request here carries a sampled
traceparent of its own, which the gateway continues (this machine is an internal caller
there, `harness.traced_env`). An outsider's traceparent is only a link:
services/gateway/tests (test_tracing.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

TRACE_DEADLINE = 20.0  # spans leave every 0.2 s (OTEL_BSP_SCHEDULE_DELAY)
MOVIE_ROUTE = "/api/movies/{movie_id}"
DELETION_CONSUMERS = ("favorites", "ratings", "comments", "notifications")
OPERATIONS = ("/health", "/ready", "/metrics")


def _named(spans: list[Any], service: str, name: str) -> Any:
    return next((s for s in spans if s.service == service and s.name == name), None)


def _ancestors(span: Any, by_id: dict[str, Any]) -> list[Any]:
    """The span's parent, its parent's parent, ... as far as the trace's spans go."""
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


async def _trace_with(otlp, harness, trace_id: str, *expected: tuple[str, str]) -> list[Any]:
    async def arrived() -> list[Any] | None:
        spans = otlp.trace(trace_id)
        return spans if all(_named(spans, *key) for key in expected) else None

    return await harness.wait_until(arrived, TRACE_DEADLINE, 0.1, f"spans {expected}")


async def test_registering_is_one_trace_from_the_gateway_to_the_welcome_email(
    platform, otlp, api, harness
) -> None:
    traceparent, trace_id, caller = harness.new_traceparent()
    resp = await api.post(
        "/api/users/register", json=harness.new_user(), headers={"traceparent": traceparent}
    )
    assert resp.status_code == 201, resp.text
    assert "x-streamia-route" not in resp.headers  # the gateway's, never the client's
    user_id = resp.json()["user"]["id"]
    # Named by the template of the upstream route that answered, in every service.
    root_name = "POST /api/users/register"
    spans = await _trace_with(
        otlp,
        harness,
        trace_id,
        ("gateway", root_name),
        ("users", root_name),
        ("users", "publish user.registered"),
        ("notifications", "consume user.registered"),
        ("notifications", "send email welcome"),
    )
    by_id = {span.span_id: span for span in spans}
    root = _named(spans, "gateway", root_name)
    server = _named(spans, "users", root_name)
    publish = _named(spans, "users", "publish user.registered")
    consume = _named(spans, "notifications", "consume user.registered")
    send = _named(spans, "notifications", "send email welcome")

    assert root.kind == "SERVER" and root.parent_id == caller
    assert server.kind == "SERVER" and root in _ancestors(server, by_id)
    # The gateway's call upstream is a CLIENT span between the two, its traceparent the one sent.
    (upstream_call,) = [
        s
        for s in spans
        if s.service == "gateway" and s.kind == "CLIENT" and "http.request.method" in s.attributes
    ]
    assert upstream_call.parent_id == root.span_id
    assert server.parent_id == upstream_call.span_id
    # The relay publishes the outbox row below the request that wrote it; notifications
    # consumes below the publish and sends the email below its consumer span.
    assert publish.kind == "PRODUCER" and server in _ancestors(publish, by_id)
    assert consume.kind == "CONSUMER" and consume.parent_id == publish.span_id
    assert send in [s for s in spans if consume in _ancestors(s, by_id)]
    # Database statements are CLIENT spans of the service that ran them.
    statements = {s.service for s in spans if s.kind == "CLIENT" and "db.system" in s.attributes}
    assert statements >= {"users", "notifications"}
    # No span is named after this user's id: names are templates.
    assert not [s.name for s in spans if user_id in s.name]


async def test_deleting_an_account_is_one_trace_across_every_consumer(
    platform, otlp, api, client, harness
) -> None:
    account = await platform.register(client)
    traceparent, trace_id, _ = harness.new_traceparent()
    resp = await api.request(
        "DELETE",
        "/api/users/me",
        headers={**account.auth, "traceparent": traceparent},
        json={"password": account.password},
    )
    assert resp.status_code == 204, resp.text
    spans = await _trace_with(
        otlp,
        harness,
        trace_id,
        ("gateway", "DELETE /api/users/me"),
        ("users", "publish user.deleted"),
        ("notifications", "send email farewell"),
        *((service, "consume user.deleted") for service in DELETION_CONSUMERS),
    )
    publish = _named(spans, "users", "publish user.deleted")
    for service in DELETION_CONSUMERS:
        consume = _named(spans, service, "consume user.deleted")
        assert consume.parent_id == publish.span_id, service
        assert consume.attributes["messaging.destination.name"] == f"{service}.user.deleted"


async def test_a_movie_lookup_is_named_by_its_route_and_probes_make_no_spans(
    platform, otlp, api, client, harness
) -> None:
    probe_parent, probe_trace, _ = harness.new_traceparent()
    for name in ("gateway", "users", "notifications"):
        for path in OPERATIONS:
            resp = await client.get(
                platform.url(name) + path, headers={"traceparent": probe_parent}
            )
            assert resp.status_code == 200, (name, path)
    # A traced request after them: once its spans are in, theirs would be too.
    traceparent, trace_id, _ = harness.new_traceparent()
    movie_id = uuid.uuid4().hex[:24]
    resp = await api.get(f"/api/movies/{movie_id}", headers={"traceparent": traceparent})
    assert resp.status_code == 404
    spans = await _trace_with(
        otlp, harness, trace_id, ("gateway", f"GET {MOVIE_ROUTE}"), ("movies", f"GET {MOVIE_ROUTE}")
    )
    assert not [s.name for s in spans if movie_id in s.name]
    assert otlp.trace(probe_trace) == []
