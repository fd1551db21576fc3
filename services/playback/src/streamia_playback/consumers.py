"""Thin consumers: the movie projection, the deletion sagas and the trending score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.events import (
    Envelope,
    MovieCreated,
    MovieDeleted,
    MovieUpdated,
    PlaybackFinished,
    PlaybackStarted,
    RatingCreated,
    RatingUpdated,
    UserDeleted,
)
from streamia_kit.service import Service
from streamia_playback.charts.service import ChartsService, Interest
from streamia_playback.progress.service import ProgressService


def register(service: Service, progress: ProgressService, charts: ChartsService) -> None:
    async def on_movie_deleted(session: AsyncSession, event: MovieDeleted, _: Envelope) -> None:
        await progress.forget_movie(session, event)

    async def on_user_deleted(session: AsyncSession, event: UserDeleted, _: Envelope) -> None:
        await progress.forget_user(session, event.user_id)

    async def on_interest(session: AsyncSession, event: Any, envelope: Envelope) -> None:
        await charts.record(session, [Interest(event.movie_id, envelope.type, envelope.time)])

    async def on_interests(session: AsyncSession, items: Sequence[tuple[Any, Envelope]]) -> None:
        await charts.record(session, [Interest(e.movie_id, env.type, env.time) for e, env in items])

    movies = progress.movies
    service.consume(MovieCreated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieUpdated, movies.on_snapshot, movies.on_snapshots)
    service.consume(MovieDeleted, on_movie_deleted)
    service.consume(UserDeleted, on_user_deleted)
    for interest in (PlaybackStarted, PlaybackFinished, RatingCreated, RatingUpdated):
        service.consume(interest, on_interest, on_interests)
