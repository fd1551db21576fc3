"""Request and response bodies of API.md's Comments section."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from streamia_catalogue_projection import valid_id
from streamia_comments.comments.models import Author, Comment
from streamia_kit.db import iso
from streamia_kit.validation import Storable


def _movie_id(value: str) -> str:
    if not valid_id(value):
        raise ValueError("Invalid movie id")
    return value


MovieId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_movie_id)]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Storable
]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateCommentIn(_In):
    movieId: MovieId
    text: Text


class EditCommentIn(_In):
    text: Text


class ModerateIn(_In):
    status: Literal["visible", "hidden"]


def comment_out(comment: Comment, author: Author | None) -> dict[str, Any]:
    """API.md's comment: the author's id and display name, never the email. `userId` is the
    monolith's populated author, which its clients read; `user` is the same object."""
    writer = {
        "_id": comment.user_id,
        "id": comment.user_id,
        "firstName": author.first_name if author else "",
        "lastName": author.last_name if author else "",
    }
    return {
        "id": comment.id,
        "_id": comment.id,
        "movieId": comment.movie_id,
        "text": comment.text,
        "status": comment.status,
        "userId": writer,
        "user": writer,
        "createdAt": iso(comment.created_at),
        "updatedAt": iso(comment.updated_at),
    }
