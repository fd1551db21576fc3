"""The base every repository extends: the session it works in and the dialect's INSERT."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

Insert = postgresql.Insert | sqlite.Insert
M = TypeVar("M")


def dialect_name(session: AsyncSession) -> str:
    """`postgresql` or `sqlite`: the backend the session's engine talks to."""
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def dialect_insert(dialect: str, table: Any) -> Insert:
    """An INSERT with the dialect's `on_conflict_do_*` for `table` (a Table or mapped class)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def insert(session: AsyncSession, table: Any) -> Insert:
    """`dialect_insert` in the dialect of `session`."""
    return dialect_insert(dialect_name(session), table)


class Repository(Generic[M]):
    """SQL of one feature about rows of `M`, run in the caller's transaction (the boundary
    commits, never a repository)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return dialect_name(self.session)

    def insert(self, table: Any) -> Insert:
        """INSERT .. ON CONFLICT in this session's dialect (PostgreSQL or SQLite)."""
        return insert(self.session, table)

    async def add(self, instance: M) -> M:
        """Stage a new row and flush it, so constraint violations surface here."""
        self.session.add(instance)
        await self.session.flush()
        return instance

    async def flush(self) -> None:
        await self.session.flush()
