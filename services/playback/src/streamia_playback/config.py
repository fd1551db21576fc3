"""Playback service settings."""

from __future__ import annotations

from typing import ClassVar

from limits import parse
from pydantic import Field, field_validator

from streamia_catalogue_projection import ProjectionSettings


class PlaybackSettings(ProjectionSettings):
    service_name: ClassVar[str] = "playback"

    progress_rate_limit: str = Field(
        "20/10 seconds",
        description=(
            "progress writes one user may make (`limits` notation, moving window; a player "
            "writes every ~10 s); more get 429"
        ),
    )
    trending_half_life_hours: float = Field(
        24.0, gt=0, description="a start, finish or rating counts half as much this much later"
    )
    charts_cache_seconds: float = Field(
        10.0, gt=0, description="how long /popular and /trending answers are cached"
    )

    @field_validator("progress_rate_limit")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        parse(value)  # raises ValueError on a malformed limit string
        return value
