"""Tombstones: deleted users and movies, and the lock that orders writes against their cleanup."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    false,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.auth import INVALID_TOKEN
from streamia_kit.bus import MalformedMessage
from streamia_kit.db import UTCDateTime, utcnow
from streamia_kit.errors import Unauthorized
from streamia_kit.repository import dialect_name, insert

USER = "user"
MOVIE = "movie"

# Ids are what our services mint (uuid hex) or the monolith's ObjectIds; anything else is
# refused before it reaches SQL or a URL.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def tombstones_table(metadata: MetaData) -> Table:
    """Add the `tombstones` table to a service's metadata."""
    return Table(
        "tombstones",
        metadata,
        Column("kind", String(16), primary_key=True),
        Column("subject_id", String(64), primary_key=True),
        Column("deleted_at", UTCDateTime, nullable=False),
    )


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
        # Built once: a statement built per call cost ~100 µs of SQLAlchemy (construction and
        # its cache key) on every write, several times a write.
        c = table.c
        self._find = select(c.kind).where(
            c.kind == bindparam("kind"), c.subject_id == bindparam("subject_id")
        )
        key = bindparam("key", type_=BigInteger)
        self._pg_hold = {
            False: select(func.pg_advisory_xact_lock_shared(key)),
            True: select(func.pg_advisory_xact_lock(key)),
        }
        # SQLite has one writer at a time and only takes the write lock at the first write:
        # a no-op write takes it now, so every read after it is current.
        self._sqlite_hold = update(table).where(false()).values(kind=c.kind)

    async def hold(
        self, session: AsyncSession, kind: str, subject_id: str, exclusive: bool = False
    ) -> None:
        """Serialise this transaction with the deletion of one subject until it ends."""
        if dialect_name(session) == "postgresql":
            await session.execute(self._pg_hold[exclusive], {"key": _lock_key(kind, subject_id)})
        else:
            await session.execute(self._sqlite_hold)

    async def is_buried(self, session: AsyncSession, kind: str, subject_id: str) -> bool:
        found = await session.scalar(self._find, {"kind": kind, "subject_id": subject_id})
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
            insert(session, self.table)
            .values(kind=kind, subject_id=subject_id, deleted_at=utcnow())
            .on_conflict_do_nothing()
        )
