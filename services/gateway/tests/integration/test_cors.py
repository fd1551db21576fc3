"""The CORS allow-list: refused origins get 403 JSON, allowed ones proper CORS headers."""

from __future__ import annotations

import aiohttp

from gateway_harness import FakeUpstream, RunningGateway

ALLOWED = "http://localhost:5173"


async def test_a_refused_origin_gets_a_403_json_error(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(
        gateway.url + "/api/movies", headers={"Origin": "https://evil.example"}
    ) as resp:
        assert resp.status == 403
        assert resp.headers["Content-Type"] == "application/json"
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert await resp.json() == {
            "error": "Origin not allowed",
            "message": "Origin not allowed",
            "code": "cors_forbidden",
        }
    assert upstream.seen == []


async def test_a_refused_origin_preflight_gets_403_too(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.options(
        gateway.url + "/api/movies",
        headers={"Origin": "null", "Access-Control-Request-Method": "DELETE"},
    ) as resp:
        assert resp.status == 403
        assert (await resp.json())["code"] == "cors_forbidden"


async def test_an_allowed_preflight_is_answered_by_the_gateway(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.options(
        gateway.url + "/api/favorites",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    ) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert resp.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        assert int(resp.headers["Access-Control-Max-Age"]) > 0
        assert "Origin" in resp.headers["Vary"]
    assert upstream.seen == []


async def test_an_allowed_origin_gets_cors_headers_and_exposed_rate_limit_headers(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/movies", headers={"Origin": ALLOWED}) as resp:
        assert resp.status == 200
        assert resp.headers.getall("Access-Control-Allow-Origin") == [
            ALLOWED
        ]  # upstream's "*" dropped
        exposed = {
            h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")
        }
        assert {
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "retry-after",
            "x-request-id",
            "content-range",
            "accept-ranges",
        } <= exposed


async def test_errors_to_an_allowed_origin_carry_cors_headers(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/nothing", headers={"Origin": ALLOWED}) as resp:
        assert resp.status == 404
        assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_the_gateways_own_origin_is_allowed(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.post(gateway.url + "/api/movies", headers={"Origin": gateway.url}) as resp:
        assert resp.status == 200


async def test_a_wildcard_allows_any_origin(start_gateway, http: aiohttp.ClientSession) -> None:
    gw = await start_gateway(cors_origins=["*"])
    async with http.get(gw.url + "/api/movies", headers={"Origin": "https://x.example"}) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == "https://x.example"
        assert "Access-Control-Allow-Credentials" not in resp.headers
