"""Movies brought over from the monolith by `streamia import-monolith`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.bulk import Loaded, existing, insert_new
from streamia_kit.db import new_id
from streamia_kit.events import MovieSnapshot
from streamia_movies.movies.models import Movie, Subtitle
from streamia_movies.movies.repository import MoviesRepository
from streamia_movies.movies.schemas import _language, default_label
from streamia_movies.movies.search import fold, search_document
from streamia_movies.movies.service import _snapshot

MOVIES = Movie.__table__
SUBTITLES = Subtitle.__table__
_HTTP = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class MonolithSubtitle:
    id: str | None
    language: object
    label: object
    url: object


@dataclass(frozen=True, slots=True)
class MonolithMovie:
    id: str
    title: object
    description: object
    category: object
    video_url: object
    cover_image: object
    cloudinary_public_id: object
    duration: object
    created_at: datetime
    updated_at: datetime
    subtitles: list[MonolithSubtitle] = field(default_factory=list)


def _text(value: object, limit: int) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    return text[:limit] if text else None


def _url(value: object) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    return text if len(text) <= 2048 and _HTTP.match(text) else None


def _duration(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


def _row(movie: MonolithMovie) -> tuple[dict[str, object] | None, str]:
    title = _text(movie.title, 200)
    if title is None:
        return None, "missing title"
    video_url = _url(movie.video_url)
    if video_url is None:
        return None, "videoUrl is not an http(s) URL"
    public_id = _text(movie.cloudinary_public_id, 255)
    description = _text(movie.description, 5000)
    category = _text(movie.category, 100)
    row: dict[str, object] = {
        "id": movie.id,
        "title": title,
        "description": description,
        "category": category,
        "cover_image": _url(movie.cover_image),
        "video_url": video_url,
        # The media stays where the monolith put it; no key, so deleting the movie here
        # never deletes the monolith's Cloudinary assets.
        "provider": "cloudinary" if public_id else "external",
        "external_id": public_id,
        "duration": _duration(movie.duration),
        "title_key": fold(title)[:200],
        "category_key": fold(category)[:100],
        "search_text": search_document(title, description),
        "rating_average": 0.0,
        "rating_count": 0,
        "rating_version": 0.0,
        "created_at": movie.created_at,
        "updated_at": movie.updated_at,
    }
    return row, ""


def _subtitles(movie: MonolithMovie, loaded: Loaded) -> list[dict[str, object]]:
    """One track per language (the last one given wins, as an upload would replace it)."""
    by_language: dict[str, dict[str, object]] = {}
    for position, track in enumerate(movie.subtitles):
        try:
            language = _language(track.language) if isinstance(track.language, str) else ""
        except ValueError:
            language = ""
        url = _url(track.url)
        if not language or url is None:
            loaded.reject(f"{movie.id}/subtitles/{position}", "invalid subtitle language or url")
            continue
        by_language[language] = {
            "id": track.id or new_id(),
            "movie_id": movie.id,
            "language": language,
            "label": _text(track.label, 100) or default_label(language),
            "url": url,
            "provider": "external",
            "key": "",
            "created_at": movie.created_at,
            "updated_at": movie.updated_at,
        }
    return list(by_language.values())


async def import_movies(session: AsyncSession, movies: Sequence[MonolithMovie]) -> Loaded:
    """Store the movies not imported yet with their subtitles. No `movie.created`: the
    importer writes the other services' projections itself (see `snapshots`)."""
    loaded = Loaded()
    known = await existing(session, MOVIES.c.id, (m.id for m in movies))
    rows: list[dict[str, object]] = []
    tracks: dict[str, list[dict[str, object]]] = {}
    for movie in movies:
        if movie.id in known:
            continue
        row, reason = _row(movie)
        if row is None:
            loaded.reject(movie.id, reason)
            continue
        rows.append(row)
        tracks[movie.id] = _subtitles(movie, loaded)
    inserted = await insert_new(session, MOVIES, rows)
    await insert_new(session, SUBTITLES, [t for m in inserted for t in tracks[m]])
    loaded.changed = len(inserted)
    return loaded


async def snapshots(session: AsyncSession) -> list[MovieSnapshot]:
    """Every movie as `movie.created` would announce it to the other services."""
    return [MovieSnapshot(**_snapshot(movie)) for movie in await MoviesRepository(session).every()]


async def apply_rating_summaries(
    session: AsyncSession, summaries: Sequence[tuple[str, float, int, float]]
) -> list[str]:
    """(movie id, average, count, version) from the ratings service, as `rating.*` events
    would bring them; returns the movies whose projection changed. A summary already stored
    is not written again, so a second import touches no movie (and drops no cached one)."""
    repo = MoviesRepository(session)
    stored = await repo.rating_states()
    changed = []
    for movie_id, average, count, version in summaries:
        current = stored.get(movie_id)
        if current is None or current[2] > version or current == (average, count, version):
            continue
        changed.append((movie_id, average, count, version))
    await repo.apply_ratings(changed)
    return [movie_id for movie_id, *_ in changed]
