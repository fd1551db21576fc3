"""The movies a service knows from `movie.*` events, with tombstones and one-call catch-up."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection.client import MovieClient
from streamia_catalogue_projection.tombstones import MOVIE, Tombstones, tombstones_table, valid_id
from streamia_kit.bus import MalformedMessage
from streamia_kit.db import UTCDateTime, utcnow
from streamia_kit.errors import NotFound
from streamia_kit.events import Envelope, MovieDeleted, MovieSnapshot
from streamia_kit.repository import dialect_insert, dialect_name, insert

if TYPE_CHECKING:
    from streamia_catalogue_projection.config import ProjectionSettings
    from streamia_kit.service import Service

MOVIE_NOT_FOUND = "Movie not found"

# (column, snapshot field, element type) of the batched PostgreSQL upsert's arrays.
_ARRAY_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("movie_id", "movie_id", String),
    ("title", "title", Text),
    ("poster", "cover_image", Text),
    ("video_url", "video_url", Text),
    ("duration", "duration", Float),
    ("has_audio", "has_audio", Boolean),
    ("category", "category", Text),
    ("version", "version", Float),
)


def projection_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the `movie_projection` and `tombstones` tables to a service's metadata."""
    movies = Table(
        "movie_projection",
        metadata,
        Column("movie_id", String(64), primary_key=True),
        Column("title", Text, nullable=False),
        Column("poster", Text, nullable=True),
        Column("video_url", Text, nullable=True),
        Column("duration", Float, nullable=True),
        Column("has_audio", Boolean, nullable=True),
        Column("category", Text, nullable=True),
        Column("deleted", Boolean, nullable=False),
        Column("version", Float, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    return movies, tombstones_table(metadata)


@dataclass(frozen=True, slots=True)
class Movie:
    """One movie as the projection knows it."""

    id: str
    title: str
    poster: str | None
    video_url: str | None
    duration: float | None
    has_audio: bool | None
    category: str | None
    deleted: bool
    version: float


class MovieProjection:
    """The movies a service knows from events, with tombstones and one-call catch-up."""

    def __init__(self, table: Table, tombstones: Tombstones, client: MovieClient) -> None:
        self.table = table
        self.tombstones = tombstones
        self.client = client
        self._statements: dict[str, Any] = {}

    @classmethod
    def wire(cls, service: Service, settings: ProjectionSettings) -> MovieProjection:
        """The projection over the service's `movie_projection` and `tombstones` tables, its
        catch-up client closed when the service stops. Consumers subscribe `on_snapshot(s)`."""
        client = MovieClient(
            settings.movies_url,
            settings.movie_lookup_timeout_seconds,
            trace_configs=service.tracing.http_trace_configs(),
        )
        service.on_stop.append(client.close)
        tables = service.metadata.tables
        return cls(tables["movie_projection"], Tombstones(tables["tombstones"]), client)

    async def on_snapshot(self, session: AsyncSession, event: MovieSnapshot, _: Envelope) -> None:
        """The `movie.created` / `movie.updated` consumer."""
        await self.apply(session, event)

    async def on_snapshots(
        self, session: AsyncSession, items: Sequence[tuple[MovieSnapshot, Envelope]]
    ) -> None:
        """The same consumer for events delivered together: one batched upsert."""
        await self.apply_many(session, [event for event, _ in items])

    async def apply(self, session: AsyncSession, event: MovieSnapshot) -> None:
        """movie.created / movie.updated: the newest version wins; deleted stays deleted."""
        await self.apply_many(session, [event])

    async def apply_many(self, session: AsyncSession, events: Sequence[MovieSnapshot]) -> None:
        """`apply` for events delivered together: one batched upsert (per-row version guard,
        so a movie seen twice ends at its newest version whatever the order)."""
        for event in events:
            if not valid_id(event.movie_id):
                raise MalformedMessage(f"invalid movie id {event.movie_id[:80]!r}")
        if not events:
            return
        now = utcnow()
        dialect = dialect_name(session)
        if dialect == "postgresql" and len(events) > 1:
            await self._apply_arrays(session, events, now)
            return
        rows = [
            {
                "movie_id": event.movie_id,
                "deleted": False,
                "title": event.title,
                "poster": event.cover_image,
                "video_url": event.video_url,
                "duration": event.duration,
                "has_audio": event.has_audio,
                "category": event.category,
                "version": event.version,
                "updated_at": now,
            }
            for event in events
        ]
        await session.execute(self._apply_statement(dialect), rows[0] if len(rows) == 1 else rows)

    async def _apply_arrays(
        self, session: AsyncSession, events: Sequence[MovieSnapshot], now: datetime
    ) -> None:
        """PostgreSQL: the batch as one statement over arrays, one row per movie (an upsert
        cannot touch a row twice): the one applying them in order would leave, the newest
        version, the first of equal ones.

        The rows are locked in array order, so the arrays go in movie id order: two workers'
        batches over the same movies in their own event orders (A then B, B then A) each
        held one row and waited for the other's, and one died with `deadlock detected`."""
        newest: dict[str, MovieSnapshot] = {}
        for event in events:
            kept = newest.get(event.movie_id)
            if kept is None or kept.version < event.version:
                newest[event.movie_id] = event
        kept_events = [newest[movie_id] for movie_id in sorted(newest)]
        params: dict[str, Any] = {
            column: [getattr(event, field) for event in kept_events]
            for column, field, _ in _ARRAY_COLUMNS
        }
        params["now"] = now
        await session.execute(self._arrays_statement(), params)

    def _arrays_statement(self) -> Any:
        cached = self._statements.get("arrays")
        if cached is None:
            c = self.table.c
            rows = select(
                *(
                    func.unnest(bindparam(column, type_=postgresql.ARRAY(kind))).label(column)
                    for column, _, kind in _ARRAY_COLUMNS
                ),
                literal(False).label("deleted"),
                bindparam("now", type_=UTCDateTime).label("updated_at"),
            )
            stmt = postgresql.insert(self.table).from_select(
                [*(column for column, _, _ in _ARRAY_COLUMNS), "deleted", "updated_at"], rows
            )
            cached = stmt.on_conflict_do_update(
                index_elements=[c.movie_id],
                set_={k: stmt.excluded[k] for k in self._APPLIED},
                where=c.deleted.is_(False) & (c.version < stmt.excluded.version),
            )
            self._statements["arrays"] = cached
        return cached

    _APPLIED = (
        "title",
        "poster",
        "video_url",
        "duration",
        "has_audio",
        "category",
        "version",
        "updated_at",
    )

    def _apply_statement(self, dialect: str) -> Any:
        """The upsert of `apply`, built once per dialect: it runs for every movie event."""
        cached = self._statements.get(dialect)
        if cached is None:
            stmt = dialect_insert(dialect, self.table)
            current = self.table.c
            cached = stmt.on_conflict_do_update(
                index_elements=[current.movie_id],
                set_={k: stmt.excluded[k] for k in self._APPLIED},
                where=current.deleted.is_(False) & (current.version < stmt.excluded.version),
            )
            self._statements[dialect] = cached
        return cached

    async def remove(self, session: AsyncSession, event: MovieDeleted) -> None:
        """movie.deleted: tombstone the movie (call before deleting the rows that cite it)."""
        if not valid_id(event.movie_id):
            raise MalformedMessage(f"invalid movie id {event.movie_id[:80]!r}")
        await self.tombstones.bury(session, MOVIE, event.movie_id)
        stmt = insert(session, self.table).values(
            movie_id=event.movie_id,
            title=event.title,
            deleted=True,
            version=0.0,
            updated_at=utcnow(),
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[self.table.c.movie_id],
                set_={"deleted": True, "updated_at": stmt.excluded.updated_at},
            )
        )

    async def get(self, session: AsyncSession, movie_id: str) -> Movie | None:
        if not valid_id(movie_id):
            return None
        found = await self.get_many(session, [movie_id])
        return found.get(movie_id)

    async def get_many(self, session: AsyncSession, movie_ids: Iterable[str]) -> dict[str, Movie]:
        ids = sorted({m for m in movie_ids if valid_id(m)})
        if not ids:
            return {}
        statement = self._statements.get("get_many")
        if statement is None:  # built once (its construction cost ~100 µs a call)
            c = self.table.c
            statement = select(
                c.movie_id,
                c.title,
                c.poster,
                c.video_url,
                c.duration,
                c.has_audio,
                c.category,
                c.deleted,
                c.version,
            ).where(c.movie_id.in_(bindparam("ids", expanding=True)))
            self._statements["get_many"] = statement
        rows = await session.execute(statement, {"ids": ids})
        return {row.movie_id: Movie(*row) for row in rows}

    async def is_deleted(self, session: AsyncSession, movie_id: str) -> bool:
        movie = await self.get(session, movie_id)
        return movie is not None and movie.deleted

    async def lookup(self, session: AsyncSession, movie_id: str) -> Movie | MovieSnapshot:
        """Step one of a write, before any lock: the projected movie, or the movie service's
        answer when the projection has not caught up (404 unknown, 503 unreachable)."""
        if not valid_id(movie_id):
            raise NotFound(MOVIE_NOT_FOUND, code="movie_not_found")
        known = await self.get(session, movie_id)
        if known is not None:
            if known.deleted:
                raise NotFound(MOVIE_NOT_FOUND, code="movie_not_found")
            return known
        fetched = await self.client.fetch(movie_id)
        if fetched is None:
            raise NotFound(MOVIE_NOT_FOUND, code="movie_not_found")
        return fetched

    async def hold(
        self, session: AsyncSession, found: Movie | MovieSnapshot, exclusive: bool = False
    ) -> Movie:
        """Step two, after holding the user: hold the movie against its deletion saga,
        record a caught-up snapshot, and return the live movie (404 if it was deleted)."""
        movie_id = found.id if isinstance(found, Movie) else found.movie_id
        alive = await self.tombstones.guard(session, MOVIE, movie_id, exclusive)
        if alive and isinstance(found, MovieSnapshot):
            await self.apply(session, found)
        movie = await self.get(session, movie_id)
        if not alive or movie is None or movie.deleted:
            raise NotFound(MOVIE_NOT_FOUND, code="movie_not_found")
        return movie
