"""HTTP endpoints of API.md's Favorites section: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from streamia_favorites.dependencies import FavoritesServiceDep, PageDep
from streamia_favorites.favorites import schemas
from streamia_kit.dependencies import CurrentUser, ReadSession, WriteSession
from streamia_kit.lists import list_response
from streamia_kit.openapi import errors

router = APIRouter(prefix="/api/favorites", tags=["favorites"])


def _public_base(request: Request) -> str:
    return str(request.app.state.service.settings.public_base)


@router.get("")
async def list_favorites(
    identity: CurrentUser,
    favorites: FavoritesServiceDep,
    page: PageDep,
    request: Request,
    session: ReadSession,
) -> Any:
    entries, total = await favorites.list(session, identity, page.offset, page.limit)
    items = [schemas.favorite_out(e.favorite, e.movie, _public_base(request)) for e in entries]
    return list_response(request, items, total, page)


@router.post("", status_code=201, responses=errors(409))
async def add_favorite(
    body: schemas.AddFavoriteIn,
    identity: CurrentUser,
    favorites: FavoritesServiceDep,
    request: Request,
    session: WriteSession,
) -> Any:
    entry = await favorites.add(session, identity, body)
    return schemas.favorite_out(entry.favorite, entry.movie, _public_base(request))


@router.put("/{favorite_id}")
async def update_favorite(
    favorite_id: str,
    body: schemas.UpdateNoteIn,
    identity: CurrentUser,
    favorites: FavoritesServiceDep,
    request: Request,
    session: WriteSession,
) -> Any:
    entry = await favorites.update_note(session, identity, favorite_id, body)
    return {
        "message": "Favorite updated successfully",
        "favorite": schemas.favorite_out(entry.favorite, entry.movie, _public_base(request)),
    }


@router.delete("/{movie_id}")
async def remove_favorite(
    movie_id: str,
    identity: CurrentUser,
    favorites: FavoritesServiceDep,
    session: WriteSession,
) -> Any:
    entry = await favorites.remove(session, identity, movie_id)
    return {
        "message": "Movie removed from favorites",
        "removedMovie": {"movieId": movie_id, "title": entry.movie.title if entry.movie else None},
    }
