"""The rules of ratings and their per-movie summary. Never commits: the boundary does."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import (
    MOVIE_NOT_FOUND,
    USER,
    MovieProjection,
    Tombstones,
    valid_id,
)
from streamia_kit.auth import Identity
from streamia_kit.cache import Cache, SingleFlight, cache_aside
from streamia_kit.db import on_commit
from streamia_kit.errors import Conflict, Forbidden, NotFound
from streamia_kit.events import (
    MovieDeleted,
    RatingCreated,
    RatingDeleted,
    RatingEvent,
    RatingSummary,
    RatingUpdated,
)
from streamia_kit.messaging import Outbox
from streamia_ratings.ratings import schemas
from streamia_ratings.ratings.models import Rating
from streamia_ratings.ratings.repository import DuplicateRating, RatingsRepository
from streamia_ratings.ratings.schemas import Summary

RATING_NOT_FOUND = "Rating not found"


def summary_key(movie_id: str) -> str:
    return f"movie:{movie_id}:rating"


@dataclass(slots=True)
class Rated:
    rating: Rating
    summary: Summary
    created: bool = False


class RatingsService:
    def __init__(
        self,
        outbox: Outbox,
        movies: MovieProjection,
        tombstones: Tombstones,
        cache: Cache,
        cache_seconds: float,
    ) -> None:
        self.outbox = outbox
        self.movies = movies
        self.tombstones = tombstones
        self.cache = cache
        self.cache_seconds = cache_seconds
        self._flight = SingleFlight()

    async def rate(self, session: AsyncSession, identity: Identity, data: schemas.RateIn) -> Rated:
        """Upsert the caller's rating of a movie."""
        repo = RatingsRepository(session)
        found = await self.movies.lookup(session, data.movieId)
        # Exclusive per user: one user's concurrent upserts of a movie cannot both insert.
        await self.tombstones.hold_user(session, identity.id, exclusive=True)
        movie = await self.movies.hold(session, found)
        existing = await repo.find(identity.id, movie.id)
        if existing is None:
            try:
                rating = await repo.add(
                    Rating(user_id=identity.id, movie_id=movie.id, rating=data.rating)
                )
            except DuplicateRating:
                raise Conflict(
                    "Rating changed concurrently, try again", code="concurrent_update"
                ) from None
            summary = await self._record(session, RatingCreated, rating, {data.rating: 1})
            return Rated(rating, summary, created=True)
        old = existing.rating
        changed = await repo.set_rating(existing.id, data.rating)
        assert changed is not None  # held: nobody else can delete it now
        summary = await self._record(session, RatingUpdated, changed, _delta(old, data.rating))
        return Rated(changed, summary)

    async def list_for_user(
        self, session: AsyncSession, identity: Identity, user_id: str, offset: int, limit: int
    ) -> tuple[Sequence[Rating], int]:
        """A slice of a user's ratings (the caller's own, or any for an admin) and the total."""
        if user_id != identity.id and not identity.is_admin:
            raise Forbidden("You can only view your own ratings", code="not_owner")
        if not valid_id(user_id):
            return [], 0
        return await RatingsRepository(session).list_for_user(user_id, offset, limit)

    async def change(
        self,
        session: AsyncSession,
        identity: Identity,
        rating_id: str,
        data: schemas.ChangeRatingIn,
    ) -> Rated:
        repo = RatingsRepository(session)
        current = await self._owned(session, identity, rating_id)
        old = current.rating
        rating = await repo.set_rating(current.id, data.rating)
        assert rating is not None
        summary = await self._record(session, RatingUpdated, rating, _delta(old, data.rating))
        return Rated(rating, summary)

    async def remove(self, session: AsyncSession, identity: Identity, rating_id: str) -> Summary:
        current = await self._owned(session, identity, rating_id)
        rating = await RatingsRepository(session).delete(current.id)
        assert rating is not None
        return await self._record(session, RatingDeleted, rating, {rating.rating: -1})

    async def _owned(self, session: AsyncSession, identity: Identity, rating_id: str) -> Rating:
        """The caller's own rating, locked for a change; 404 unknown, 403 someone else's."""
        repo = RatingsRepository(session)
        rating = await repo.get(rating_id) if valid_id(rating_id) else None
        if rating is None:
            raise NotFound(RATING_NOT_FOUND, code="rating_not_found")
        if rating.user_id != identity.id:
            raise Forbidden("You can only modify your own ratings", code="not_owner")
        await self.tombstones.hold_user(session, identity.id, exclusive=True)
        # The movie's deletion saga may have removed it since the first read.
        rating = await repo.lock(rating_id)
        if rating is None:
            raise NotFound(RATING_NOT_FOUND, code="rating_not_found")
        return rating

    async def _record(
        self,
        session: AsyncSession,
        event_cls: type[RatingEvent],
        rating: Rating,
        deltas: dict[int, int],
    ) -> Summary:
        """Move the movie's counters, publish the event and refresh the cached summary."""
        counts, version = await RatingsRepository(session).bump(
            rating.movie_id, deltas, time.time()
        )
        summary = Summary(counts)
        await self.outbox.add(
            session,
            event_cls(
                rating_id=rating.id,
                movie_id=rating.movie_id,
                user_id=rating.user_id,
                rating=rating.rating,
                summary=RatingSummary(**summary.short()),
                version=version,
            ),
        )
        # Written while the counters' row lock is held, so concurrent writers refresh the
        # cache in commit order and the last one leaves the final summary.
        await self.cache.set(
            summary_key(rating.movie_id), summary.full(rating.movie_id), self.cache_seconds
        )
        return summary

    async def movie_summary(self, session: AsyncSession, movie_id: str) -> dict[str, Any]:
        """`{movieId, average, count, distribution}`, served from the cache when it can be."""
        if not valid_id(movie_id) or await self.movies.is_deleted(session, movie_id):
            raise NotFound(MOVIE_NOT_FOUND, code="movie_not_found")

        async def load() -> dict[str, Any]:
            # Concurrent misses share this load, run by (and in the session of) the first.
            counts = await RatingsRepository(session).counts(movie_id)
            return (Summary(counts) if counts else Summary.empty()).full(movie_id)

        return await cache_aside(
            self.cache, self._flight, summary_key(movie_id), self.cache_seconds, load
        )

    async def forget_user(self, session: AsyncSession, user_id: str) -> None:
        """user.deleted: tombstone, remove the user's ratings, re-announce each movie's summary."""
        await self.forget_users(session, [user_id])

    async def forget_users(self, session: AsyncSession, user_ids: Sequence[str]) -> None:
        """`forget_user` for the user.deleted events of one batch (one transaction).

        A few statements whatever the number of users and ratings: the tombstones, one
        delete, one multi-row upsert of the counters (in movie id order, like every other
        multi-movie writer), one batched outbox insert with a `rating.deleted` per removed
        rating carrying its movie's new summary. One upsert for the whole batch, not one per
        user: each user's own was in movie id order, but a batch holding A's counters for its
        first user and waiting for B's for its second deadlocked with one doing the reverse.
        The cached summaries are dropped once the transaction has committed.
        """
        users = sorted(set(user_ids))
        for user_id in users:
            await self.tombstones.bury(session, USER, user_id)
        repo = RatingsRepository(session)
        removed = await repo.remove_for_users(users)
        if not removed:
            return
        deltas: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for _, _, movie_id, stars in removed:
            deltas[movie_id][stars] -= 1
        counts = await repo.bump_many(deltas, time.time())
        summaries = {
            movie_id: RatingSummary(**Summary(c).short()) for movie_id, (c, _) in counts.items()
        }
        await self.outbox.add_many(
            session,
            [
                RatingDeleted(
                    rating_id=rating_id,
                    movie_id=movie_id,
                    user_id=user_id,
                    rating=stars,
                    summary=summaries[movie_id],
                    version=counts[movie_id][1],
                )
                for rating_id, user_id, movie_id, stars in sorted(
                    removed, key=lambda r: (r[2], r[0])
                )
            ],
        )
        keys = [summary_key(movie_id) for movie_id in sorted(counts)]

        async def drop_cached() -> None:
            # Dropped rather than rewritten after the commit: a rating written meanwhile
            # may already have cached a newer summary, which must not be overwritten.
            await self.cache.delete(*keys)

        on_commit(session, drop_cached)

    async def forget_movie(self, session: AsyncSession, event: MovieDeleted) -> None:
        """movie.deleted: tombstone the movie, remove its ratings, then (once committed) its
        cached summary."""
        await self.movies.remove(session, event)
        await RatingsRepository(session).remove_for_movie(event.movie_id)
        key = summary_key(event.movie_id)

        async def drop_cached() -> None:
            await self.cache.delete(key)

        on_commit(session, drop_cached)


def _delta(old: int, new: int) -> dict[int, int]:
    return {} if old == new else {old: -1, new: 1}
