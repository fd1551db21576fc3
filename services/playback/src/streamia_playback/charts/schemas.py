"""Bodies of the public charts: `/api/playback/popular` and `/api/playback/trending`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import Row

from streamia_kit.config import absolute_url

_WINDOW = re.compile(r"([1-9][0-9]{0,3})([hd])")
MAX_WINDOW = timedelta(days=365)


def _window(value: str) -> str:
    match = _WINDOW.fullmatch(value)
    if match is None or parse_window(value) > MAX_WINDOW:
        raise ValueError("Window must be hours or days up to a year, like 24h or 7d")
    return value


Window = Annotated[str, AfterValidator(_window)]


def parse_window(value: str) -> timedelta:
    match = _WINDOW.fullmatch(value)
    assert match is not None
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def movie_out(row: Row[Any], public_base: str) -> dict[str, Any]:
    """A chart's movie; its media URLs absolute on `public_base`, as the movies API's."""
    return {
        "movieId": row.movie_id,
        "title": row.title,
        "poster": absolute_url(row.poster, public_base),
        "duration": row.duration,
        "category": row.category,
        "videoUrl": absolute_url(row.video_url, public_base),
    }
