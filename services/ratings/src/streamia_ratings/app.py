"""create_app: the only place the ratings service's adapters are wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from streamia_catalogue_projection import MovieProjection
from streamia_kit.auth import KeySource
from streamia_kit.infra import Infrastructure
from streamia_kit.service import Service
from streamia_ratings import consumers
from streamia_ratings.config import RatingsSettings
from streamia_ratings.ratings.endpoints import router
from streamia_ratings.ratings.models import Base
from streamia_ratings.ratings.service import RatingsService

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: RatingsSettings | None = None,
    infra: Infrastructure | None = None,
    manage_lifecycle: bool = True,
    keys: KeySource | None = None,
) -> FastAPI:
    settings = settings or RatingsSettings()
    service = Service(settings, Base.metadata, MIGRATIONS, infra=infra, keys=keys)
    movies = MovieProjection.wire(service, settings)
    ratings = RatingsService(
        service.outbox,
        movies,
        movies.tombstones,
        service.cache,
        settings.summary_cache_seconds,
    )
    consumers.register(service, ratings)
    app = service.create_app(
        "Streamia ratings",
        [router],
        description="Ratings of 1 to 5 stars and each movie's cached summary.",
        manage_lifecycle=manage_lifecycle,
    )
    app.state.ratings = ratings
    return app
