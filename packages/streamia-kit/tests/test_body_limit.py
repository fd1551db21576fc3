"""Bodies over a service's limit get 413 in the API.md shape, announced or chunked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from streamia_kit.errors import install_error_handlers
from streamia_kit.middleware import BodyLimitMiddleware

LIMIT = 1000


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT)  # as Service builds it
    return app


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 100):
        yield b"x" * 100


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 100])
async def test_a_body_with_a_length_is_served_up_to_the_limit_and_refused_past_it(client, size):
    resp = await client.post("/echo", content=b"x" * size)
    if size <= LIMIT:
        assert resp.json() == {"received": size}
    else:
        assert resp.status_code == 413
        assert resp.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("size", [LIMIT, LIMIT + 100])
async def test_a_chunked_body_is_counted_as_it_comes_and_refused_past_the_limit(client, size):
    resp = await client.post("/echo", content=_chunks(size))
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    if size <= LIMIT:
        assert resp.json() == {"received": size}
    else:
        assert resp.status_code == 413
        assert resp.json()["code"] == "payload_too_large"
