"""Ratings service settings."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from streamia_kit.config import ServiceSettings


class RatingsSettings(ServiceSettings):
    service_name: ClassVar[str] = "ratings"

    movie_lookup_timeout_seconds: float = Field(
        2.0,
        description=(
            "timeout of the one catch-up call to the movie service when the movie projection "
            "lags; down or slower means a fast 503"
        ),
    )
    summary_cache_seconds: float = Field(
        300.0,
        description=(
            "lifetime of cached per-movie summaries (`movie:{id}:rating`); every write refreshes"
        ),
    )
