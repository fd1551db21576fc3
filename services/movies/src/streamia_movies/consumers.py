"""Thin consumers: decode the event, call the service."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.events import (
    Envelope,
    MovieDeleted,
    PlaybackStarted,
    RatingCreated,
    RatingDeleted,
    RatingEvent,
    RatingUpdated,
)
from streamia_kit.service import Service
from streamia_movies.movies.service import MoviesService


def register(service: Service, movies: MoviesService) -> None:
    async def on_rating(session: AsyncSession, event: RatingEvent, _: Envelope) -> None:
        await movies.apply_rating(session, event)

    async def on_playback_started(
        session: AsyncSession, event: PlaybackStarted, _: Envelope
    ) -> None:
        await movies.apply_plays(session, event)

    async def on_movie_deleted(_session: AsyncSession, event: MovieDeleted, __: Envelope) -> None:
        # The media saga step: a failure raises, the bus retries with backoff, then DLQ.
        await movies.media.purge(event)

    service.consume(RatingCreated, on_rating)
    service.consume(RatingUpdated, on_rating)
    service.consume(RatingDeleted, on_rating)
    service.consume(PlaybackStarted, on_playback_started)
    service.consume(MovieDeleted, on_movie_deleted)
