"""Request and response bodies of API.md's Favorites section."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from streamia_catalogue_projection import Movie, valid_id
from streamia_favorites.favorites.models import Favorite
from streamia_kit.config import absolute_url
from streamia_kit.db import iso
from streamia_kit.validation import Storable


def _movie_id(value: str) -> str:
    if not valid_id(value):
        raise ValueError("Invalid movie id")
    return value


MovieId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_movie_id)]
Note = Annotated[str | None, StringConstraints(max_length=500), Storable]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AddFavoriteIn(_In):
    movieId: MovieId
    note: Note = None


class UpdateNoteIn(_In):
    note: Note


def favorite_out(favorite: Favorite, movie: Movie | None, public_base: str) -> dict[str, Any]:
    """API.md's favorite: the favorite's own id plus what the projection knows of the movie
    (its media URLs absolute on `public_base`)."""
    return {
        "id": favorite.id,
        "_id": favorite.id,
        "userId": favorite.user_id,
        "movieId": favorite.movie_id,
        "note": favorite.note or "",  # the monolith's default
        "title": movie.title if movie else None,
        "poster": absolute_url(movie.poster, public_base) if movie else None,
        "videoUrl": absolute_url(movie.video_url, public_base) if movie else None,
        "duration": movie.duration if movie else None,
        "hasAudio": movie.has_audio if movie else None,
        "category": movie.category if movie else None,
        "createdAt": iso(favorite.created_at),
        "updatedAt": iso(favorite.updated_at),
    }
