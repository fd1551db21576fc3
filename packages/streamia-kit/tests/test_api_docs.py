"""`/docs` is served offline: Swagger UI's page and assets come from Streamia itself."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from streamia_kit.api_docs import docs_router
from streamia_kit.errors import install_error_handlers
from streamia_kit.middleware import RequestContextMiddleware


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.include_router(docs_router("Movies API"))
    app.add_middleware(RequestContextMiddleware, service="movies")  # as Service builds it
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as value:
        yield value


def _assert_locked_down(headers: httpx.Headers) -> None:
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp
    assert "style-src 'self';" in csp
    assert "unsafe-" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


async def test_the_docs_page_loads_only_its_own_assets(client: httpx.AsyncClient) -> None:
    resp = await client.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    _assert_locked_down(resp.headers)
    page = resp.text
    assert 'data-openapi-url="/openapi.json"' in page
    assert "<title>Movies API</title>" in page
    assert "//" not in re.sub(r"<!doctype html>", "", page)  # no other origin, not even a CDN
    assert "<script>" not in page  # no inline script
    for src in re.findall(r'(?:src|href)="([^"]+)"', page):
        asset = await client.get(src)
        assert asset.status_code == 200, src
        assert len(asset.content) > 0
        _assert_locked_down(asset.headers)


async def test_swagger_ui_is_version_5_which_reads_openapi_3_1(client: httpx.AsyncClient) -> None:
    bundle = (await client.get("/docs/assets/swagger-ui-bundle.js")).text
    assert bundle.startswith("/*! For license information")
    assert re.search(r'"5\.\d+\.\d+"', bundle)


@pytest.mark.parametrize("name", ["nope.js", "redoc.standalone.js", "..%2f__init__.py", "core.py"])
async def test_other_asset_names_get_the_json_404(client: httpx.AsyncClient, name: str) -> None:
    resp = await client.get(f"/docs/assets/{name}")
    assert resp.status_code == 404
    assert resp.json()["code"] == "endpoint_not_found"
