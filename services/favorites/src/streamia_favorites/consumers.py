"""Thin consumers: the movie projection and the deletion sagas."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_favorites.favorites.service import FavoritesService
from streamia_kit.events import (
    Envelope,
    MovieCreated,
    MovieDeleted,
    MovieUpdated,
    UserDeleted,
)
from streamia_kit.service import Service


def register(service: Service, favorites: FavoritesService) -> None:
    async def on_movie_deleted(session: AsyncSession, event: MovieDeleted, _: Envelope) -> None:
        await favorites.forget_movie(session, event)

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: Envelope) -> None:
        await favorites.forget_user(session, event.user_id)

    movies = favorites.movies
    service.consume(MovieCreated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieUpdated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieDeleted, on_movie_deleted)
    service.consume(UserDeleted, on_user_deleted)
