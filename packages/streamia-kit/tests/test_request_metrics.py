"""The services' RED metrics: per route template, without probes and scrapes."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from streamia_kit.errors import install_error_handlers
from streamia_kit.middleware import (
    UNMATCHED_ROUTE,
    RequestContextMiddleware,
    TrailingSlashMiddleware,
)


def _app(service: str) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    movies = APIRouter(prefix="/api/movies")

    @movies.get("/{movie_id}")
    async def movie(movie_id: str) -> dict[str, str]:
        return {"id": movie_id}

    app.include_router(movies)
    for path in ("/health", "/ready", "/metrics"):
        app.add_api_route(path, lambda: {"status": "ok"})
    app.add_middleware(RequestContextMiddleware, service=service)  # as Service builds it
    app.add_middleware(TrailingSlashMiddleware)
    return app


def _count(service: str, route: str, status: str) -> float | None:
    labels = {"service": service, "method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("streamia_http_requests_total", labels)


async def test_requests_are_counted_per_route_template_and_probes_not_at_all() -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"  # the registry is process-wide: a label of our own
    transport = httpx.ASGITransport(app=_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        for path in ("/api/movies/a1", "/api/movies/b2/", "/nowhere/c3"):
            await client.get(path)
        for path in ("/health", "/ready", "/metrics"):
            assert (await client.get(path)).status_code == 200

    assert _count(service, "/api/movies/{movie_id}", "200") == 2
    assert _count(service, UNMATCHED_ROUTE, "404") == 1
    latency = {"service": service, "method": "GET", "route": "/api/movies/{movie_id}"}
    assert REGISTRY.get_sample_value("streamia_http_request_duration_seconds_count", latency) == 2
    routes = {
        sample.labels["route"]
        for family in REGISTRY.collect()
        if family.name == "streamia_http_requests"
        for sample in family.samples
        if sample.labels.get("service") == service
    }
    assert routes == {"/api/movies/{movie_id}", UNMATCHED_ROUTE}


async def test_a_cancellation_leaked_from_another_task_is_a_json_500_not_uvicorns_text() -> None:
    app = _app(f"svc-{uuid.uuid4().hex[:8]}")

    @app.get("/api/leak")
    async def leak() -> None:
        # What a waiter got from a shared load whose own caller was cancelled.
        raise asyncio.CancelledError

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        resp = await client.get("/api/leak")
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["code"] == "internal_error"
    assert resp.json()["error"] == resp.json()["message"]


async def test_a_request_really_being_cancelled_stays_cancelled() -> None:
    app = _app(f"svc-{uuid.uuid4().hex[:8]}")
    entered = asyncio.Event()

    @app.get("/api/hang")
    async def hang() -> None:
        entered.set()
        await asyncio.Event().wait()

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        request = asyncio.create_task(client.get("/api/hang"))
        await entered.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
