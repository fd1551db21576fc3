"""The gateway's own endpoints: health, readiness, metrics, the API document and its index."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from streamia_gateway.config import GatewaySettings
from streamia_gateway.docs import ApiDocs
from streamia_gateway.exchange import Exchange
from streamia_gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from streamia_gateway.metrics import GatewayMetrics
from streamia_gateway.proxy import Proxy, fetch_status
from streamia_gateway.web import WebApp, wants_html
from streamia_kit.api_docs import ASSETS_PREFIX as DOCS_ASSETS
from streamia_kit.api_docs import SECURITY_HEADERS as DOCS_HEADERS
from streamia_kit.api_docs import docs_asset, docs_page

_VARY_ACCEPT = ((b"vary", b"Accept"),)
_DOCS_HEADERS = tuple((k.encode(), v.encode()) for k, v in DOCS_HEADERS.items())
_DOCS_PAGE = docs_page("/openapi.json", "Streamia API")
# For the cluster's eyes only (Prometheus, probes): what the public reaches through the
# ingress gets a 404, as if they did not exist.
_DOCS_ASSET_ROUTE = DOCS_ASSETS + "{asset}"
_INTERNAL = frozenset({"/metrics", "/ready"})


class Operations:
    """Answers the paths the gateway serves itself, GET and HEAD only."""

    def __init__(
        self,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        proxy: Proxy,
        redis: aioredis.Redis | None,
        web: WebApp,
        api_docs: ApiDocs,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._proxy = proxy
        self._redis = redis
        self._web = web
        self._api_docs = api_docs
        self._routes: dict[str, Callable[[Exchange], Awaitable[None]]] = {
            "/health": self._health,
            "/ready": self._ready,
            "/metrics": self._metrics_page,
            "/openapi.json": self._openapi,
            "/docs": self._docs,
            "/": self._root,
        }

    async def answer(self, ex: Exchange) -> bool:
        """Serve `ex` when its path is one of the gateway's own; False when it is not."""
        route = self._routes.get(ex.path)
        if route is not None:
            ex.route = ex.path  # one of the fixed paths above
        elif ex.path.startswith(DOCS_ASSETS):
            route = self._docs_asset
            ex.route = _DOCS_ASSET_ROUTE
        else:
            return False
        if ex.proxied and ex.path in _INTERNAL:
            await ex.error(404, "Endpoint not found", "endpoint_not_found")
            return True
        if ex.method not in ("GET", "HEAD"):
            await ex.error(
                405, "Method not allowed", "method_not_allowed", [(b"allow", b"GET, HEAD")]
            )
            return True
        await route(ex)
        return True

    async def _health(self, ex: Exchange) -> None:
        await ex.json(200, {"status": "ok"})

    async def _ready(self, ex: Exchange) -> None:
        """200 when every upstream (and Redis, when configured) answers, else 503."""
        client = self._proxy.client
        timeout = self._settings.ready_timeout_seconds

        async def probe(url: str) -> str:
            status = await fetch_status(client, url + "/health", timeout)
            if isinstance(status, str):
                return status
            return "ok" if status == 200 else f"status {status}"

        upstreams = self._settings.upstream_urls()
        results = await asyncio.gather(*(probe(url) for url in upstreams.values()))
        checks = dict(zip(upstreams, results, strict=True))
        if self._redis is not None:
            try:
                await asyncio.wait_for(self._redis.ping(), self._settings.ready_timeout_seconds)
                checks["redis"] = "ok"
            except Exception:
                checks["redis"] = "unreachable"
        if all(v == "ok" for v in checks.values()):
            await ex.json(200, {"status": "ok", "checks": checks})
            return
        await ex.error(503, "Some dependencies are unavailable", "not_ready", details=checks)

    async def _metrics_page(self, ex: Exchange) -> None:
        await ex.whole(200, METRICS_CONTENT_TYPE, self._metrics.render())

    async def _openapi(self, ex: Exchange) -> None:
        data = await self._api_docs.document(self._proxy.client)
        await ex.whole(200, b"application/json", data)

    async def _docs(self, ex: Exchange) -> None:
        await ex.whole(200, b"text/html; charset=utf-8", _DOCS_PAGE, _DOCS_HEADERS)

    async def _docs_asset(self, ex: Exchange) -> None:
        found = docs_asset(ex.path.removeprefix(DOCS_ASSETS))
        if found is None:
            await ex.error(404, "Endpoint not found", "endpoint_not_found")
            return
        data, content_type = found
        headers = (*_DOCS_HEADERS, (b"cache-control", b"public, max-age=86400"))
        await ex.whole(200, content_type.encode(), data, headers)

    async def _root(self, ex: Exchange) -> None:
        """The web app for browsers (Accept: text/html), the JSON index for API clients."""
        if self._web.available and wants_html(ex):
            await self._web.serve(ex, self._web.index, _VARY_ACCEPT)
            return
        await ex.json(
            200,
            {
                "name": "Streamia API",
                "apis": {name: f"/api/{name}" for name in self._settings.upstream_urls()},
                "docs": "/docs",
                "openapi": "/openapi.json",
                "jwks": "/.well-known/jwks.json",
                "health": "/health",
                "ready": "/ready",
                "metrics": "/metrics",
                "web": "/index.html",
            },
            _VARY_ACCEPT,
        )
