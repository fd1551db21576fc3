"""The only place the playback service talks SQL about charts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update

from streamia_kit.repository import Repository
from streamia_playback.progress.models import MovieStats, Viewer, movie_projection

_MOVIE = (
    movie_projection.c.movie_id,
    movie_projection.c.title,
    movie_projection.c.poster,
    movie_projection.c.duration,
    movie_projection.c.category,
    movie_projection.c.video_url,
)
_ALIVE = movie_projection.c.deleted.is_(False)


class ChartsRepository(Repository):
    async def trends(self, movie_ids: Sequence[str]) -> dict[str, float | None]:
        """The stored log-scores of these movies, locked until the transaction ends."""
        await self.session.execute(
            self.insert(MovieStats)
            .values([{"movie_id": m, "plays": 0} for m in movie_ids])
            .on_conflict_do_nothing()
        )
        rows = await self.session.execute(
            select(MovieStats.movie_id, MovieStats.trend)
            .where(MovieStats.movie_id.in_(movie_ids))
            .order_by(MovieStats.movie_id)
            .with_for_update()
        )
        return {row.movie_id: row.trend for row in rows}

    async def set_trend(self, movie_id: str, trend: float) -> None:
        await self.session.execute(
            update(MovieStats).where(MovieStats.movie_id == movie_id).values(trend=trend)
        )

    async def popular(self, since: datetime, limit: int) -> Sequence[Row[Any]]:
        """Movies by distinct viewers who started them since `since`."""
        viewers = func.count().label("viewers")
        query = (
            select(*_MOVIE, viewers)
            .join(Viewer, Viewer.movie_id == movie_projection.c.movie_id)
            .where(Viewer.started_at >= since, _ALIVE)
            .group_by(*_MOVIE)
            .order_by(viewers.desc(), movie_projection.c.movie_id)
            .limit(limit)
        )
        return (await self.session.execute(query)).all()

    async def popular_total(self, since: datetime) -> int:
        query = (
            select(func.count(func.distinct(Viewer.movie_id)))
            .join(movie_projection, Viewer.movie_id == movie_projection.c.movie_id)
            .where(Viewer.started_at >= since, _ALIVE)
        )
        return await self.session.scalar(query) or 0

    async def trending(self, limit: int) -> Sequence[Row[Any]]:
        """Movies by stored log-score, highest first."""
        query = (
            select(*_MOVIE, MovieStats.trend, MovieStats.plays)
            .join(MovieStats, MovieStats.movie_id == movie_projection.c.movie_id)
            .where(MovieStats.trend.is_not(None), _ALIVE)
            .order_by(MovieStats.trend.desc(), movie_projection.c.movie_id)
            .limit(limit)
        )
        return (await self.session.execute(query)).all()

    async def trending_total(self) -> int:
        query = (
            select(func.count())
            .select_from(MovieStats)
            .join(movie_projection, MovieStats.movie_id == movie_projection.c.movie_id)
            .where(MovieStats.trend.is_not(None), _ALIVE)
        )
        return await self.session.scalar(query) or 0
