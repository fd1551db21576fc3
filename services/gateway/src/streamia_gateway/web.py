"""The web app's static files (the `streamia_web` package), served by the gateway at `/`.

Only files that exist here when the gateway starts can be served: a request path is looked up
in a table built from the folder listing and is never joined onto a file-system path, so dot
segments, encoded or not, cannot reach outside it. File contents are re-read when they change
on disk (editing the app needs no restart; adding a file does).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from streamia_gateway.exchange import Exchange
from streamia_web import is_page, static_root

ASSETS_PREFIX = "/assets/"

CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".png": b"image/png",
    ".ico": b"image/x-icon",
    ".webmanifest": b"application/manifest+json",
    ".woff2": b"font/woff2",
    ".txt": b"text/plain; charset=utf-8",
}

# Self only; images and media may also come from https: (external covers and videos).
CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
    b"media-src 'self' https: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# X-Content-Type-Options: nosniff is on every gateway answer (exchange.py).
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
    (b"x-frame-options", b"DENY"),
    # The reset page carries its token in the URL: never send it on as a referrer.
    (b"referrer-policy", b"no-referrer"),
)
# No build step, so no fingerprinted names: browsers keep the files but revalidate (ETag).
CACHE_CONTROL = b"no-cache"


@dataclass
class _Cached:
    mtime_ns: int
    size: int
    data: bytes
    etag: bytes


class WebApp:
    """The static site: `/index.html`, `/assets/...` and the client routes that get the app."""

    def __init__(self, root: Path | None = None) -> None:
        root = static_root() if root is None else root
        self.root = root
        self.index = root / "index.html"
        self._files: dict[str, Path] = {}
        assets = root / "assets"
        if assets.is_dir():
            for path in sorted(assets.rglob("*")):
                if path.is_file() and path.suffix in CONTENT_TYPES and not path.is_symlink():
                    rel = path.relative_to(assets).as_posix()
                    if not any(part.startswith(".") for part in rel.split("/")):
                        self._files[ASSETS_PREFIX + rel] = path
        if self.index.is_file():
            self._files["/index.html"] = self.index
        self._cache: dict[Path, _Cached] = {}

    @property
    def available(self) -> bool:
        return self.index.is_file()

    def match(self, path: str, browser: bool) -> Path | None:
        """The file a (non-API) request path serves, or None: an asset, `/index.html`, or for a
        browser (`wants_html`) the app on one of its pages; other clients keep the JSON 404."""
        found = self._files.get(path)
        if found is not None:
            return found
        if browser and self.available and is_page(path):
            return self.index
        return None

    def _load(self, path: Path) -> _Cached | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        cached = self._cache.get(path)
        if cached is not None and cached.mtime_ns == st.st_mtime_ns and cached.size == st.st_size:
            return cached
        try:
            data = path.read_bytes()
        except OSError:
            return None
        etag = b'"' + hashlib.blake2b(data, digest_size=12).hexdigest().encode() + b'"'
        cached = _Cached(st.st_mtime_ns, st.st_size, data, etag)
        self._cache[path] = cached
        return cached

    async def serve(
        self, ex: Exchange, path: Path, extra: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        """Send the file (GET or HEAD), or 304 when the client's ETag is current."""
        cached = self._load(path)
        if cached is None:
            await ex.error(404, "Endpoint not found", "endpoint_not_found")
            return
        headers = [
            (b"cache-control", CACHE_CONTROL),
            (b"etag", cached.etag),
            *SECURITY_HEADERS,
            *extra,
        ]
        if_none_match = ex.headers.get(b"if-none-match")
        if if_none_match is not None and _etag_matches(if_none_match, cached.etag):
            await ex.start(304, headers)
            await ex.body(b"")
            return
        content_type = CONTENT_TYPES.get(path.suffix, b"application/octet-stream")
        await ex.start(
            200,
            [
                (b"content-type", content_type),
                (b"content-length", str(len(cached.data)).encode()),
                *headers,
            ],
        )
        await ex.body(b"" if ex.method == "HEAD" else cached.data)


def _etag_matches(header: bytes, etag: bytes) -> bool:
    for candidate in header.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == etag or candidate == b"*":
            return True
    return False


def wants_html(ex: Exchange) -> bool:
    """Whether the client asked for a page (a browser) rather than JSON (an API client)."""
    accept = ex.headers.get(b"accept", b"")
    return b"text/html" in accept
