"""Fixtures of the favorites tests; the shared ones come from `streamia_kit.testing`."""

from __future__ import annotations

from typing import Any

import pytest

from streamia_catalogue_projection.testing import FakeMovies
from streamia_favorites.app import create_app
from streamia_favorites.config import FavoritesSettings
from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.testing import Stack


@pytest.fixture
def make_app(stack: Stack, signing_key: SigningKey, fake_movies: FakeMovies):
    def make(**overrides: Any):
        settings = FavoritesSettings(
            **stack.overrides(**{"movies_url": fake_movies.url, **overrides})
        )
        return create_app(settings, keys=StaticKeys(signing_key))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def published_events() -> tuple[str, ...]:
    return ("favorite.added", "favorite.removed")
