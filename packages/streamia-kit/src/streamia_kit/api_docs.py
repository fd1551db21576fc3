"""`/docs`: Swagger UI served by Streamia itself, so the API docs work offline.

The Swagger UI 5 bundle and stylesheet come from the pinned `fastapi-offline` package (read
with `importlib.resources`; only its static files are used); the page and its start-up script
are ours, so the page runs under a strict Content-Security-Policy with no inline script and
nothing loaded from another origin. Every HTTP service mounts `docs_router()`; the gateway,
which is not a FastAPI app, serves the same `docs_page()` and `docs_asset()`.
"""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Response

ASSETS_PREFIX = "/docs/assets/"

_BUNDLED = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}

# Reads the document's URL from the page (no inline script under the CSP).
_INIT_JS = b"""\
const root = document.getElementById('swagger-ui');
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: 'BaseLayout',
});
"""

# The web app's policy (services/gateway web.py) but for images: Swagger UI's stylesheet draws
# its icons as data: URIs. No 'unsafe-inline' styles: Swagger UI (React) sets its inline
# styles through the CSSOM, which style-src does not govern (tests/e2e/test_web_ui.py expands an
# operation, runs it and sees no CSP violation under this policy).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# X-Content-Type-Options: nosniff is on every answer already (middleware.NOSNIFF).
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def docs_page(openapi_url: str, title: str) -> bytes:
    """The HTML of the Swagger UI page over the OpenAPI document at `openapi_url`."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{ASSETS_PREFIX}favicon.png">
<link rel="stylesheet" href="{ASSETS_PREFIX}swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(openapi_url)}"></div>
<script src="{ASSETS_PREFIX}swagger-ui-bundle.js"></script>
<script src="{ASSETS_PREFIX}init.js"></script>
</body>
</html>
""".encode()


@cache
def docs_asset(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of `/docs/assets/<name>`, or None for an unknown name."""
    if name == "init.js":
        return _INIT_JS, "text/javascript; charset=utf-8"
    content_type = _BUNDLED.get(name)
    if content_type is None:
        return None
    return (files("fastapi_offline") / "static" / name).read_bytes(), content_type


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """`GET /docs` and its assets for a FastAPI service (out of the OpenAPI document)."""
    router = APIRouter(include_in_schema=False)
    page = docs_page(openapi_url, title)

    @router.get("/docs")
    async def docs() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @router.get(ASSETS_PREFIX + "{name}")
    async def asset(name: str) -> Response:
        found = docs_asset(name)
        if found is None:
            raise HTTPException(404)  # the kit's JSON "endpoint_not_found"
        data, content_type = found
        return Response(
            data,
            media_type=content_type,
            headers={**SECURITY_HEADERS, "cache-control": "public, max-age=86400"},
        )

    return router
