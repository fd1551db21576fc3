"""Request and response bodies of the playback API (`/api/playback`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import Row

from streamia_kit.config import absolute_url
from streamia_kit.db import iso

# Longer than any film (the longest run about a day); anything above is a broken client.
MAX_SECONDS = 7 * 24 * 3600.0
# Players report the position a little past the container's duration at the very end.
POSITION_TOLERANCE_SECONDS = 5.0


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("Expected a number of seconds")
    return value


Seconds = Annotated[
    float, BeforeValidator(_not_bool), Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)
]


def _in_utc(value: datetime | None) -> datetime | None:
    """A client time without a zone is UTC, as every time in Streamia; others are converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ProgressIn(BaseModel):
    """`{position, duration}` in seconds; `at` (the client's clock) orders two tabs' writes."""

    model_config = ConfigDict(extra="ignore")

    duration: Annotated[Seconds, Field(gt=0)]
    position: Seconds
    at: Annotated[datetime | None, AfterValidator(_in_utc)] = None

    @field_validator("position")
    @classmethod
    def _within_duration(cls, value: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration")
        if duration is not None and value > duration + POSITION_TOLERANCE_SECONDS:
            raise ValueError("Position is past the end of the movie")
        return value


def percent(position: float, duration: float) -> float:
    return round(min(100.0, 100.0 * position / duration), 1) if duration > 0 else 0.0


def progress_out(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    """The caller's position in one movie."""
    return {
        "movieId": row.movie_id,
        "position": row.position,
        "duration": row.duration,
        "percent": percent(row.position, row.duration),
        "finished": row.finished,
        "updatedAt": iso(row.updated_at),
    }


def entry_out(row: Row[Any], public_base: str) -> dict[str, Any]:
    """A `/continue` or `/history` entry: the progress plus the projected movie (its media
    URLs absolute on `public_base`, as the movies API's)."""
    return {
        **progress_out(row),
        "movie": {
            "id": row.movie_id,
            "_id": row.movie_id,
            "title": row.title,
            "poster": absolute_url(row.poster, public_base),
            "duration": row.movie_duration,
            "category": row.category,
            "videoUrl": absolute_url(row.video_url, public_base),
        },
    }
