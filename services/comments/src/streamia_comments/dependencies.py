"""Annotated dependency aliases of the comments service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streamia_comments.comments.service import CommentsService
from streamia_kit.lists import Page, PageDep  # noqa: F401 - shared list parameters


async def _comments(request: Request) -> CommentsService:
    return request.app.state.comments


CommentsServiceDep = Annotated[CommentsService, Depends(_comments)]
