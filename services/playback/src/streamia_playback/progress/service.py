"""The rules of watch progress. Never commits: the boundary does."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_catalogue_projection import (
    MOVIE_NOT_FOUND,
    USER,
    MovieProjection,
    Tombstones,
    valid_id,
)
from streamia_kit.auth import Identity
from streamia_kit.db import Database, utcnow
from streamia_kit.errors import NotFound, StreamiaError
from streamia_kit.events import MovieDeleted, PlaybackFinished, PlaybackStarted
from streamia_kit.messaging import Outbox
from streamia_playback.metrics import PROGRESS_UPSERT_SECONDS, progress_writes
from streamia_playback.progress import schemas
from streamia_playback.progress.group_commit import BatchFailed, GroupCommit
from streamia_playback.progress.repository import ProgressRepository, State, Write
from streamia_playback.ratelimit import WriteLimiter

NO_PROGRESS = "No progress for this movie"
NOT_IN_HISTORY = "This movie is not in your history"

# A movie counts as finished at 90 % or within its last two minutes (the end credits). The
# two minutes count only past half-way: a 24-second clip is not finished when it starts.
FINISHED_SHARE = 0.9
FINISHED_TAIL_SECONDS = 120.0


def is_finished(position: float, duration: float) -> bool:
    in_tail = duration - position <= FINISHED_TAIL_SECONDS and position >= duration / 2
    return position >= duration * FINISHED_SHARE or in_tail


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row[Any]]
    total: int


class ProgressService:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        movies: MovieProjection,
        tombstones: Tombstones,
        limiter: WriteLimiter,
        hot_path: GroupCommit,
    ) -> None:
        self.db = db
        self.hot_path = hot_path
        self.outbox = outbox
        self.movies = movies
        self.tombstones = tombstones
        self.limiter = limiter

    async def record(self, identity: Identity, movie_id: str, data: schemas.ProgressIn) -> State:
        """Store a report (last write by client time wins) and return the stored state.

        Most reports advance a row that exists in the shared hot-path batch (no transaction
        of their own); the others open one here, committed before this returns."""
        if not valid_id(movie_id):
            raise NotFound(MOVIE_NOT_FOUND, code="movie_not_found")
        try:
            await self.limiter.hit(identity.id)
        except StreamiaError:
            progress_writes("rate_limited").inc()
            raise
        now = utcnow()
        write = Write(
            user_id=identity.id,
            movie_id=movie_id,
            position=data.position,
            duration=data.duration,
            finished=is_finished(data.position, data.duration),
            # A clock ahead of ours must not freeze the row against later reports.
            client_at=min(data.at, now) if data.at is not None else now,
            now=now,
        )
        started = time.perf_counter()
        outcome = "advanced"
        batch_failed = False
        try:
            stored = await self.hot_path.advance(write)
        except BatchFailed:
            stored, batch_failed = None, True
        if stored is None:
            async with self.db.transaction() as session:
                repo = ProgressRepository(session)
                if batch_failed:  # the hot path alone, in this transaction
                    stored = await repo.advance(write)
                if stored is None:
                    stored, outcome = await self._store(session, repo, write)
        PROGRESS_UPSERT_SECONDS.observe(time.perf_counter() - started)
        progress_writes(outcome).inc()
        return stored

    async def _store(
        self, session: AsyncSession, repo: ProgressRepository, write: Write
    ) -> tuple[State, str]:
        """The slow path: a first report, a finished state that changes, or a stale report.
        Holds the user and the movie against their deletion sagas (tombstones)."""
        found = await self.movies.lookup(session, write.movie_id)
        await self.tombstones.hold_user(session, write.user_id)
        await self.movies.hold(session, found)
        current = await repo.locked(write.user_id, write.movie_id)
        if current is None:
            inserted = await repo.start(write)
            if inserted is not None:
                plays = await repo.add_viewer(write.movie_id, write.user_id, write.now)
                if plays is None:
                    plays = await repo.plays(write.movie_id)
                await self.outbox.add(
                    session,
                    PlaybackStarted(user_id=write.user_id, movie_id=write.movie_id, plays=plays),
                )
                if write.finished:
                    await self._finished(session, write)
                return inserted, "started"
            current = await repo.locked(write.user_id, write.movie_id)
            assert current is not None  # a concurrent first report inserted it
        if current.client_at > write.client_at:
            return current, "stale"
        stored = await repo.overwrite(write)
        if write.finished and not current.finished:
            await self._finished(session, write)
        return stored, "stored"

    async def _finished(self, session: AsyncSession, write: Write) -> None:
        await self.outbox.add(
            session, PlaybackFinished(user_id=write.user_id, movie_id=write.movie_id)
        )

    async def get(self, session: AsyncSession, identity: Identity, movie_id: str) -> State:
        found = None
        if valid_id(movie_id):
            found = await ProgressRepository(session).get(identity.id, movie_id)
        if found is None:
            raise NotFound(NO_PROGRESS, code="progress_not_found")
        return found

    async def list(
        self,
        session: AsyncSession,
        identity: Identity,
        unfinished_only: bool,
        offset: int,
        limit: int,
    ) -> Page:
        """`/continue` (unfinished only) or `/history`, most recently watched first."""
        repo = ProgressRepository(session)
        rows, total = await repo.page_for_user(identity.id, unfinished_only, offset, limit)
        if total is None:  # an empty page: past the end, or nothing at all
            total = await repo.count_for_user(identity.id, unfinished_only) if offset else 0
        return Page(list(rows), total)

    async def forget(self, session: AsyncSession, identity: Identity, movie_id: str) -> None:
        if not valid_id(movie_id) or not await ProgressRepository(session).forget(
            identity.id, movie_id
        ):
            raise NotFound(NOT_IN_HISTORY, code="history_entry_not_found")

    async def forget_all(self, session: AsyncSession, identity: Identity) -> int:
        return await ProgressRepository(session).forget_all(identity.id)

    async def forget_user(self, session: AsyncSession, user_id: str) -> None:
        """user.deleted: tombstone first, so no report can slip in behind the cleanup."""
        await self.tombstones.bury(session, USER, user_id)
        await ProgressRepository(session).remove_for_user(user_id)

    async def forget_movie(self, session: AsyncSession, event: MovieDeleted) -> None:
        """movie.deleted: tombstone the movie, then remove everyone's progress of it."""
        await self.movies.remove(session, event)
        await ProgressRepository(session).remove_for_movie(event.movie_id)
