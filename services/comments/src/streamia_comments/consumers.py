"""Thin consumers: the movie projection, authors' display names and the deletion sagas."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_comments.comments.service import CommentsService
from streamia_kit.events import (
    Envelope,
    MovieCreated,
    MovieDeleted,
    MovieUpdated,
    UserDeleted,
    UserRegistered,
    UserUpdated,
)
from streamia_kit.service import Service


def register(service: Service, comments: CommentsService) -> None:
    async def on_movie_deleted(session: AsyncSession, event: MovieDeleted, _: Envelope) -> None:
        await comments.forget_movie(session, event)

    async def on_user_named(
        session: AsyncSession, event: UserRegistered | UserUpdated, envelope: Envelope
    ) -> None:
        # The envelope's time orders a user's events: the newest names win; user.registered's
        # is when the account was made.
        when = envelope.time.timestamp()
        await comments.remember_author(
            session,
            event.user_id,
            event.first_name,
            event.last_name,
            when,
            registered_at=when if isinstance(event, UserRegistered) else None,
        )

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: Envelope) -> None:
        await comments.forget_user(session, event.user_id)

    movies = comments.movies
    service.consume(MovieCreated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieUpdated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieDeleted, on_movie_deleted)
    service.consume(UserRegistered, on_user_named)
    service.consume(UserUpdated, on_user_named)
    service.consume(UserDeleted, on_user_deleted)
