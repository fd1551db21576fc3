"""Fixtures of the comments tests; the shared ones come from `streamia_kit.testing`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streamia_catalogue_projection.testing import FakeMovies
from streamia_comments.app import create_app
from streamia_comments.config import CommentsSettings
from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.events import Envelope, MovieCreated
from streamia_kit.testing import Stack, new_test_id, wait_for


@pytest.fixture
def make_app(stack: Stack, signing_key: SigningKey, fake_movies: FakeMovies):
    def make(**overrides: Any):
        settings = CommentsSettings(
            **stack.overrides(**{"movies_url": fake_movies.url, **overrides})
        )
        return create_app(settings, keys=StaticKeys(signing_key))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def published_events() -> tuple[str, ...]:
    return ("comment.created", "comment.deleted", "comment.hidden")


@pytest.fixture
def movie_for():
    """Announce a movie to a given (running) app and wait until it is projected."""

    async def make(app, **fields: Any) -> MovieCreated:
        event = MovieCreated(movie_id=new_test_id(), title="Film", version=time.time(), **fields)
        await app.state.service.infra.bus.publish([Envelope.wrap(event, "streamia/test")])

        async def seen():
            async with app.state.service.db.sessions() as session:
                return await app.state.comments.movies.get(session, event.movie_id)

        await wait_for(seen, message="movie projected")
        return event

    return make
