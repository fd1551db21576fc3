"""Annotated dependency aliases of the favorites service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streamia_favorites.favorites.service import FavoritesService
from streamia_kit.lists import Page, PageDep  # noqa: F401 - shared list parameters


async def _favorites(request: Request) -> FavoritesService:
    return request.app.state.favorites


FavoritesServiceDep = Annotated[FavoritesService, Depends(_favorites)]
