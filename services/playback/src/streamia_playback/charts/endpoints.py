"""Public HTTP endpoints of `/api/playback`: most watched and trending."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from streamia_kit.dependencies import ReadSession
from streamia_playback.charts import schemas
from streamia_playback.dependencies import ChartsServiceDep

router = APIRouter(prefix="/api/playback", tags=["playback"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/popular")
async def popular(
    charts: ChartsServiceDep,
    session: ReadSession,
    response: Response,
    window: Annotated[schemas.Window, Query()] = "7d",
    limit: Limit = 20,
) -> Any:
    """Most watched: distinct viewers who started each movie in the window (`24h`, `7d`)."""
    chart = await charts.popular(session, window, limit)
    response.headers["X-Total-Count"] = str(chart["total"])
    return chart["items"]


@router.get("/trending")
async def trending(
    charts: ChartsServiceDep, session: ReadSession, response: Response, limit: Limit = 20
) -> Any:
    """Trending: starts, finishes and ratings, each counting half as much a half-life later."""
    chart = await charts.trending(session, limit)
    response.headers["X-Total-Count"] = str(chart["total"])
    return chart["items"]
