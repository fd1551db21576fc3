"""Most watched and trending. Never commits: the boundary does."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import MOVIE, Tombstones, valid_id
from streamia_kit.cache import Cache, SingleFlight, cache_aside
from streamia_kit.db import utcnow
from streamia_playback.charts import schemas
from streamia_playback.charts.repository import ChartsRepository

# How much each event says "people want this now".
WEIGHTS = {
    "playback.started": 1.0,
    "playback.finished": 2.0,
    "rating.created": 1.0,
    "rating.updated": 0.5,
}
# Scores are stored relative to this instant (2026-01-01 UTC); see `MovieStats`.
EPOCH = 1_767_225_600.0


@dataclass(frozen=True, slots=True)
class Interest:
    """One event that counts towards a movie's trending score."""

    movie_id: str
    kind: str
    at: datetime


def _log_add(a: float | None, b: float) -> float:
    """log(e^a + e^b) without overflow."""
    if a is None:
        return b
    high, low = max(a, b), min(a, b)
    return high + math.log1p(math.exp(low - high))


class ChartsService:
    def __init__(
        self,
        tombstones: Tombstones,
        cache: Cache,
        half_life_hours: float,
        ttl: float,
        public_base: str,
    ) -> None:
        self.tombstones = tombstones
        self.public_base = public_base
        self.cache = cache
        self.rate = math.log(2) / (half_life_hours * 3600.0)
        self.ttl = ttl
        self._flight = SingleFlight()

    def log_score(self, interest: Interest) -> float:
        return math.log(WEIGHTS[interest.kind]) + (interest.at.timestamp() - EPOCH) * self.rate

    def current(self, trend: float, now: datetime) -> float:
        """A stored log-score as the decayed score at `now`."""
        return math.exp(trend - (now.timestamp() - EPOCH) * self.rate)

    async def record(self, session: AsyncSession, interests: Sequence[Interest]) -> None:
        """Add events to their movies' scores: one log-add per movie, whatever the batch."""
        added: dict[str, float] = {}
        for interest in interests:
            if not valid_id(interest.movie_id) or interest.kind not in WEIGHTS:
                continue
            added[interest.movie_id] = _log_add(
                added.get(interest.movie_id), self.log_score(interest)
            )
        for movie_id in sorted(added):
            # Held against the movie's deletion saga, so no score outlives its cleanup.
            if not await self.tombstones.guard(session, MOVIE, movie_id):
                del added[movie_id]  # an event that arrived after the movie's deletion
        if not added:
            return
        repo = ChartsRepository(session)
        stored = await repo.trends(sorted(added))
        for movie_id, score in added.items():
            await repo.set_trend(movie_id, _log_add(stored.get(movie_id), score))

    async def popular(self, session: AsyncSession, window: str, limit: int) -> dict[str, Any]:
        """Most distinct viewers who started a movie in the window (cached briefly)."""

        async def load() -> dict[str, Any]:
            since = utcnow() - schemas.parse_window(window)
            repo = ChartsRepository(session)
            rows = await repo.popular(since, limit)
            total = len(rows) if len(rows) < limit else await repo.popular_total(since)
            items = [{**schemas.movie_out(r, self.public_base), "viewers": r.viewers} for r in rows]
            return {"items": items, "total": total}

        key = f"playback:popular:{window}:{limit}"
        return await cache_aside(self.cache, self._flight, key, self.ttl, load)

    async def trending(self, session: AsyncSession, limit: int) -> dict[str, Any]:
        """Highest time-decayed score of starts, finishes and ratings (cached briefly)."""

        async def load() -> dict[str, Any]:
            now = utcnow()
            repo = ChartsRepository(session)
            rows = await repo.trending(limit)
            total = len(rows) if len(rows) < limit else await repo.trending_total()
            items = [
                {
                    **schemas.movie_out(r, self.public_base),
                    "score": round(self.current(r.trend, now), 4),
                    "plays": r.plays,
                }
                for r in rows
            ]
            return {"items": items, "total": total}

        return await cache_aside(
            self.cache, self._flight, f"playback:trending:{limit}", self.ttl, load
        )
