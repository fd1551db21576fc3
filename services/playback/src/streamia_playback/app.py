"""create_app: the only place the playback service's adapters are wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from streamia_catalogue_projection import MovieProjection
from streamia_kit.auth import KeySource
from streamia_kit.infra import Infrastructure
from streamia_kit.service import Service
from streamia_playback import consumers
from streamia_playback.charts.endpoints import router as charts_router
from streamia_playback.charts.service import ChartsService
from streamia_playback.config import PlaybackSettings
from streamia_playback.progress.endpoints import router as progress_router
from streamia_playback.progress.group_commit import GroupCommit
from streamia_playback.progress.models import Base
from streamia_playback.progress.service import ProgressService
from streamia_playback.ratelimit import WriteLimiter

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: PlaybackSettings | None = None,
    infra: Infrastructure | None = None,
    manage_lifecycle: bool = True,
    keys: KeySource | None = None,
) -> FastAPI:
    settings = settings or PlaybackSettings()
    service = Service(settings, Base.metadata, MIGRATIONS, infra=infra, keys=keys)
    movies = MovieProjection.wire(service, settings)
    limiter = WriteLimiter(
        settings.progress_rate_limit, service.infra.redis, service.infra.namespace
    )
    hot_path = GroupCommit(service.db)
    service.on_stop.append(hot_path.close)
    progress = ProgressService(
        service.db, service.outbox, movies, movies.tombstones, limiter, hot_path
    )
    charts = ChartsService(
        movies.tombstones,
        service.cache,
        settings.trending_half_life_hours,
        settings.charts_cache_seconds,
        settings.public_base,
    )
    consumers.register(service, progress, charts)
    app = service.create_app(
        "Streamia playback",
        [progress_router, charts_router],
        description="Where each user stopped in each movie, continue watching, history, "
        "most watched and trending.",
        manage_lifecycle=manage_lifecycle,
    )
    app.state.playback = progress
    app.state.charts = charts
    return app
