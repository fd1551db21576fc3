"""Annotated dependency aliases of the playback service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_playback.charts.service import ChartsService
from streamia_playback.progress.service import ProgressService


async def _progress(request: Request) -> ProgressService:
    return request.app.state.playback


async def _charts(request: Request) -> ChartsService:
    return request.app.state.charts


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed once the endpoint returns, rolled back on error."""
    async with request.app.state.service.db.transaction() as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.service.db.sessions() as session:
        yield session


ProgressServiceDep = Annotated[ProgressService, Depends(_progress)]
ChartsServiceDep = Annotated[ChartsService, Depends(_charts)]
# scope="function": the transaction ends before the response is sent, so a client that got
# 200 reads its own write, and a failed commit is the request's error.
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
