"""Favorites brought over from the monolith by `streamia import-monolith`."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import Movie
from streamia_favorites.favorites.models import Favorite
from streamia_favorites.favorites.schemas import Note
from streamia_kit.bulk import Loaded, existing, insert_new, refusal

FAVORITES = Favorite.__table__
_NOTE: TypeAdapter[str | None] = TypeAdapter(Note)


@dataclass(frozen=True, slots=True)
class MonolithFavorite:
    id: str
    user_id: str | None
    movie_id: str | None
    note: object
    created_at: datetime
    updated_at: datetime


async def import_favorites(
    session: AsyncSession,
    favorites: Sequence[MonolithFavorite],
    users: Container[str],
    movies: Mapping[str, Movie],
    buried_users: Container[str],
) -> Loaded:
    """Store the favorites not imported yet; no `favorite.added` (it is only a record)."""
    loaded = Loaded()
    known = await existing(session, FAVORITES.c.id, (f.id for f in favorites))
    rows: list[dict[str, object]] = []
    for favorite in favorites:
        if favorite.id in known:
            continue
        reason = refusal(favorite.user_id, favorite.movie_id, users, movies, buried_users)
        try:
            note = _NOTE.validate_python(favorite.note if favorite.note != "" else None)
        except ValidationError:
            reason = reason or "invalid note (at most 500 characters of text)"
        if reason is not None:
            loaded.reject(favorite.id, reason)
            continue
        rows.append(
            {
                "id": favorite.id,
                "user_id": favorite.user_id,
                "movie_id": favorite.movie_id,
                "note": note,
                "created_at": favorite.created_at,
                "updated_at": favorite.updated_at,
            }
        )
    inserted = await insert_new(session, FAVORITES, rows)
    for row in rows:
        if row["id"] not in inserted:
            loaded.reject(str(row["id"]), "duplicate favorite (same user and movie)")
    loaded.changed = len(inserted)
    return loaded
