"""The only place the playback service talks SQL about progress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Float,
    Row,
    String,
    TextClause,
    TextualSelect,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from streamia_kit.db import UTCDateTime, rowcount
from streamia_kit.repository import Repository
from streamia_playback.progress.models import MovieStats, Progress, Viewer, movie_projection


@dataclass(frozen=True, slots=True)
class Write:
    """One progress report, validated and timestamped."""

    user_id: str
    movie_id: str
    position: float
    duration: float
    finished: bool
    client_at: datetime
    now: datetime


# One stored progress: movie_id, position, duration, finished, client_at, updated_at.
State = Row[str, float, float, bool, datetime, datetime]

_STATE = (
    Progress.movie_id,
    Progress.position,
    Progress.duration,
    Progress.finished,
    Progress.client_at,
    Progress.updated_at,
)
_MOVIE = (
    movie_projection.c.title,
    movie_projection.c.poster,
    movie_projection.c.duration.label("movie_duration"),
    movie_projection.c.category,
    movie_projection.c.video_url,
)

# The hot path, built once: a report for a row that exists, is not older than the stored one
# and keeps its finished state is one UPDATE. It needs no lock: a deletion saga that already
# removed the row leaves it nothing to match, and one that comes later deletes what it wrote.
_ADVANCE = (
    update(Progress)
    .where(
        Progress.user_id == bindparam("p_user"),
        Progress.movie_id == bindparam("p_movie"),
        Progress.client_at <= bindparam("p_at"),
        Progress.finished == bindparam("p_finished"),
    )
    .values(
        position=bindparam("p_position"),
        duration=bindparam("p_duration"),
        client_at=bindparam("p_at"),
        updated_at=bindparam("p_now"),
    )
    .returning(*_STATE)
)


# `_ADVANCE` for many (user, movie) pairs at once (at most one report per pair): one statement
# and one commit for every report that arrived while the previous batch was being written.
_BATCH_COLUMNS = ("user_id", "movie_id", "client_at", "finished", "position", "duration", "now")
_BATCH_UPDATE = (
    "UPDATE progress SET position = batch.position, duration = batch.duration, "
    "client_at = batch.client_at, updated_at = batch.now FROM {batch} "
    "WHERE progress.user_id = batch.user_id AND progress.movie_id = batch.movie_id "
    "AND progress.client_at <= batch.client_at "
    "AND progress.finished = batch.finished "
    "RETURNING progress.movie_id, progress.position, progress.duration, "
    "progress.finished, progress.client_at, progress.updated_at, progress.user_id"
)

# PostgreSQL: one statement for every batch size, the reports as seven arrays (one prepared
# statement per connection; the values go to asyncpg as they are, no per-value processing).
_ARRAY_TYPES = ("varchar", "varchar", "timestamptz", "boolean", "float8", "float8", "timestamptz")
_ADVANCE_ARRAYS = text(
    _BATCH_UPDATE.format(
        batch="unnest("
        + ", ".join(
            f"CAST(:{name} AS {kind}[])"
            for name, kind in zip(_BATCH_COLUMNS, _ARRAY_TYPES, strict=True)
        )
        + f") AS batch ({', '.join(_BATCH_COLUMNS)})"
    )
).columns(*_STATE, Progress.user_id)

# SQLite: a VALUES list, written out, one text per batch size (SQLAlchemy cannot cache a
# VALUES construct that carries its rows: it compiled one per batch, ~2 ms; a text with bind
# parameters is cached). A CTE, not `FROM (VALUES ..) AS batch (columns)`, which SQLite cannot
# parse.
_BATCH_TYPES: tuple[TypeEngine[Any], ...] = (
    String(),
    String(),
    UTCDateTime(),
    Boolean(),
    Float(),
    Float(),
    UTCDateTime(),
)
_BATCHES: dict[int, TextClause | TextualSelect] = {}


def _advance_values(size: int) -> Any:
    statement = _BATCHES.get(size)
    if statement is None:
        rows = ", ".join(
            "(" + ", ".join(f":{name}_{i}" for name in _BATCH_COLUMNS) + ")" for i in range(size)
        )
        statement = (
            text(
                f"WITH batch ({', '.join(_BATCH_COLUMNS)}) AS (VALUES {rows}) "
                + _BATCH_UPDATE.format(batch="batch")
            )
            .bindparams(
                *(
                    bindparam(f"{name}_{i}", type_=kind)
                    for i in range(size)
                    for name, kind in zip(_BATCH_COLUMNS, _BATCH_TYPES, strict=True)
                )
            )
            .columns(*_STATE, Progress.user_id)
        )
        _BATCHES[size] = statement
    return statement


def _batch_rows(writes: Sequence[Write]) -> list[tuple[Any, ...]]:
    return [
        (w.user_id, w.movie_id, w.client_at, w.finished, w.position, w.duration, w.now)
        for w in writes
    ]


def _values_params(writes: Sequence[Write]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for i, row in enumerate(_batch_rows(writes)):
        for name, value in zip(_BATCH_COLUMNS, row, strict=True):
            params[f"{name}_{i}"] = value
    return params


def _array_params(writes: Sequence[Write]) -> dict[str, Any]:
    columns = zip(*_batch_rows(writes), strict=True)
    return {name: list(values) for name, values in zip(_BATCH_COLUMNS, columns, strict=True)}


def _params(write: Write) -> dict[str, Any]:
    return {
        "p_user": write.user_id,
        "p_movie": write.movie_id,
        "p_at": write.client_at,
        "p_finished": write.finished,
        "p_position": write.position,
        "p_duration": write.duration,
        "p_now": write.now,
    }


async def advance_many(
    connection: AsyncConnection, writes: Sequence[Write]
) -> dict[tuple[str, str], State]:
    """`ProgressRepository.advance` for reports of distinct (user, movie) pairs in one
    statement: the stored state of each pair it advanced; a pair missing needs the slow path."""
    # On a connection, not the ORM session: a Core statement skips the ORM's bulk-UPDATE
    # bookkeeping (it has no objects to synchronise), most of this path's CPU.
    if connection.dialect.name == "postgresql":
        statement, params = _ADVANCE_ARRAYS, _array_params(writes)
    else:
        statement, params = _advance_values(len(writes)), _values_params(writes)
    rows = (await connection.execute(statement, params)).all()
    return {(row.user_id, row.movie_id): cast(State, row) for row in rows}


def _of_user(unfinished_only: bool) -> Any:
    query = (
        select(*_STATE, *_MOVIE)
        .join(movie_projection, movie_projection.c.movie_id == Progress.movie_id)
        .where(Progress.user_id == bindparam("p_user"), movie_projection.c.deleted.is_(False))
    )
    return query.where(Progress.finished.is_(False)) if unfinished_only else query


def _count_of_user(unfinished_only: bool) -> Any:
    """How many entries `_of_user` lists, counted on the progress index alone: every progress
    row's movie is projected and alive (a first report holds the projected movie, and
    `movie.deleted` marks it deleted and removes its progress in one transaction), so the join
    and its filter remove nothing from the count; an index-only scan, where counting the join
    probed the projection once per entry (0.6 ms of PostgreSQL for 500)."""
    counted = Progress.__table__.alias("counted")
    query = (
        select(func.count()).select_from(counted).where(counted.c.user_id == bindparam("p_user"))
    )
    return query.where(counted.c.finished.is_(False)) if unfinished_only else query


# `/continue` (True) and `/history` (False), built once: a page read in index order and, in
# the same statement, the total it is cut from (one round trip, where a page and a count took
# two and two statements built per request).
_PAGES = {
    unfinished: _of_user(unfinished)
    .add_columns(_count_of_user(unfinished).scalar_subquery().label("total"))
    .order_by(Progress.updated_at.desc(), Progress.movie_id)
    .offset(bindparam("p_offset"))
    .limit(bindparam("p_limit"))
    for unfinished in (True, False)
}
_COUNTS = {unfinished: _count_of_user(unfinished) for unfinished in (True, False)}


class ProgressRepository(Repository):
    async def advance(self, write: Write) -> State | None:
        """The hot path (see `_ADVANCE`); None when the slow path must decide."""
        connection = await self.session.connection()  # Core: see `advance_many`
        return (await connection.execute(_ADVANCE, _params(write))).first()

    async def advance_many(self, writes: Sequence[Write]) -> dict[tuple[str, str], State]:
        """`advance_many` in this session's transaction."""
        return await advance_many(await self.session.connection(), writes)

    async def locked(self, user_id: str, movie_id: str) -> State | None:
        """The stored progress, locked until the transaction ends (SQLite: already held)."""
        return (
            await self.session.execute(
                select(*_STATE)
                .where(Progress.user_id == user_id, Progress.movie_id == movie_id)
                .with_for_update()
            )
        ).first()

    async def start(self, write: Write) -> State | None:
        """The first progress of this (user, movie); None when a concurrent one won."""
        stmt = (
            self.insert(Progress)
            .values(
                user_id=write.user_id,
                movie_id=write.movie_id,
                position=write.position,
                duration=write.duration,
                finished=write.finished,
                client_at=write.client_at,
                started_at=write.now,
                updated_at=write.now,
            )
            .on_conflict_do_nothing()
            .returning(*_STATE)
        )
        return (await self.session.execute(stmt)).first()

    async def overwrite(self, write: Write) -> State:
        """Store a report for a row this transaction holds."""
        stmt = (
            update(Progress)
            .where(Progress.user_id == write.user_id, Progress.movie_id == write.movie_id)
            .values(
                position=write.position,
                duration=write.duration,
                finished=write.finished,
                client_at=write.client_at,
                updated_at=write.now,
            )
            .returning(*_STATE)
        )
        return (await self.session.execute(stmt)).one()

    async def add_viewer(self, movie_id: str, user_id: str, now: datetime) -> int | None:
        """Count a distinct viewer; the movie's plays when new, None when seen before."""
        added = await self.session.execute(
            self.insert(Viewer)
            .values(movie_id=movie_id, user_id=user_id, started_at=now)
            .on_conflict_do_nothing()
        )
        if not rowcount(added):
            return None
        stmt = self.insert(MovieStats).values(movie_id=movie_id, plays=1)
        return await self.session.scalar(
            stmt.on_conflict_do_update(
                index_elements=[MovieStats.movie_id],
                set_={"plays": MovieStats.plays + 1},
            ).returning(MovieStats.plays)
        )

    async def plays(self, movie_id: str) -> int:
        return (
            await self.session.scalar(
                select(MovieStats.plays).where(MovieStats.movie_id == movie_id)
            )
            or 0
        )

    async def get(self, user_id: str, movie_id: str) -> State | None:
        return (
            await self.session.execute(
                select(*_STATE).where(Progress.user_id == user_id, Progress.movie_id == movie_id)
            )
        ).first()

    async def page_for_user(
        self, user_id: str, unfinished_only: bool, offset: int, limit: int
    ) -> tuple[Sequence[Row[Any]], int | None]:
        """A page of the user's progress with the projected movie, most recently watched
        first, and the total the page is cut from (None when the page is empty)."""
        connection = await self.session.connection()  # Core: see `advance_many`
        params = {"p_user": user_id, "p_offset": offset, "p_limit": limit}
        rows = (await connection.execute(_PAGES[unfinished_only], params)).all()
        return rows, (rows[0].total if rows else None)

    async def count_for_user(self, user_id: str, unfinished_only: bool) -> int:
        connection = await self.session.connection()
        return int(
            (await connection.execute(_COUNTS[unfinished_only], {"p_user": user_id})).scalar_one()
        )

    async def forget(self, user_id: str, movie_id: str) -> bool:
        result = await self.session.execute(
            delete(Progress).where(Progress.user_id == user_id, Progress.movie_id == movie_id)
        )
        return bool(rowcount(result))

    async def forget_all(self, user_id: str) -> int:
        return rowcount(
            await self.session.execute(delete(Progress).where(Progress.user_id == user_id))
        )

    async def remove_for_user(self, user_id: str) -> None:
        """user.deleted: the progress and the viewer rows (counts already published stay)."""
        await self.session.execute(delete(Progress).where(Progress.user_id == user_id))
        await self.session.execute(delete(Viewer).where(Viewer.user_id == user_id))

    async def remove_for_movie(self, movie_id: str) -> None:
        await self.session.execute(delete(Progress).where(Progress.movie_id == movie_id))
        await self.session.execute(delete(Viewer).where(Viewer.movie_id == movie_id))
        await self.session.execute(delete(MovieStats).where(MovieStats.movie_id == movie_id))
