"""Thin consumers: decode the event, call the service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

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

E = TypeVar("E", RatingEvent, PlaybackStarted)


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

    ratings = in_movie_id_order(on_rating)
    service.consume(RatingCreated, on_rating, ratings)
    service.consume(RatingUpdated, on_rating, ratings)
    service.consume(RatingDeleted, on_rating, ratings)
    service.consume(PlaybackStarted, on_playback_started, in_movie_id_order(on_playback_started))
    service.consume(MovieDeleted, on_movie_deleted)


def in_movie_id_order(
    handler: Callable[[AsyncSession, E, Envelope], Awaitable[None]],
) -> Callable[[AsyncSession, Sequence[tuple[E, Envelope]]], Awaitable[None]]:
    """The batch form of a handler that updates its event's `movies` row: the events in
    movie id order (delivery order within a movie). Each update locks its row until the
    batch commits, and two workers' batches over the same movies in their own delivery
    orders (A then B, B then A) deadlocked. Each handler keeps the newest value by its own
    guard (a summary's version, the highest play count), so only the order of rows moves."""

    async def many(session: AsyncSession, items: Sequence[tuple[E, Envelope]]) -> None:
        for event, envelope in sorted(items, key=lambda item: item[0].movie_id):
            await handler(session, event, envelope)

    return many
