"""HTTP endpoints of `/api/playback` for the caller's own progress and history: parse, call
the service, shape the response."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from streamia_kit.dependencies import CurrentUser, ReadSession, WriteSession
from streamia_kit.lists import PageDep, list_response
from streamia_kit.openapi import errors
from streamia_playback.dependencies import ProgressServiceDep
from streamia_playback.progress import schemas
from streamia_playback.progress.service import ProgressService

router = APIRouter(prefix="/api/playback", tags=["playback"])


def _public_base(request: Request) -> str:
    return str(request.app.state.service.settings.public_base)


@router.put("/progress/{movie_id}", responses=errors(404, 429, 503))
async def put_progress(
    movie_id: str,
    body: schemas.ProgressIn,
    identity: CurrentUser,
    request: Request,
) -> Any:
    # The busiest route (every viewer every ~10 s), kept lean: no request-wide session (the
    # service opens a transaction only when the shared hot-path batch cannot decide) and the
    # answer encoded once, by orjson, rather than walked by jsonable_encoder first.
    progress: ProgressService = request.app.state.playback
    stored = await progress.record(identity, movie_id, body)
    return Response(orjson.dumps(schemas.progress_out(stored)), media_type="application/json")


@router.get("/progress/{movie_id}", responses=errors(404))
async def get_progress(
    movie_id: str, identity: CurrentUser, progress: ProgressServiceDep, session: ReadSession
) -> Any:
    return schemas.progress_out(await progress.get(session, identity, movie_id))


@router.get("/continue")
async def continue_watching(
    identity: CurrentUser,
    progress: ProgressServiceDep,
    session: ReadSession,
    page: PageDep,
    request: Request,
) -> Any:
    """Started and not finished, most recently watched first."""
    found = await progress.list(session, identity, True, page.offset, page.limit)
    return list_response(
        request,
        [schemas.entry_out(r, _public_base(request)) for r in found.rows],
        found.total,
        page,
    )


@router.get("/history")
async def history(
    identity: CurrentUser,
    progress: ProgressServiceDep,
    session: ReadSession,
    page: PageDep,
    request: Request,
) -> Any:
    """Everything the caller watched, most recently watched first."""
    found = await progress.list(session, identity, False, page.offset, page.limit)
    return list_response(
        request,
        [schemas.entry_out(r, _public_base(request)) for r in found.rows],
        found.total,
        page,
    )


@router.delete("/history/{movie_id}", responses=errors(404))
async def forget_one(
    movie_id: str, identity: CurrentUser, progress: ProgressServiceDep, session: WriteSession
) -> Any:
    await progress.forget(session, identity, movie_id)
    return {"message": "Removed from your history", "movieId": movie_id}


@router.delete("/history")
async def forget_all(
    identity: CurrentUser, progress: ProgressServiceDep, session: WriteSession
) -> Any:
    removed = await progress.forget_all(session, identity)
    return {"message": "History cleared", "removed": removed}
