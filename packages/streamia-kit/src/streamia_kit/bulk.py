"""Batched writes for bulk loads (`streamia import-monolith`): a few statements per thousand
rows instead of one per row, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Dialect,
    FromClause,
    Table,
    TableClause,
    TextClause,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.repository import dialect_name, insert

# Rows per statement: well under both backends' bound-parameter limits for our tables.
CHUNK = 1000


class KnownMovie(Protocol):
    """A movie as a service's projection knows it (`streamia_catalogue_projection.Movie`)."""

    @property
    def deleted(self) -> bool: ...


async def existing(
    session: AsyncSession, column: ColumnElement[Any], values: Iterable[Any]
) -> set[Any]:
    """Which of `values` are already stored in `column`."""
    wanted = list(dict.fromkeys(values))
    found: set[Any] = set()
    if wanted and dialect_name(session) == "postgresql":
        # A load starts on an empty table that then grows by millions of rows; a plan made
        # once and cached for the prepared statement (a scan of the "tiny" table) was kept
        # as it grew, and each lookup read the whole table: 100,000 users took 150 s, most
        # of it here. Planned for each call, the lookup uses the index once that is cheaper.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.update(await session.scalars(select(column).where(column.in_(chunk))))
    return found


async def insert_new(
    session: AsyncSession, table: FromClause, rows: Sequence[Mapping[str, Any]], key: str = "id"
) -> set[Any]:
    """Insert `rows`, skipping any that conflicts with a stored row on any unique constraint;
    returns the `key` of each row inserted (the others were already there or clash)."""
    if not rows:
        return set()
    if dialect_name(session) == "postgresql" and isinstance(table, Table):
        arrays = _ArrayInsert.of(table, tuple(rows[0]), key, session)
        if arrays is not None:
            return await arrays.run(session, rows)
    # One statement with a list of parameter sets: SQLAlchemy compiles it once and sends it
    # as multi-row INSERTs ("insertmanyvalues"), RETURNING included; a literal multi-row
    # VALUES would be compiled again for every chunk, which costs more than the database.
    stmt = insert(session, cast(TableClause, table)).on_conflict_do_nothing()
    return set(await session.scalars(stmt.returning(table.c[key]), list(rows)))


class _ArrayInsert:
    """PostgreSQL: `INSERT .. SELECT FROM unnest(<one array per column>) ON CONFLICT DO
    NOTHING RETURNING key`, a single statement and a single round trip however many rows.

    insertmanyvalues sends one bound parameter per value, each through SQLAlchemy's
    per-parameter processing; here a column is one array parameter that asyncpg encodes in C,
    which takes the bulk load from Python-bound to database-bound (about 3x fewer CPU seconds
    a row). Only the columns' own bind processing (UTC datetimes) runs per value.
    """

    _built: dict[tuple[Table, tuple[str, ...], str], _ArrayInsert | None] = {}

    def __init__(
        self, statement: TextClause, columns: tuple[str, ...], processors: list[Any]
    ) -> None:
        self.statement = statement
        self.columns = columns
        self.processors = processors

    @classmethod
    def of(
        cls, table: Table, columns: tuple[str, ...], key: str, session: AsyncSession
    ) -> _ArrayInsert | None:
        """The statement for rows with these `columns`, built once; None when a column left
        out has a default only SQLAlchemy applies (the generic path fills it in)."""
        cache_key = (table, columns, key)
        if cache_key not in cls._built:
            assert session.bind is not None
            cls._built[cache_key] = cls._build(table, columns, key, session.bind.dialect)
        return cls._built[cache_key]

    @classmethod
    def _build(
        cls, table: Table, columns: tuple[str, ...], key: str, dialect: Dialect
    ) -> _ArrayInsert | None:
        for column in table.columns:
            if column.name not in columns and column.default is not None:
                if column.server_default is None:
                    return None
        quote = dialect.identifier_preparer.quote
        arrays = ", ".join(
            f"CAST(:c{i} AS {table.c[name].type.compile(dialect=dialect)}[])"
            for i, name in enumerate(columns)
        )
        names = ", ".join(quote(name) for name in columns)
        statement = text(
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
            f"SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING RETURNING {quote(key)}"
        )
        processors = [table.c[name].type.bind_processor(dialect) for name in columns]
        return cls(statement, columns, processors)

    async def run(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> set[Any]:
        params: dict[str, list[Any]] = {}
        for i, (name, process) in enumerate(zip(self.columns, self.processors, strict=True)):
            values = [row[name] for row in rows]
            params[f"c{i}"] = values if process is None else [process(v) for v in values]
        return set(await session.scalars(self.statement, params))


async def all_values(
    session: AsyncSession, *columns: ColumnElement[Any], where: ColumnElement[bool] | None = None
) -> list[Any]:
    """Every (matching) row's `columns`: ids already loaded, for reference checks."""
    query = select(*columns)
    if where is not None:
        query = query.where(where)
    return list((await session.execute(query)).all())


@dataclass
class Loaded:
    """What a bulk load did: rows written, and each refused row's id with the reason."""

    changed: int = 0
    rejects: list[tuple[str, str]] = field(default_factory=list)

    def reject(self, row_id: str, reason: str) -> None:
        self.rejects.append((row_id, reason))


def refusal(
    user_id: str | None,
    movie_id: str | None,
    users: Container[str],
    movies: Mapping[str, KnownMovie],
    buried_users: Container[str],
) -> str | None:
    """Why a favorite, rating or comment by `user_id` of `movie_id` cannot be loaded, if so:
    what the API refuses (an unknown or deleted movie, a deleted account) is refused here
    too, and a reference to a row that is not in the target database is dangling."""
    if user_id is None or user_id not in users:
        return "dangling user id"
    if user_id in buried_users:
        return "deleted user"
    movie = movies.get(movie_id) if movie_id is not None else None
    if movie is None:
        return "dangling movie id"
    if movie.deleted:
        return "deleted movie"
    return None
