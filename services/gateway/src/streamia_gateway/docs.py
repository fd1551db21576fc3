"""One OpenAPI document for the whole public API, merged from the services' own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import orjson
from pyreqwest.client import Client
from pyreqwest.exceptions import RequestError

_REF = "#/components/schemas/"
# How long one service's document may take.
FETCH_TIMEOUT = timedelta(seconds=2)


def merge_specs(specs: Mapping[str, dict[str, Any]], routable: Callable[[str], bool]) -> dict:
    """The union of the services' public paths; clashing schema names get the service's name."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Streamia API", "version": "1.0.0"},
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        # Optional everywhere: the services decide which operations need a token.
        "security": [{"bearerAuth": []}, {}],
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    for name, spec in specs.items():
        own = spec.get("components", {}).get("schemas", {})
        clashes = [k for k, v in own.items() if k in schemas and schemas[k] != v]
        if clashes:
            spec = _rename_schemas(spec, {k: name.capitalize() + k for k in clashes})
            own = spec.get("components", {}).get("schemas", {})
        schemas.update(own)
        for path, item in spec.get("paths", {}).items():
            if routable(path) and path not in merged["paths"]:
                merged["paths"][path] = item
    return merged


def _rename_schemas(spec: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    text = orjson.dumps(spec)
    for old, new in renames.items():
        text = text.replace(f'"{_REF}{old}"'.encode(), f'"{_REF}{new}"'.encode())
    renamed = orjson.loads(text)
    own = renamed.get("components", {}).get("schemas", {})
    renamed["components"]["schemas"] = {renames.get(k, k): v for k, v in own.items()}
    return renamed


class ApiDocs:
    """Fetches and merges the services' OpenAPI documents, cached for a short while."""

    def __init__(
        self, upstreams: Mapping[str, str], routable: Callable[[str], bool], ttl: float = 30.0
    ) -> None:
        self._upstreams = dict(upstreams)
        self._routable = routable
        self._ttl = ttl
        self._cached: tuple[bytes, float] | None = None
        self._lock = asyncio.Lock()

    async def document(self, client: Client) -> bytes:
        """The merged document as JSON bytes."""
        async with self._lock:
            if self._cached is not None and time.monotonic() < self._cached[1]:
                return self._cached[0]

            async def fetch(url: str) -> dict[str, Any] | None:
                try:
                    request = client.get(url + "/openapi.json").timeout(FETCH_TIMEOUT).build()
                    resp = await request.send()
                    if resp.status != 200:
                        return None
                    return orjson.loads((await resp.bytes()).to_bytes())
                except (RequestError, OSError, TimeoutError, orjson.JSONDecodeError):
                    return None

            names = list(self._upstreams)
            found = await asyncio.gather(*(fetch(self._upstreams[n]) for n in names))
            specs = {n: s for n, s in zip(names, found, strict=True) if isinstance(s, dict)}
            merged = merge_specs(specs, self._routable)
            missing = [n for n in names if n not in specs]
            if missing:
                merged["info"]["description"] = "Not reachable just now: " + ", ".join(missing)
            body = orjson.dumps(merged)
            # Retry soon when a service was missing, so its paths appear once it is up.
            self._cached = (body, time.monotonic() + (self._ttl if not missing else 2.0))
            return body
