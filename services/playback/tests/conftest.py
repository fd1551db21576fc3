"""Fixtures of the playback tests; the shared ones come from `streamia_kit.testing`."""

from __future__ import annotations

from typing import Any

import pytest

from streamia_catalogue_projection.testing import FakeMovies
from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.testing import Stack
from streamia_playback.app import create_app
from streamia_playback.config import PlaybackSettings


@pytest.fixture
def make_app(stack: Stack, signing_key: SigningKey, fake_movies: FakeMovies):
    def make(**overrides: Any):
        settings = PlaybackSettings(
            **stack.overrides(
                **{"movies_url": fake_movies.url, "charts_cache_seconds": 0.001, **overrides}
            )
        )
        return create_app(settings, keys=StaticKeys(signing_key))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def published_events() -> tuple[str, ...]:
    return ("playback.started", "playback.finished")


@pytest.fixture
def watch(client):
    """Report a position (seconds) in a movie as one user; returns the response."""

    async def report(user, movie_id: str, position: float, duration: float = 5640.0, **extra):
        body = {"position": position, "duration": duration, **extra}
        return await client.put(
            f"/api/playback/progress/{movie_id}", json=body, headers=user.headers
        )

    return report
