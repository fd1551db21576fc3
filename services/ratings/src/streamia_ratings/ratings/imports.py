"""Ratings brought over from the monolith by `streamia import-monolith`."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import Movie
from streamia_kit.bulk import Loaded, all_values, existing, insert_new, refusal
from streamia_kit.db import on_commit
from streamia_ratings.ratings.models import STARS, MovieSummary, Rating
from streamia_ratings.ratings.repository import RatingsRepository
from streamia_ratings.ratings.schemas import Summary
from streamia_ratings.ratings.service import RatingsService, summary_key

RATINGS = Rating.__table__
SUMMARIES = MovieSummary.__table__


@dataclass(frozen=True, slots=True)
class MonolithRating:
    id: str
    user_id: str | None
    movie_id: str | None
    rating: object
    created_at: datetime
    updated_at: datetime


def _stars(value: object) -> int | None:
    """Whole stars 1-5; the monolith stored numbers, so 4.0 is 4 and 4.5 is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value) if int(value) in STARS else None


async def import_ratings(
    session: AsyncSession,
    ratings: Sequence[MonolithRating],
    users: Container[str],
    movies: Mapping[str, Movie],
    buried_users: Container[str],
    service: RatingsService,
) -> Loaded:
    """Store the ratings not imported yet and move their movies' counters in the same
    transaction (so a crash never leaves a summary out of step with its ratings). No
    `rating.created`: the movies service gets the summaries from `summaries`."""
    loaded = Loaded()
    known = await existing(session, RATINGS.c.id, (r.id for r in ratings))
    rows: list[dict[str, object]] = []
    for rating in ratings:
        if rating.id in known:
            continue
        reason = refusal(rating.user_id, rating.movie_id, users, movies, buried_users)
        stars = _stars(rating.rating)
        if reason is None and stars is None:
            reason = "invalid rating (whole stars 1-5)"
        if reason is not None:
            loaded.reject(rating.id, reason)
            continue
        rows.append(
            {
                "id": rating.id,
                "user_id": rating.user_id,
                "movie_id": rating.movie_id,
                "rating": stars,
                "created_at": rating.created_at,
                "updated_at": rating.updated_at,
            }
        )
    inserted = await insert_new(session, RATINGS, rows)
    deltas: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        if row["id"] in inserted:
            deltas[str(row["movie_id"])][int(str(row["rating"]))] += 1
        else:
            loaded.reject(str(row["id"]), "duplicate rating (same user and movie)")
    if deltas:
        await RatingsRepository(session).bump_many(deltas, time.time())
        keys = [summary_key(movie_id) for movie_id in sorted(deltas)]

        async def drop_cached() -> None:
            await service.cache.delete(*keys)

        on_commit(session, drop_cached)
    loaded.changed = len(inserted)
    return loaded


async def summaries(session: AsyncSession) -> list[tuple[str, float, int, float]]:
    """(movie id, average, count, version) of every movie, as `rating.*` events carry them."""
    c = SUMMARIES.c
    out = []
    for movie_id, *stars, version in await all_values(
        session, c.movie_id, c.stars_1, c.stars_2, c.stars_3, c.stars_4, c.stars_5, c.version
    ):
        summary = Summary(dict(zip(STARS, stars, strict=True)))
        out.append((movie_id, summary.average, summary.count, version))
    return out
