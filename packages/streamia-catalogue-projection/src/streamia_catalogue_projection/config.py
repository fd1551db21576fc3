"""Settings of a service that keeps the movie projection."""

from __future__ import annotations

from pydantic import Field

from streamia_kit.config import ServiceSettings


class ProjectionSettings(ServiceSettings):
    """The base of favorites', ratings' and comments' settings (`movies_url` is in the kit)."""

    movie_lookup_timeout_seconds: float = Field(
        2.0,
        description=(
            "timeout of the one catch-up call to the movie service when the movie projection "
            "lags; down or slower means a fast 503"
        ),
    )
