"""Annotated dependency aliases of the favorites service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from streamia_favorites.favorites.service import FavoritesService


async def _favorites(request: Request) -> FavoritesService:
    return request.app.state.favorites


@dataclass(frozen=True, slots=True)
class Page:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _page(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page:
    return Page(page, limit)


FavoritesServiceDep = Annotated[FavoritesService, Depends(_favorites)]
PageDep = Annotated[Page, Depends(_page)]
