"""Routing by prefix, the 404 shape and what the upstream receives."""

from __future__ import annotations

import aiohttp
import pytest

from gateway_harness import RunningGateway, closed_port_url, gateway_settings, run_gateway
from streamia_gateway.config import UPSTREAMS, GatewaySettings


@pytest.mark.parametrize(
    "path",
    [
        "/api/users/me",
        "/api/movies",
        "/api/movies/explore",
        "/api/favorites/",
        "/api/ratings/movie/m1",
        "/api/comments/m1",
        "/api/playback/trending",
        "/.well-known/jwks.json",
    ],
)
async def test_each_api_prefix_reaches_its_upstream(
    upstream, start_gateway, http: aiohttp.ClientSession, path: str
) -> None:
    # Every other upstream points nowhere, so only the right one can answer.
    name = "users" if path.startswith("/.well-known") else path.split("/")[2]
    dead = closed_port_url()
    overrides = {f"{n}_url": dead for n in UPSTREAMS}
    overrides[f"{name}_url"] = upstream.url
    gw = await start_gateway(**overrides)
    async with http.get(gw.url + path) as resp:
        assert resp.status == 200
        body = await resp.json()
    if path != "/.well-known/jwks.json":
        assert body["path"] == path


async def test_path_and_query_pass_through_unchanged(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    url = gateway.url + "/api/movies/explore%2Fx?search=caf%C3%A9&page=2&page=3"
    async with http.get(aiohttp.client.URL(url, encoded=True)) as resp:
        body = await resp.json()
    assert body["raw_path"] == "/api/movies/explore%2Fx?search=caf%C3%A9&page=2&page=3"


@pytest.mark.parametrize(
    "path", ["/api", "/api/usersx", "/api/notifications/x", "/nope", "/api/users/../admin"]
)
async def test_unknown_routes_get_a_json_404(
    gateway: RunningGateway, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(aiohttp.client.URL(gateway.url + path, encoded=True)) as resp:
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == {
            "error": "Endpoint not found",
            "message": "Endpoint not found",
            "code": "endpoint_not_found",
        }


async def test_upstream_headers_are_passed_back_and_hop_by_hop_ones_dropped(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/users/me", headers={"Connection": "keep-alive"}) as r:
        assert r.headers["X-Upstream"] == "fake"
        assert "Access-Control-Allow-Origin" not in r.headers  # the gateway owns CORS
        await r.read()
    seen = upstream.seen[-1]["headers"]
    assert "connection" not in seen or seen["connection"] != "keep-alive, x"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


async def test_the_clients_headers_reach_the_upstream_verbatim(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    sent = [
        ("Accept", "application/vnd.streamia+json"),
        ("User-Agent", "StreamiaTV/2.1 (tvOS)"),
        ("X-Tag", "first"),
        ("X-Tag", "second"),
        ("X-Spaces", "a  b"),
    ]
    async with http.get(
        gateway.url + "/api/users/echo", headers=sent, skip_auto_headers=("Accept-Encoding",)
    ) as resp:
        assert resp.status == 200
        await resp.read()
    seen = upstream.seen[-1]
    assert [h for h in seen["header_list"] if h[0] in ("x-tag", "x-spaces")] == [
        ["x-tag", "first"],
        ["x-tag", "second"],
        ["x-spaces", "a  b"],
    ]
    assert seen["headers"]["accept"] == "application/vnd.streamia+json"
    assert seen["headers"]["user-agent"] == "StreamiaTV/2.1 (tvOS)"
    # None of the upstream client's own: no compression asked for, no body type made up.
    assert "accept-encoding" not in seen["headers"]
    assert "content-type" not in seen["headers"]


async def test_an_upstream_header_that_is_not_ascii_is_left_out_and_the_rest_pass(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/movies/non-ascii-header") as resp:
        body = await resp.json()
    assert (resp.status, body, resp.headers["X-Plain"]) == (200, {}, "ok")
    assert "X-Title" not in resp.headers  # pyreqwest reads only visible ASCII as text


async def test_request_id_is_honoured_forwarded_and_returned(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/users/me", headers={"X-Request-Id": "abc-123"}) as r:
        assert r.headers["X-Request-Id"] == "abc-123"
        await r.read()
    assert upstream.seen[-1]["headers"]["x-request-id"] == "abc-123"


async def test_a_request_id_is_minted_when_missing(
    upstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/users/me") as r:
        minted = r.headers["X-Request-Id"]
        await r.read()
    assert len(minted) == 32
    assert upstream.seen[-1]["headers"]["x-request-id"] == minted
    assert [k for k, _ in upstream.seen[-1]["header_list"]].count("x-request-id") == 1


async def test_settings_accept_comma_separated_origins() -> None:
    settings = GatewaySettings(cors_origins="https://a.example, https://b.example")
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


async def test_the_index_links_to_the_apis(gateway: RunningGateway, http) -> None:
    async with http.get(gateway.url + "/") as resp:
        assert resp.status == 200
        assert (await resp.json())["apis"]["movies"] == "/api/movies"


async def test_gateway_can_run_without_lifespan_events(upstream) -> None:
    """httpx's ASGI transport sends no lifespan: the gateway starts lazily."""
    import httpx

    from streamia_gateway.app import create_app

    app = create_app(gateway_settings(upstream.url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        resp = await client.get("/api/users/me")
    await app.shutdown()
    assert resp.status_code == 200
    assert resp.json()["path"] == "/api/users/me"


_ = run_gateway


async def test_a_redirect_to_a_service_address_reaches_the_client_on_the_public_url(
    upstream, start_gateway, http: aiohttp.ClientSession
) -> None:
    gw = await start_gateway(public_url="https://streamia.example.com/")
    target = f"{upstream.url}/api/users/me?x=1"
    async with http.get(
        gw.url + "/api/movies/redirect", params={"to": target}, allow_redirects=False
    ) as resp:
        assert resp.status == 307
        assert resp.headers["Location"] == "https://streamia.example.com/api/users/me?x=1"


@pytest.mark.parametrize(
    "location", ["https://res.cloudinary.com/demo/video.mp4", "/api/movies/m1/stream"]
)
async def test_a_redirect_elsewhere_passes_through_unchanged(
    gateway: RunningGateway, http: aiohttp.ClientSession, location: str
) -> None:
    async with http.get(
        gateway.url + "/api/movies/redirect", params={"to": location}, allow_redirects=False
    ) as resp:
        assert resp.status == 307
        assert resp.headers["Location"] == location
