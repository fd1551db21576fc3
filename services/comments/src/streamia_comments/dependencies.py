"""Annotated dependency aliases of the comments service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from streamia_comments.comments.service import CommentsService


async def _comments(request: Request) -> CommentsService:
    return request.app.state.comments


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


CommentsServiceDep = Annotated[CommentsService, Depends(_comments)]
PageDep = Annotated[Page, Depends(_page)]
