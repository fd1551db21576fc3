"""HTTP endpoints of API.md's Comments section: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from streamia_comments.comments import schemas
from streamia_comments.dependencies import CommentsServiceDep, PageDep
from streamia_kit.dependencies import (
    AdminUser,
    CurrentUser,
    OptionalUser,
    ReadSession,
    WriteSession,
)
from streamia_kit.lists import list_response

router = APIRouter(prefix="/api/comments", tags=["comments"])


@router.post("", status_code=201)
async def create_comment(
    body: schemas.CreateCommentIn,
    identity: CurrentUser,
    comments: CommentsServiceDep,
    session: WriteSession,
) -> Any:
    shown = await comments.create(session, identity, body)
    return schemas.comment_out(shown.comment, shown.author)


# Fixed paths first: `/moderation` and `/movie/{id}` must never be read as a movie id.
@router.get("/moderation")
async def moderation_queue(
    _: AdminUser,
    comments: CommentsServiceDep,
    page: PageDep,
    request: Request,
    session: ReadSession,
) -> Any:
    queue, total = await comments.moderation_queue(session, page.offset, page.limit)
    items = [{**schemas.comment_out(s.comment, s.author), "reports": s.reports} for s in queue]
    return list_response(request, items, total, page)


@router.get("/movie/{movie_id}")
@router.get("/{movie_id}")
async def movie_comments(
    movie_id: str,
    comments: CommentsServiceDep,
    page: PageDep,
    request: Request,
    session: ReadSession,
    viewer: OptionalUser,
) -> Any:
    shown, total = await comments.list_for_movie(session, movie_id, page.offset, page.limit)
    items = [schemas.comment_out(s.comment, s.author) for s in shown]
    if viewer is not None:  # a reader with a token learns which ones they reported
        reported = await comments.reported_by(session, viewer, [s.comment.id for s in shown])
        for item in items:
            item["reportedByMe"] = item["id"] in reported
    return list_response(request, items, total, page)


@router.put("/{comment_id}")
async def edit_comment(
    comment_id: str,
    body: schemas.EditCommentIn,
    identity: CurrentUser,
    comments: CommentsServiceDep,
    session: WriteSession,
) -> Any:
    shown = await comments.edit(session, identity, comment_id, body)
    return schemas.comment_out(shown.comment, shown.author)


@router.delete("/{comment_id}")
async def delete_comment(
    comment_id: str, identity: CurrentUser, comments: CommentsServiceDep, session: WriteSession
) -> Any:
    await comments.delete(session, identity, comment_id)
    return {"message": "Comment deleted successfully"}


@router.post("/{comment_id}/report")
async def report_comment(
    comment_id: str, identity: CurrentUser, comments: CommentsServiceDep, session: WriteSession
) -> Any:
    await comments.report(session, identity, comment_id)
    return {"message": "Comment reported for moderation"}


@router.patch("/{comment_id}")
async def moderate_comment(
    comment_id: str,
    body: schemas.ModerateIn,
    _: AdminUser,
    comments: CommentsServiceDep,
    session: WriteSession,
) -> Any:
    shown = await comments.moderate(session, comment_id, body)
    return schemas.comment_out(shown.comment, shown.author)
