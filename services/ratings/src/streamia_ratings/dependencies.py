"""Annotated dependency aliases of the ratings service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streamia_kit.lists import Page, PageDep  # noqa: F401 - shared list parameters
from streamia_ratings.ratings.service import RatingsService


async def _ratings(request: Request) -> RatingsService:
    return request.app.state.ratings


RatingsServiceDep = Annotated[RatingsService, Depends(_ratings)]
