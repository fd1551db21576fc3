"""/health, /ready and /metrics."""

from __future__ import annotations

import aiohttp

from gateway_harness import FakeUpstream, RunningGateway, closed_port_url


async def test_health_is_ok(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    async with http.get(gateway.url + "/health") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_ready_when_every_upstream_answers(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/ready") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {
        "users",
        "movies",
        "favorites",
        "ratings",
        "comments",
        "playback",
    }


async def test_not_ready_names_the_missing_upstream(
    upstream: FakeUpstream, start_gateway, http: aiohttp.ClientSession
) -> None:
    gw = await start_gateway(comments_url=closed_port_url())
    upstream.healthy = False
    async with http.get(gw.url + "/ready") as resp:
        assert resp.status == 503
        body = await resp.json()
    assert body["code"] == "not_ready"
    assert body["details"]["comments"] == "unreachable"
    assert body["details"]["users"] == "status 503"


async def test_own_endpoints_refuse_other_methods(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.post(gateway.url + "/health") as resp:
        assert resp.status == 405
        assert (await resp.json())["code"] == "method_not_allowed"


async def test_metrics_count_requests_by_upstream_route_and_status(
    start_gateway, http: aiohttp.ClientSession
) -> None:
    gw = await start_gateway(favorites_url=closed_port_url())
    paths = ("/api/movies/abc", "/api/movies/def", "/api/favorites", "/api/nowhere/1")
    templated = ("/api/movies/templated/m-1", "/api/movies/templated/m-2")
    for path in (*paths, *templated):
        async with http.get(gw.url + path) as resp:
            await resp.read()
    for path in ("/health", "/ready", "/metrics"):  # probes and scrapes are not traffic
        async with http.get(gw.url + path) as resp:
            await resp.read()
    async with http.get(gw.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    total = "streamia_gateway_requests_total"
    movies = 'route="/api/movies/{path}",status="200",upstream="movies"'
    assert total + '{method="GET",' + movies + "} 2.0" in text
    favorites = 'route="/api/favorites/{path}",status="503",upstream="favorites"'
    assert total + '{method="GET",' + favorites + "} 1.0" in text
    assert total + '{method="GET",route="unmatched",status="404",upstream="gateway"} 1.0' in text
    # An upstream that names the route that answered (X-Streamia-Route) labels it: the
    # template, one series for both movies, never sent on to the client.
    templated = 'route="/api/movies/templated/{movie_id}",status="200",upstream="movies"'
    assert total + '{method="GET",' + templated + "} 2.0" in text
    assert "m-1" not in text
    assert "/health" not in text and "/ready" not in text and "/metrics" not in text
    assert "abc" not in text  # a raw path never becomes a label value
    assert "process_resident_memory_bytes" in text
    assert "python_info" in text
    assert 'streamia_gateway_circuit_state{upstream="favorites"} 0.0' in text
    assert "streamia_gateway_request_duration_seconds_bucket" in text


async def test_openapi_merges_the_services_public_paths(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/openapi.json") as resp:
        assert resp.status == 200
        spec = await resp.json()
    assert "/api/users/me" in spec["paths"]
    assert "/health" not in spec["paths"]  # a service's own operations stay private
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_docs_serve_swagger_ui_over_the_merged_document(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/docs") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        page = await resp.text()
    assert 'data-openapi-url="/openapi.json"' in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js", "favicon.png"):
        assert f'"/docs/assets/{asset}"' in page
        async with http.get(f"{gateway.url}/docs/assets/{asset}") as resp:
            assert resp.status == 200, asset
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert len(await resp.read()) > 0
    async with http.get(gateway.url + "/docs/assets/core.py") as resp:
        assert resp.status == 404
        assert (await resp.json())["code"] == "endpoint_not_found"
