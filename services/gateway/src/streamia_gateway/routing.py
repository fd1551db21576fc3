"""Which upstream serves a path, and how large a body that route accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamia_gateway.config import GatewaySettings

# Routes whose bodies are files, streamed through; everything else is small JSON.
_UPLOAD_PATH = re.compile(r"^/api/movies/(upload|[^/]+/subtitles)/?$")


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str
    route: str  # the gateway route it serves, as the metrics' `route` label


class Router:
    """Maps a path to its upstream by prefix, on whole path segments only."""

    def __init__(self, settings: GatewaySettings) -> None:
        urls = settings.upstream_urls()
        self._exact = {
            path: Upstream(name, urls[name], path)
            for path, name in (
                ("/.well-known/jwks.json", "users"),
                # The monolith's media-store status route, answered by the movies service.
                ("/api/cloudinary/status", "movies"),
            )
        }
        self._prefixes = [
            (f"/api/{name}", Upstream(name, url, f"/api/{name}/{{path}}"))
            for name, url in urls.items()
        ]
        self._max_upload = settings.max_upload_bytes
        self._max_json = settings.max_json_body_bytes

    def match(self, path: str) -> Upstream | None:
        if "/.." in path or "/./" in path or path.endswith("/."):
            return None  # never let dot segments reach past a service's prefix
        exact = self._exact.get(path[:-1] if path.endswith("/") else path)
        if exact is not None:
            return exact
        for prefix, upstream in self._prefixes:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] in "/?"):
                return upstream
        return None

    def body_limit(self, method: str, path: str) -> int:
        """The largest request body this route takes: a file upload's, or small JSON's."""
        uploads = method == "POST" and _UPLOAD_PATH.match(path) is not None
        return self._max_upload if uploads else self._max_json
