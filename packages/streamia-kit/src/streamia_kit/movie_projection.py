"""What favorites, ratings and comments know about movies without asking the movie service:
a projection built from `movie.*` events, tombstones for deleted movies and users that stop a
write racing a deletion saga, and the one-call catch-up client for a projection that lags."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import structlog
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    MetaData,
    String,
    Table,
    Text,
    false,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.auth import INVALID_TOKEN
from streamia_kit.breaker import CircuitBreaker
from streamia_kit.bus import MalformedMessage
from streamia_kit.db import UTCDateTime, utcnow
from streamia_kit.errors import NotFound, ServiceUnavailable, Unauthorized
from streamia_kit.events import (
    Envelope,
    MovieCreated,
    MovieDeleted,
    MovieSnapshot,
    MovieUpdated,
)

if TYPE_CHECKING:
    from streamia_kit.service import Service

log = structlog.get_logger("streamia.movie_projection")

USER = "user"
MOVIE = "movie"
MOVIE_NOT_FOUND = "Movie not found"
MOVIES_UNAVAILABLE = "Movie service unavailable"

# Ids are what our services mint (uuid hex) or the monolith's ObjectIds; anything else is
# refused before it reaches SQL or a URL.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


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
        Column("category", Text, nullable=True),
        Column("deleted", Boolean, nullable=False),
        Column("version", Float, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )
    tombstones = Table(
        "tombstones",
        metadata,
        Column("kind", String(16), primary_key=True),
        Column("subject_id", String(64), primary_key=True),
        Column("deleted_at", UTCDateTime, nullable=False),
    )
    return movies, tombstones


def _upsert(session: AsyncSession, table: Table) -> Any:
    return (postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert)(table)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def _lock_key(kind: str, subject_id: str) -> int:
    digest = hashlib.blake2b(f"{kind}:{subject_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Tombstones:
    """Deleted users and movies, and the lock that orders writes against their cleanup.

    A write about a subject first `hold`s it (shared) and then checks the tombstone; the
    deletion saga `bury`s it (exclusive) before deleting rows. Whichever comes second waits
    for the other's commit, so a write either lands before the cleanup (and is deleted by
    it) or sees the tombstone — never an orphan. Writers hold users before movies.
    """

    def __init__(self, table: Table) -> None:
        self.table = table

    async def hold(
        self, session: AsyncSession, kind: str, subject_id: str, exclusive: bool = False
    ) -> None:
        """Serialise this transaction with the deletion of one subject until it ends."""
        if _dialect(session) == "postgresql":
            lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
            await session.execute(select(lock(_lock_key(kind, subject_id))))
        else:
            # SQLite has one writer at a time and only takes the write lock at the first
            # write: a no-op write takes it now, so every read after it is current.
            await session.execute(update(self.table).where(false()).values(kind=self.table.c.kind))

    async def is_buried(self, session: AsyncSession, kind: str, subject_id: str) -> bool:
        found = await session.scalar(
            select(self.table.c.kind).where(
                self.table.c.kind == kind, self.table.c.subject_id == subject_id
            )
        )
        return found is not None

    async def guard(
        self, session: AsyncSession, kind: str, subject_id: str, exclusive: bool = False
    ) -> bool:
        """Hold the subject and report whether it is still alive."""
        await self.hold(session, kind, subject_id, exclusive)
        return not await self.is_buried(session, kind, subject_id)

    async def hold_user(self, session: AsyncSession, user_id: str, exclusive: bool = False) -> None:
        """Hold the caller for a write; an account deleted meanwhile gets 401."""
        if not await self.guard(session, USER, user_id, exclusive):
            raise Unauthorized(INVALID_TOKEN, code="account_deleted")

    async def bury(self, session: AsyncSession, kind: str, subject_id: str) -> None:
        """Remember a deleted subject; call before deleting its rows, in the same transaction."""
        if not valid_id(subject_id):
            raise MalformedMessage(f"invalid {kind} id {subject_id[:80]!r}")
        await self.hold(session, kind, subject_id, exclusive=True)
        await session.execute(
            _upsert(session, self.table)
            .values(kind=kind, subject_id=subject_id, deleted_at=utcnow())
            .on_conflict_do_nothing()
        )


@dataclass(frozen=True, slots=True)
class Movie:
    """One movie as the projection knows it."""

    id: str
    title: str
    poster: str | None
    video_url: str | None
    duration: float | None
    category: str | None
    deleted: bool
    version: float


class MovieClient:
    """`GET {movies_url}/api/movies/{id}` behind a circuit breaker and a short timeout."""

    def __init__(
        self,
        movies_url: str,
        timeout_seconds: float = 2.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base = movies_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # The seed's breaker policy: 50 % errors over 10 s (at least 5 calls), 30 s open.
        self.breaker = breaker or CircuitBreaker(
            "movies", error_threshold_percent=50.0, volume_threshold=5, reset_seconds=30.0
        )
        self._http: aiohttp.ClientSession | None = None

    def _unavailable(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            MOVIES_UNAVAILABLE,
            code="movies_unavailable",
            headers={"Retry-After": self.breaker.retry_after_header()},
        )

    async def fetch(self, movie_id: str) -> MovieSnapshot | None:
        """The movie as a snapshot, None when the movie service does not know it."""
        permit = self.breaker.acquire()
        if permit is None:
            raise self._unavailable()
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        url = f"{self.base}/api/movies/{quote(movie_id, safe='')}"
        try:
            async with self._http.get(url) as resp:
                if resp.status >= 500:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, resp.history, status=resp.status
                    )
                body = await resp.json(content_type=None) if resp.status == 200 else None
        except asyncio.CancelledError:
            self.breaker.release(permit)
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.breaker.record(permit, False)
            log.warning(
                "movie_lookup_failed", movie_id=movie_id, error=f"{type(exc).__name__}: {exc}"[:300]
            )
            raise self._unavailable() from exc
        self.breaker.record(permit, True)
        if body is None:
            return None
        return snapshot_from_api(body.get("data") if isinstance(body, dict) else None, movie_id)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def snapshot_from_api(data: Any, movie_id: str) -> MovieSnapshot | None:
    """API.md's `movie` (as the movie service answers it) as a projection snapshot."""
    if not isinstance(data, dict) or data.get("id", movie_id) != movie_id:
        return None
    version = 0.0
    if isinstance(data.get("updatedAt"), str):
        try:
            version = datetime.fromisoformat(data["updatedAt"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    duration = data.get("duration")
    return MovieSnapshot(
        movie_id=movie_id,
        title=str(data.get("title") or ""),
        cover_image=data.get("coverImage") if isinstance(data.get("coverImage"), str) else None,
        video_url=data.get("videoUrl") if isinstance(data.get("videoUrl"), str) else None,
        duration=float(duration) if isinstance(duration, int | float) else None,
        category=data.get("category") if isinstance(data.get("category"), str) else None,
        version=version,
    )


class MovieProjection:
    """The movies a service knows from events, with tombstones and one-call catch-up."""

    def __init__(self, table: Table, tombstones: Tombstones, client: MovieClient) -> None:
        self.table = table
        self.tombstones = tombstones
        self.client = client
        self._statements: dict[str, Any] = {}

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
        rows = [
            {
                "movie_id": event.movie_id,
                "deleted": False,
                "title": event.title,
                "poster": event.cover_image,
                "video_url": event.video_url,
                "duration": event.duration,
                "category": event.category,
                "version": event.version,
                "updated_at": now,
            }
            for event in events
        ]
        await session.execute(
            self._apply_statement(_dialect(session)), rows[0] if len(rows) == 1 else rows
        )

    def subscribe(self, service: Service) -> None:
        """Keep this projection from the service's `movie.created` and `movie.updated`
        queues; events delivered together are upserted in one batch."""

        async def one(session: AsyncSession, event: MovieSnapshot, _: Envelope) -> None:
            await self.apply(session, event)

        async def many(
            session: AsyncSession, items: Sequence[tuple[MovieSnapshot, Envelope]]
        ) -> None:
            await self.apply_many(session, [event for event, _ in items])

        service.consume(MovieCreated, one, many)
        service.consume(MovieUpdated, one, many)

    _APPLIED = ("title", "poster", "video_url", "duration", "category", "version", "updated_at")

    def _apply_statement(self, dialect: str) -> Any:
        """The upsert of `apply`, built once per dialect: it runs for every movie event."""
        cached = self._statements.get(dialect)
        if cached is None:
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            stmt = insert(self.table)
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
        stmt = _upsert(session, self.table).values(
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
        c = self.table.c
        rows = await session.execute(
            select(
                c.movie_id,
                c.title,
                c.poster,
                c.video_url,
                c.duration,
                c.category,
                c.deleted,
                c.version,
            ).where(c.movie_id.in_(ids))
        )
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
