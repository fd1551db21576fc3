"""Thin consumers: the movie projection and the deletion sagas."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.events import (
    Envelope,
    MovieCreated,
    MovieDeleted,
    MovieUpdated,
    UserDeleted,
)
from streamia_kit.service import Service
from streamia_ratings.ratings.service import RatingsService


def register(service: Service, ratings: RatingsService) -> None:
    async def on_movie_deleted(session: AsyncSession, event: MovieDeleted, _: Envelope) -> None:
        await ratings.forget_movie(session, event)

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: Envelope) -> None:
        await ratings.forget_user(session, event.user_id)

    async def on_users_deleted(
        session: AsyncSession, items: Sequence[tuple[UserDeleted, Envelope]]
    ) -> None:
        await ratings.forget_users(session, [event.user_id for event, _ in items])

    movies = ratings.movies
    service.consume(MovieCreated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieUpdated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieDeleted, on_movie_deleted)
    service.consume(UserDeleted, on_user_deleted, on_users_deleted)
