"""The only place the ratings service talks SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import ReturningInsert

from streamia_kit.db import utcnow
from streamia_kit.lists import count_rows
from streamia_kit.repository import Repository, dialect_insert
from streamia_ratings.ratings.models import STARS, MovieSummary, Rating


class DuplicateRating(Exception):
    """The (user, movie) pair already has a rating."""


def _column(star: int) -> Any:
    return getattr(MovieSummary, f"stars_{star}")


# A summary's version only grows: a writer whose clock reading is not newer than the stored
# version (it read the clock, then waited for the row lock behind a writer that read it later)
# takes the stored one plus this step.
VERSION_STEP = 0.001


def _next_version(excluded: Any) -> Any:
    """The version an upsert stores: what the writer proposes, unless that would not be newer
    than the row's. Set under the row lock, so versions grow in commit order — consumers keep
    the newest summary by version, and an older one must never look newer."""
    return case(
        (excluded.version > MovieSummary.version, excluded.version),
        else_=MovieSummary.version + VERSION_STEP,
    )


_STAR_COLUMNS = [f"stars_{star}" for star in STARS]


def _summary_upsert(dialect: str) -> ReturningInsert[Any]:
    """Add each row's star counts to the movie's summary (creating it), and return the new
    counts and version."""
    table = cast(Table, MovieSummary.__table__)
    stmt = dialect_insert(dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.movie_id],
        set_={
            **{name: table.c[name] + stmt.excluded[name] for name in _STAR_COLUMNS},
            "version": _next_version(stmt.excluded),
        },
    ).returning(table.c.movie_id, table.c.version, *(table.c[name] for name in _STAR_COLUMNS))


# Built once per dialect: built per call, it cost 0.3-0.7 ms of SQLAlchemy (construction and
# its cache key) on every rating, more than the database's work on it.
_SUMMARY_UPSERTS = {dialect: _summary_upsert(dialect) for dialect in ("postgresql", "sqlite")}


class RatingsRepository(Repository[Rating]):
    async def list_for_user(
        self, user_id: str, offset: int, limit: int
    ) -> tuple[Sequence[Rating], int]:
        """A slice of the user's ratings, newest first, and how many there are in all."""
        query = (
            select(Rating)
            .where(Rating.user_id == user_id)
            .order_by(Rating.created_at.desc(), Rating.id.desc())
        )
        items = (await self.session.scalars(query.offset(offset).limit(limit))).all()
        return items, await count_rows(self.session, query)

    async def get(self, rating_id: str) -> Rating | None:
        return await self.session.scalar(select(Rating).where(Rating.id == rating_id))

    async def lock(self, rating_id: str) -> Rating | None:
        """Re-read a rating under a row lock (it may have been deleted meanwhile)."""
        return await self.session.scalar(
            select(Rating)
            .where(Rating.id == rating_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def find(self, user_id: str, movie_id: str) -> Rating | None:
        return await self.session.scalar(
            select(Rating)
            .where(Rating.user_id == user_id, Rating.movie_id == movie_id)
            .execution_options(populate_existing=True)
        )

    async def add(self, instance: Rating) -> Rating:
        try:
            return await super().add(instance)
        except IntegrityError as exc:
            raise DuplicateRating from exc

    async def set_rating(self, rating_id: str, value: int) -> Rating | None:
        return await self.session.scalar(
            update(Rating)
            .where(Rating.id == rating_id)
            .values(rating=value, updated_at=utcnow())
            .returning(Rating)
        )

    async def delete(self, rating_id: str) -> Rating | None:
        return await self.session.scalar(
            delete(Rating).where(Rating.id == rating_id).returning(Rating)
        )

    async def bump(
        self, movie_id: str, deltas: dict[int, int], version: float
    ) -> tuple[dict[int, int], float]:
        """Add `deltas` to a movie's counters (creating them); the new counts and the version
        stored with them (`version`, or just above the previous one: `_next_version`)."""
        return (await self.bump_many({movie_id: deltas}, version))[movie_id]

    async def bump_many(
        self, deltas: dict[str, dict[int, int]], version: float
    ) -> dict[str, tuple[dict[int, int], float]]:
        """`bump` for many movies in one statement; each movie's new counts and version.

        Rows are written in movie id order (every multi-movie writer uses that order, so two
        of them never wait for each other's locks in a cycle). The statement runs with a list
        of parameter sets, so it is compiled once and sent as multi-row upserts in that order
        ("insertmanyvalues"); a literal multi-row VALUES was compiled again for every call,
        which cost more than the database's work on a bulk import.
        """
        if not deltas:
            return {}
        rows = [
            {
                "movie_id": movie_id,
                "version": version,
                **{
                    name: deltas[movie_id].get(star, 0)
                    for star, name in zip(STARS, _STAR_COLUMNS, strict=True)
                },
            }
            for movie_id in sorted(deltas)
        ]
        result = await self.session.execute(_SUMMARY_UPSERTS[self.dialect], rows)
        return {
            movie_id: (dict(zip(STARS, row, strict=True)), float(stored))
            for movie_id, stored, *row in result.all()
        }

    async def counts(self, movie_id: str) -> dict[int, int] | None:
        row = (
            await self.session.execute(
                select(*(_column(star) for star in STARS)).where(MovieSummary.movie_id == movie_id)
            )
        ).first()
        return dict(zip(STARS, row, strict=True)) if row is not None else None

    async def remove_for_users(self, user_ids: Sequence[str]) -> list[tuple[str, str, str, int]]:
        """Delete some users' ratings; returns (rating id, user id, movie id, stars) of each."""
        rows = await self.session.execute(
            delete(Rating)
            .where(Rating.user_id.in_(user_ids))
            .returning(Rating.id, Rating.user_id, Rating.movie_id, Rating.rating)
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def remove_for_movie(self, movie_id: str) -> None:
        await self.session.execute(delete(Rating).where(Rating.movie_id == movie_id))
        await self.session.execute(delete(MovieSummary).where(MovieSummary.movie_id == movie_id))
