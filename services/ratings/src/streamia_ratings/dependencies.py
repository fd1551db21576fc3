"""Annotated dependency aliases of the ratings service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from streamia_ratings.ratings.service import RatingsService


async def _ratings(request: Request) -> RatingsService:
    return request.app.state.ratings


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


RatingsServiceDep = Annotated[RatingsService, Depends(_ratings)]
PageDep = Annotated[Page, Depends(_page)]
