"""The public representation of a movie, cache-aside (Redis or in-process), one load per miss."""

from __future__ import annotations

import time
from typing import Any

from streamia_kit.cache import Cache, SingleFlight
from streamia_kit.db import Database
from streamia_movies.movies import schemas
from streamia_movies.movies.repository import MoviesRepository


class MovieCache:
    def __init__(
        self, cache: Cache, db: Database, ttl: float = 60.0, public_base: str = ""
    ) -> None:
        self.cache = cache
        self.db = db
        self.ttl = ttl
        self.public_base = public_base  # media URLs in representations are absolute on it
        self._flight = SingleFlight()

    @staticmethod
    def key(movie_id: str) -> str:
        return f"movies:movie:{movie_id}"

    async def get(self, movie_id: str) -> dict[str, Any] | None:
        """The public representation, or None for an unknown id; concurrent misses load once."""
        if len(movie_id) > 64:
            return None
        key = self.key(movie_id)
        value = await self.cache.get(key)
        if value is None:
            value = await self._flight.do(key, lambda: self._fill(movie_id))
        return value

    async def _fill(self, movie_id: str) -> dict[str, Any] | None:
        # A load that overlaps an invalidation may have read the old row; the generation
        # key (bumped by every invalidation) tells, and then the result is not cached.
        key = self.key(movie_id)
        generation = await self.cache.get(key + ":gen")
        async with self.db.sessions() as session:
            found = await MoviesRepository(session).public(movie_id)
            value = schemas.movie_out(found[0], self.public_base, found[1]) if found else None
        # Cached under the movie's own id only: an alias's entry would outlive invalidations.
        fresh = await self.cache.get(key + ":gen") == generation
        if value is not None and value["id"] == movie_id and fresh:
            await self.cache.set(key, value, self.ttl)
        return value

    async def invalidate(self, movie_id: str) -> None:
        key = self.key(movie_id)
        await self.cache.set(key + ":gen", time.time_ns(), self.ttl * 2)
        await self.cache.delete(key)
