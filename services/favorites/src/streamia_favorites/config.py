"""Favorites service settings."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from streamia_kit.config import ServiceSettings


class FavoritesSettings(ServiceSettings):
    service_name: ClassVar[str] = "favorites"

    movie_lookup_timeout_seconds: float = Field(
        2.0,
        description=(
            "timeout of the one catch-up call to the movie service when the movie projection "
            "lags; down or slower means a fast 503"
        ),
    )
