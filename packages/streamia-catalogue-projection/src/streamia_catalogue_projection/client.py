"""The one-call catch-up client: `GET {movies_url}/api/movies/{id}` when the projection lags."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from streamia_kit.breaker import CircuitBreaker
from streamia_kit.errors import ServiceUnavailable
from streamia_kit.events import MovieSnapshot
from streamia_kit.telemetry import current_traceparent

log = structlog.get_logger("streamia.movie_projection")

MOVIES_UNAVAILABLE = "Movie service unavailable"


class MovieClient:
    """`GET {movies_url}/api/movies/{id}` behind a circuit breaker and a short timeout."""

    def __init__(
        self,
        movies_url: str,
        timeout_seconds: float = 2.0,
        breaker: CircuitBreaker | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self.base = movies_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # The seed's breaker policy: 50 % errors over 10 s (at least 5 calls), 30 s open.
        self.breaker = breaker or CircuitBreaker(
            "movies", error_threshold_percent=50.0, volume_threshold=5, reset_seconds=30.0
        )
        self._http: aiohttp.ClientSession | None = None
        # The service's aiohttp-client instrumentation: a CLIENT span per lookup.
        self._trace_configs = list(trace_configs)

    def _unavailable(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            MOVIES_UNAVAILABLE,
            code="movies_unavailable",
            headers={"Retry-After": self.breaker.retry_after_header()},
        )

    async def fetch(self, movie_id: str) -> MovieSnapshot | None:
        """The movie as a snapshot, None when the movie service does not know it."""
        permit = self.breaker.acquire()
        if permit is None:
            raise self._unavailable()
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=self.timeout, trace_configs=self._trace_configs
            )
        url = f"{self.base}/api/movies/{quote(movie_id, safe='')}"
        try:
            # The caller's trace goes along (the instrumentation, when on, puts its span's).
            traceparent = current_traceparent()
            headers = {"traceparent": traceparent} if traceparent else None
            async with self._http.get(url, headers=headers) as resp:
                if resp.status >= 500:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, resp.history, status=resp.status
                    )
                body = await resp.json(content_type=None) if resp.status == 200 else None
        except asyncio.CancelledError:
            self.breaker.release(permit)
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.breaker.record(permit, False)
            log.warning(
                "movie_lookup_failed", movie_id=movie_id, error=f"{type(exc).__name__}: {exc}"[:300]
            )
            raise self._unavailable() from exc
        self.breaker.record(permit, True)
        if body is None:
            return None
        return snapshot_from_api(body.get("data") if isinstance(body, dict) else None, movie_id)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def snapshot_from_api(data: Any, movie_id: str) -> MovieSnapshot | None:
    """API.md's `movie` (as the movie service answers it) as a projection snapshot."""
    if not isinstance(data, dict) or data.get("id", movie_id) != movie_id:
        return None
    version = 0.0
    if isinstance(data.get("updatedAt"), str):
        try:
            version = datetime.fromisoformat(data["updatedAt"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    duration = data.get("duration")
    return MovieSnapshot(
        movie_id=movie_id,
        title=str(data.get("title") or ""),
        cover_image=data.get("coverImage") if isinstance(data.get("coverImage"), str) else None,
        video_url=data.get("videoUrl") if isinstance(data.get("videoUrl"), str) else None,
        duration=float(duration) if isinstance(duration, int | float) else None,
        has_audio=data.get("hasAudio") if isinstance(data.get("hasAudio"), bool) else None,
        category=data.get("category") if isinstance(data.get("category"), str) else None,
        version=version,
    )
