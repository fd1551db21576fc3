"""What the gateway exposes: nosniff on every answer, nothing internal through the ingress."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from gateway_harness import RunningGateway


def _ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


@pytest.mark.parametrize(
    "path", ["/api/movies", "/api/movies/m1/stream", "/api/nowhere", "/health", "/", "/docs"]
)
async def test_every_answer_says_nosniff_once(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(gateway.url + path, headers={"Accept": "text/html"}) as resp:
        await resp.read()
        assert resp.headers.getall("X-Content-Type-Options") == ["nosniff"], resp.status


async def test_metrics_and_readiness_are_not_served_to_the_public_through_the_ingress(
    start_gateway, http: aiohttp.ClientSession
) -> None:
    gw = await start_gateway(trusted_proxies=["127.0.0.1/32"])  # we play the ingress
    for path in ("/metrics", "/ready"):
        async with http.get(gw.url + path, headers={"X-Forwarded-For": _ip()}) as resp:
            assert resp.status == 404, path
            assert (await resp.json())["code"] == "endpoint_not_found"
        async with http.get(gw.url + path) as resp:  # Prometheus, calling the pod directly
            assert resp.status in (200, 503), path
