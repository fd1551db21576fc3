"""Comments (and their authors' names) brought over from the monolith by
`streamia import-monolith`."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import Movie
from streamia_comments.comments.models import FLAGGED, VISIBLE, Comment
from streamia_comments.comments.repository import CommentsRepository
from streamia_comments.comments.schemas import Text
from streamia_comments.comments.service import BY_WORDS, CommentsService
from streamia_kit.bulk import Loaded, existing, insert_new, refusal

COMMENTS = Comment.__table__
_TEXT: TypeAdapter[str] = TypeAdapter(Text)


@dataclass(frozen=True, slots=True)
class MonolithComment:
    id: str
    user_id: str | None
    movie_id: str | None
    text: object
    created_at: datetime
    updated_at: datetime


async def import_comments(
    session: AsyncSession,
    comments: Sequence[MonolithComment],
    users: Container[str],
    movies: Mapping[str, Movie],
    buried_users: Container[str],
    service: CommentsService,
) -> Loaded:
    """Store the comments not imported yet; the word filter flags them as it would a new
    comment. No `comment.created` (it is only a record)."""
    loaded = Loaded()
    known = await existing(session, COMMENTS.c.id, (c.id for c in comments))
    rows: list[dict[str, object]] = []
    for comment in comments:
        if comment.id in known:
            continue
        reason = refusal(comment.user_id, comment.movie_id, users, movies, buried_users)
        try:
            text = _TEXT.validate_python(comment.text)
        except ValidationError:
            reason = reason or "invalid text (1-500 characters)"
        if reason is not None:
            loaded.reject(comment.id, reason)
            continue
        flagged = service.words.flags(text)
        rows.append(
            {
                "id": comment.id,
                "user_id": comment.user_id,
                "movie_id": comment.movie_id,
                "text": text,
                "status": FLAGGED if flagged else VISIBLE,
                "flag_reason": BY_WORDS if flagged else None,
                "created_at": comment.created_at,
                "updated_at": comment.updated_at,
            }
        )
    inserted = await insert_new(session, COMMENTS, rows)
    loaded.changed = len(inserted)
    return loaded


async def import_authors(
    session: AsyncSession,
    authors: Sequence[tuple[str, str, str, float]],
    buried_users: Container[str],
) -> None:
    """(user id, first name, last name, version): the display names `user.registered`
    would have brought; the newest version wins and deleted accounts get none, as in
    `CommentsService.remember_author`."""
    alive = [author for author in authors if author[0] not in buried_users]
    await CommentsRepository(session).upsert_authors(alive)
