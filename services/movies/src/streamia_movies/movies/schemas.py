"""Request and response bodies of API.md's Movies section."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from streamia_kit.config import absolute_url
from streamia_kit.db import iso
from streamia_kit.validation import Storable
from streamia_movies.media.formats import VIDEO_EXTENSIONS
from streamia_movies.movies.models import Movie, Subtitle

M = TypeVar("M", bound=BaseModel)

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Storable
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), Storable]
Category = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), Storable]

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value, re.IGNORECASE):
        raise ValueError("Must be an http(s) URL")
    return value


def _language(value: str) -> str:
    value = value.strip().lower().replace("_", "-")
    if not _LANGUAGE.match(value):
        raise ValueError("Must be a language code such as 'es', 'en' or 'pt-br'")
    return value


Url = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_http_url)
]
VideoFormat = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True),
    AfterValidator(lambda v: _known_format(v)),
]
Language = Annotated[str, StringConstraints(max_length=35), AfterValidator(_language)]


def _known_format(value: str) -> str:
    if value not in VIDEO_EXTENSIONS:
        raise ValueError("Must be one of " + ", ".join(sorted(VIDEO_EXTENSIONS)))
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


def title_from_filename(filename: str) -> str:
    """The title of an upload sent without one, as the monolith defaulted it: the file's name
    (without its extension)."""
    stem = PurePosixPath(filename).stem.strip() or filename.strip()
    return stem[:200]


class UploadIn(_In):
    """The text fields of POST /upload (`title` defaults to the file's name)."""

    title: Title
    description: Description | None = None
    category: Category | None = None


class CreateMovieIn(_In):
    """POST /: a movie whose video already lives at a URL."""

    title: Title
    videoUrl: Url
    description: Description | None = None
    category: Category | None = None
    coverImage: Url | None = None
    duration: Annotated[float, Field(ge=0, le=1e7)] | None = None
    videoFormat: VideoFormat | None = None
    hasAudio: bool | None = None


class UpdateMovieIn(_In):
    """PUT /:id: any subset; `null` clears description, category and coverImage."""

    title: Title | None = None
    description: Description | None = None
    category: Category | None = None
    coverImage: Url | None = None
    videoUrl: Url | None = None
    duration: Annotated[float, Field(ge=0, le=1e7)] | None = None
    videoFormat: VideoFormat | None = None
    hasAudio: bool | None = None

    def changes(self) -> dict[str, Any]:
        """Fields the client sent; `title` and `videoUrl` cannot be cleared."""
        sent = self.model_dump(include=self.model_fields_set)
        for required in ("title", "videoUrl"):
            if required in sent and sent[required] is None:
                raise RequestValidationError(
                    [
                        {
                            "type": "missing",
                            "loc": ("body", required),
                            "msg": "Cannot be null",
                        }
                    ]
                )
        return sent


class SubtitleIn(_In):
    language: Language
    label: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), Storable] | None
    ) = None


Sort = Literal["newest", "title", "rating", "popular"]


class ListQuery(_In):
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    limit: Annotated[int, Field(ge=1, le=100)] = 100  # the monolith returned up to 100
    sort: Sort = "newest"


class ExploreQuery(ListQuery):
    category: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), Storable] | None
    ) = None
    search: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Storable] | None
    ) = None


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate form or query data; errors become API.md's 400 validation shape."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None


LANGUAGE_LABELS = {
    "es": "Español",
    "en": "English",
    "fr": "Français",
    "de": "Deutsch",
    "it": "Italiano",
    "pt": "Português",
    "pt-br": "Português (Brasil)",
    "es-419": "Español (Latinoamérica)",
    "ca": "Català",
    "eu": "Euskara",
    "gl": "Galego",
    "ja": "日本語",
    "zh": "中文",
}


def default_label(language: str) -> str:
    return LANGUAGE_LABELS.get(language) or LANGUAGE_LABELS.get(language.split("-")[0]) or language


def subtitle_out(subtitle: Subtitle | Any, public_base: str) -> dict[str, Any]:
    return {
        "id": subtitle.id,
        "_id": subtitle.id,
        "language": subtitle.language,
        "label": subtitle.label,
        "url": absolute_url(subtitle.url, public_base),
    }


def movie_out(
    movie: Movie | Any, public_base: str, subtitles: Sequence[Any] | None = None
) -> dict[str, Any]:
    """API.md's `movie`, from the ORM object or a row with the same column names (then with
    its `subtitles` given); media URLs absolute on `public_base`."""
    return {
        "id": movie.id,
        "_id": movie.id,
        "title": movie.title,
        "description": movie.description,
        "category": movie.category,
        "coverImage": absolute_url(movie.cover_image, public_base),
        "videoUrl": absolute_url(movie.video_url, public_base),
        "duration": movie.duration,
        "videoFormat": movie.video_format,
        "hasAudio": movie.has_audio,
        "subtitles": [
            subtitle_out(s, public_base)
            for s in (movie.subtitles if subtitles is None else subtitles)
        ],
        "provider": movie.provider,
        "rating": {
            "average": round(movie.rating_average or 0.0, 2),
            "count": movie.rating_count or 0,
        },
        "plays": movie.plays or 0,
        "createdAt": iso(movie.created_at),
        "updatedAt": iso(movie.updated_at),
    }
