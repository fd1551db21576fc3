"""Where traces start: the gateway's own span goes upstream; a client's traceparent is
continued only for the internal callers `trace_parent_networks` names."""

from __future__ import annotations

import aiohttp

from gateway_harness import RunningGateway

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


def _forwarded(upstream) -> list[str]:
    return [value for name, value in upstream.seen[-1]["header_list"] if name == "traceparent"]


async def test_an_outside_callers_traceparent_is_not_continued(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    headers = {"traceparent": CLIENT_PARENT, "tracestate": "vendor=chosen"}
    async with http.get(gateway.url + "/api/users/me", headers=headers) as resp:
        await resp.read()
    (forwarded,) = _forwarded(upstream)
    version, trace_id, span_id, _ = forwarded.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
    assert trace_id != CLIENT_TRACE  # the gateway's span starts a trace of its own
    assert "tracestate" not in upstream.seen[-1]["headers"]


async def test_a_request_without_traceparent_starts_a_trace(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    traces = set()
    for _ in range(2):
        async with http.get(gateway.url + "/api/users/me") as resp:
            await resp.read()
        (forwarded,) = _forwarded(upstream)
        traces.add(forwarded.split("-")[1])
    assert len(traces) == 2  # one trace per request


async def test_an_internal_callers_traceparent_is_continued(
    upstream, start_gateway, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(trace_parent_networks="10.0.0.0/8, 127.0.0.0/8")
    async with http.get(
        gateway.url + "/api/users/me", headers={"traceparent": CLIENT_PARENT}
    ) as resp:
        await resp.read()
    (forwarded,) = _forwarded(upstream)
    _, trace_id, span_id, _ = forwarded.split("-")
    assert trace_id == CLIENT_TRACE
    assert span_id != "00f067aa0ba902b7"  # the gateway's own span, child of the caller's
