"""CORS allow-list: which origins may call the API, and the headers they get."""

from __future__ import annotations

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

ALLOWED_METHODS = b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
DEFAULT_ALLOWED_HEADERS = (
    b"Authorization, Content-Type, Range, X-Request-Id, traceparent, Idempotency-Key"
)
EXPOSED_HEADERS = (
    b"RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Request-Id, "
    b"Content-Range, Accept-Ranges, Content-Length, Idempotent-Replayed"
)


class CorsPolicy:
    """Origins from settings plus the gateway's own (same-origin calls from the web app)."""

    def __init__(self, origins: Iterable[str], max_age_seconds: int) -> None:
        cleaned = {o.strip().rstrip("/") for o in origins if o.strip()}
        self.allow_any = "*" in cleaned
        self.origins = frozenset(cleaned - {"*"})
        self.max_age = str(max_age_seconds).encode()

    def allows(self, origin: str, scheme: str, host: str | None) -> bool:
        """True for listed origins and for the origin the request itself was sent to."""
        if self.allow_any or origin in self.origins:
            return True
        return host is not None and origin == f"{scheme}://{host}"

    def response_headers(self, origin: bytes) -> Headers:
        """Headers for an actual (non-preflight) response to an allowed origin."""
        return [
            (b"access-control-allow-origin", origin),
            *self._credentials(origin),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
            (b"vary", b"Origin"),
        ]

    def preflight_headers(self, origin: bytes, requested_headers: bytes | None) -> Headers:
        """Headers of the 204 answer to an allowed preflight."""
        return [
            (b"access-control-allow-origin", origin),
            *self._credentials(origin),
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-allow-headers", requested_headers or DEFAULT_ALLOWED_HEADERS),
            (b"access-control-max-age", self.max_age),
            (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]

    def _credentials(self, origin: bytes) -> Headers:
        # Credentialed calls only from origins named in the list, never through the wildcard.
        if origin.decode("latin-1") in self.origins:
            return [(b"access-control-allow-credentials", b"true")]
        return []
