"""Annotated dependency aliases of the playback service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streamia_playback.charts.service import ChartsService
from streamia_playback.progress.service import ProgressService


async def _progress(request: Request) -> ProgressService:
    return request.app.state.playback


async def _charts(request: Request) -> ChartsService:
    return request.app.state.charts


ProgressServiceDep = Annotated[ProgressService, Depends(_progress)]
ChartsServiceDep = Annotated[ChartsService, Depends(_charts)]
