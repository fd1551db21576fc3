"""create_app: the only place the movies service's adapters are wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from streamia_kit.auth import KeySource
from streamia_kit.infra import Infrastructure
from streamia_kit.service import Service
from streamia_movies import consumers
from streamia_movies.config import MoviesSettings
from streamia_movies.media.prober import MediaProber
from streamia_movies.media.service import MediaService
from streamia_movies.media.staging import StagingSweeper
from streamia_movies.media.storage import (
    CloudinaryConfig,
    CloudinaryMediaStore,
    LocalMediaStore,
    MediaStore,
)
from streamia_movies.movies.cache import MovieCache
from streamia_movies.movies.endpoints import is_upload_path, router, status_router
from streamia_movies.movies.models import Base
from streamia_movies.movies.service import MoviesService
from streamia_movies.movies.totals import ExploreTotals

MIGRATIONS = Path(__file__).parent / "migrations"


def media_stores(settings: MoviesSettings) -> tuple[MediaStore, dict[str, MediaStore]]:
    """The store new media goes to, and every store this process can read and delete from."""
    local = LocalMediaStore(settings.media_root, settings.public_media_path)
    stores: dict[str, MediaStore] = {"local": local}
    if settings.cloudinary_url is not None:
        stores["cloudinary"] = CloudinaryMediaStore(
            CloudinaryConfig.from_url(settings.cloudinary_url.get_secret_value()),
            staging_dir=local.staging_dir,
            folder=settings.cloudinary_folder,
        )
    if settings.store_kind not in stores:
        raise ValueError("STREAMIA_MEDIA_STORE=cloudinary needs CLOUDINARY_URL")
    return stores[settings.store_kind], stores


def create_app(
    settings: MoviesSettings | None = None,
    infra: Infrastructure | None = None,
    manage_lifecycle: bool = True,
    keys: KeySource | None = None,
    store: MediaStore | None = None,
) -> FastAPI:
    settings = settings or MoviesSettings()
    service = Service(settings, Base.metadata, MIGRATIONS, infra=infra, keys=keys)
    default_store, stores = media_stores(settings)
    if store is not None:
        stores[store.provider] = store
    media = MediaService(
        store or default_store,
        stores,
        MediaProber(settings.media_read_timeout_seconds, settings.media_read_memory_mb),
    )
    totals = ExploreTotals(
        service.cache,
        service.db,
        settings.explore_totals_ttl_seconds,
        warm_delay=settings.explore_warm_delay_seconds,
        warm_searches=settings.explore_warm_searches,
    )
    cache = MovieCache(
        service.cache, service.db, settings.movie_cache_ttl_seconds, settings.public_base
    )
    movies = MoviesService(media, cache, totals, service.outbox, settings.public_base)
    consumers.register(service, movies)
    sweeper = StagingSweeper(media.staging_dir)
    service.on_start.extend([totals.start, sweeper.start])
    service.on_stop.extend([totals.stop, sweeper.stop])
    service.ready_checks["explore_warmer"] = totals.warmer.ping
    service.ready_checks["staging_sweep"] = sweeper.supervisor.ping
    app = service.create_app(
        "Streamia movies",
        [router, status_router],
        description="Catalogue, video upload and Range streaming, subtitles, search.",
        body_limit_exempt=is_upload_path,
        manage_lifecycle=manage_lifecycle,
    )
    app.state.movies = movies
    return app
