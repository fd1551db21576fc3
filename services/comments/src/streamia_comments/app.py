"""create_app: the only place the comments service's adapters are wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from streamia_catalogue_projection import MovieProjection
from streamia_comments import consumers
from streamia_comments.comments.endpoints import router
from streamia_comments.comments.models import Base
from streamia_comments.comments.moderation import WordFilter
from streamia_comments.comments.service import CommentsService
from streamia_comments.config import CommentsSettings
from streamia_kit.auth import KeySource
from streamia_kit.infra import Infrastructure
from streamia_kit.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: CommentsSettings | None = None,
    infra: Infrastructure | None = None,
    manage_lifecycle: bool = True,
    keys: KeySource | None = None,
) -> FastAPI:
    settings = settings or CommentsSettings()
    service = Service(settings, Base.metadata, MIGRATIONS, infra=infra, keys=keys)
    movies = MovieProjection.wire(service, settings)
    comments = CommentsService(
        service.outbox,
        movies,
        movies.tombstones,
        WordFilter(settings.blocked_words),
        settings.report_threshold,
        settings.report_min_account_age_seconds,
    )
    consumers.register(service, comments)
    app = service.create_app(
        "Streamia comments",
        [router],
        description="Comments on movies, reports and moderation.",
        manage_lifecycle=manage_lifecycle,
    )
    app.state.comments = comments
    return app
