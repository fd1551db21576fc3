"""create_app: the only place the favorites service's adapters are wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from streamia_catalogue_projection import MovieProjection
from streamia_favorites import consumers
from streamia_favorites.config import FavoritesSettings
from streamia_favorites.favorites.endpoints import router
from streamia_favorites.favorites.models import Base
from streamia_favorites.favorites.service import FavoritesService
from streamia_kit.auth import KeySource
from streamia_kit.infra import Infrastructure
from streamia_kit.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: FavoritesSettings | None = None,
    infra: Infrastructure | None = None,
    manage_lifecycle: bool = True,
    keys: KeySource | None = None,
) -> FastAPI:
    settings = settings or FavoritesSettings()
    service = Service(settings, Base.metadata, MIGRATIONS, infra=infra, keys=keys)
    movies = MovieProjection.wire(service, settings)
    favorites = FavoritesService(service.outbox, movies, movies.tombstones)
    consumers.register(service, favorites)
    app = service.create_app(
        "Streamia favorites",
        [router],
        description="Each user's favorite movies, kept consistent with movie and account "
        "deletions.",
        manage_lifecycle=manage_lifecycle,
    )
    app.state.favorites = favorites
    return app
