"""Ratings service settings."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from streamia_catalogue_projection import ProjectionSettings


class RatingsSettings(ProjectionSettings):
    service_name: ClassVar[str] = "ratings"
    summary_cache_seconds: float = Field(
        300.0,
        description=(
            "lifetime of cached per-movie summaries (`movie:{id}:rating`); every write refreshes"
        ),
    )
