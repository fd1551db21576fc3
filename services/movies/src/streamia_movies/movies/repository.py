"""The only place the movies service talks SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    Select,
    Table,
    bindparam,
    delete,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import noload

from streamia_kit.db import rowcount
from streamia_kit.repository import Repository
from streamia_movies.movies.models import Movie, Subtitle

# Below three characters a trigram index cannot help; those queries scan the folded column.
_MIN_INDEXED = 3
# SQLite's plan choice for /explore (see `page_items`): a walked row costs ~1.5 µs (filter
# included), a fetched and sorted FTS5 match about as much as two walked rows. A walk is
# always fine up to _MIN_WALK_ROWS and never chosen past _MAX_WALK_ROWS.
_ROW_MS = 0.0015
_FETCH_ROWS = 2
_MIN_WALK_ROWS = 2000
_MAX_WALK_ROWS = 40_000
# A bounded walk covers twice the rows it expects to visit, plus this many.
_WINDOW_SLACK = 500


_SUBTITLES = Subtitle.__table__
# `GET /:id`'s movie with its subtitles, one row per track (one row with nulls when none).
_PUBLIC = (
    select(
        Movie.__table__,
        _SUBTITLES.c.id.label("subtitle_id"),
        _SUBTITLES.c.language.label("subtitle_language"),
        _SUBTITLES.c.label.label("subtitle_label"),
        _SUBTITLES.c.url.label("subtitle_url"),
    )
    .outerjoin(_SUBTITLES, _SUBTITLES.c.movie_id == Movie.__table__.c.id)
    .where(Movie.__table__.c.id == bindparam("movie_id"))
    .order_by(_SUBTITLES.c.language)
)


@dataclass(frozen=True)
class Page:
    items: Sequence[Movie]
    total: int


def _like_pattern(folded: str) -> str:
    """A LIKE pattern matching `folded` literally: %, _ and the escape char are escaped."""
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_phrase(folded: str) -> str:
    """An FTS5 phrase: with the trigram tokenizer it matches the text as a literal substring."""
    return '"' + folded.replace('"', '""') + '"'


class MoviesRepository(Repository[Movie]):
    async def get(self, movie_id: str, for_update: bool = False) -> Movie | None:
        query = select(Movie).where(Movie.id == movie_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def public(self, movie_id: str) -> tuple[Any, list[Any]] | None:
        """What `GET /:id` shows, in one round trip and without the ORM (the cache-miss
        path): the movie's row and its subtitles' (objects with id, language, label, url)."""
        rows = (await self.session.execute(_PUBLIC, {"movie_id": movie_id})).all()
        if not rows:
            # An imported movie is also found by the id its media has at its provider (the
            # monolith's `cloudinaryPublicId`), which old clients may have stored.
            own = await self.session.scalar(
                select(Movie.id).where(Movie.external_id == movie_id).limit(1)
            )
            if own is None:
                return None
            rows = (await self.session.execute(_PUBLIC, {"movie_id": own})).all()
        subtitles = [
            SimpleNamespace(
                id=row.subtitle_id,
                language=row.subtitle_language,
                label=row.subtitle_label,
                url=row.subtitle_url,
            )
            for row in rows
            if row.subtitle_id is not None
        ]
        return rows[0], subtitles

    async def add(self, instance: Movie) -> Movie:
        await super().add(instance)
        await self.session.refresh(instance, ["subtitles"])
        return instance

    async def delete(self, movie: Movie) -> None:
        await self.session.execute(delete(Subtitle).where(Subtitle.movie_id == movie.id))
        await self.session.execute(delete(Movie).where(Movie.id == movie.id))

    def _like(self, search: str) -> Any:
        """Literal substring match on the folded text. PostgreSQL: served by the pg_trgm GIN
        index (>= 3 characters); SQLite: checked row by row (see `_fts_rowids`)."""
        return Movie.search_text.like(_like_pattern(search), escape="\\")

    def _scan(self, search: str) -> Any:
        """The same match, tested on each row walked: PostgreSQL's strpos() is one the
        trigram index cannot serve, so the walk is the plan it gets."""
        if self.dialect == "sqlite":
            return self._like(search)
        return func.strpos(Movie.search_text, search) > 0

    @staticmethod
    def _fts_rowids(search: str) -> Any:
        """SQLite: the rowids whose folded text contains `search`, from the FTS5 trigram index."""
        return (
            text("SELECT rowid FROM movies_fts WHERE movies_fts MATCH :phrase")
            .bindparams(phrase=_fts_phrase(search))
            .columns(literal_column("rowid"))
        )

    @staticmethod
    def _sort_columns(sort: str) -> tuple[Any, ...]:
        """The sort key, most significant first: ascending for title, descending otherwise."""
        if sort == "title":
            return (Movie.title_key, Movie.seq)
        if sort == "rating":
            return (Movie.rating_average, Movie.rating_count, Movie.seq)
        if sort == "popular":
            return (Movie.plays, Movie.seq)
        return (Movie.created_at, Movie.seq)

    @classmethod
    def _order(cls, sort: str) -> tuple[Any, ...]:
        columns = cls._sort_columns(sort)
        return tuple(c.asc() if sort == "title" else c.desc() for c in columns)

    async def category_totals(self, search: str) -> dict[str, int]:
        """How many movies match the folded `search` ("" = every movie), per `category_key`.

        One pass answers the total of every category filter and of none (their sum)."""
        indexed = len(search) >= _MIN_INDEXED
        if indexed and self.dialect == "sqlite":
            # The match set from FTS5, each rowid's category from the narrow covering index
            # (the planner would otherwise read every matching row of the wide table).
            rows: Sequence[Any] = (
                await self.session.execute(
                    text(
                        "SELECT m.category_key, count(*) FROM movies_fts AS f "
                        "JOIN movies AS m INDEXED BY ix_movies_seq_category ON m.seq = f.rowid "
                        "WHERE movies_fts MATCH :phrase GROUP BY m.category_key"
                    ),
                    {"phrase": _fts_phrase(search)},
                )
            ).all()
        else:
            query = select(Movie.category_key, func.count()).group_by(Movie.category_key)
            if search:
                query = query.where(self._like(search))
            if indexed:
                # PostgreSQL prices LIKE at one operator per row, so past ~40 % matches it
                # scans every row instead of rechecking only the trigram candidates; the
                # LIKE on each ~150-character text is the real cost, and the scan pays it
                # for all rows: 30-40 % slower (measured on 100,000 movies). This count
                # only, this transaction only.
                await self.session.execute(text("SET LOCAL enable_seqscan = off"))
            rows = (await self.session.execute(query)).all()
            if indexed:
                await self.session.execute(text("SET LOCAL enable_seqscan = on"))
        return {category: int(count) for category, count in rows}

    async def page_items(
        self,
        *,
        page: int,
        limit: int,
        sort: str,
        category_keys: list[str] | None,
        search: str,
        total: int,
        scope: int,
        match_ms: float = 0.0,
    ) -> list[Movie]:
        """One page of movies, filtered and sorted, given how many match (`total`, exact),
        how many rows the sort order walks over (`scope`: the category's or all) and what
        finding the matches through the search index cost (`match_ms`, when measured)."""
        offset = (page - 1) * limit
        wanted = min(limit, total - offset)
        if wanted <= 0:
            return []
        order = self._order(sort)
        in_category = [] if category_keys is None else [Movie.category_key.in_(category_keys)]
        if not search or len(search) < _MIN_INDEXED:
            # Walk the sort (or category + sort) index; short terms have no index to use.
            where = [*in_category, self._like(search)] if search else in_category
            return await self._rows(
                select(Movie).where(*where).order_by(*order).offset(offset).limit(limit)
            )
        # The plan is chosen here, by selectivity: SQLite cannot estimate an FTS5 match, and
        # PostgreSQL's guess for a LIKE '%...%' comes from a 100-entry histogram (it takes a
        # 1.7 % term for 10 rows and rechecks 23,000 trigram candidates). Walking the sort
        # order visits about (offset + limit) * scope / total rows to fill the page: cheap
        # when the term is common, hopeless when it is rare. The other plan repeats the index
        # pass (as costly as the counting one, `match_ms`: tens of ms when the term's
        # trigrams are all common) and fetches and sorts every match.
        walk = (offset + limit) * scope / total
        candidates = match_ms / _ROW_MS + _FETCH_ROWS * total
        if walk > min(_MAX_WALK_ROWS, max(_MIN_WALK_ROWS, candidates)):
            return await self._candidates(search, category_keys, order, offset, limit)
        plain = (
            select(Movie)
            .where(*in_category, self._scan(search))
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        )
        window = int(2 * walk) + _WINDOW_SLACK
        if window < scope:
            # The walk is bounded to a window of the sort order, twice the expected rows: it
            # stops at the page, or at the window's last row. Matches clustering past it
            # come back as a short page, and the index candidates answer instead, so an
            # uneven catalogue never turns this into a full scan.
            columns = self._sort_columns(sort)
            edge = (
                await self.session.execute(
                    select(*columns).where(*in_category).order_by(*order).offset(window).limit(1)
                )
            ).first()
            if edge is not None:
                key = tuple_(*columns)
                last = tuple_(*(literal(v, c.type) for c, v in zip(columns, edge, strict=True)))
                within = key <= last if sort == "title" else key >= last
                plain = plain.where(within)
        items = await self._rows(plain)
        if len(items) >= wanted:
            return items
        return await self._candidates(search, category_keys, order, offset, limit)

    async def _candidates(
        self,
        search: str,
        category_keys: list[str] | None,
        order: tuple[Any, ...],
        offset: int,
        limit: int,
    ) -> list[Movie]:
        """The match set from the search index (SQLite: FTS5 rowids; PostgreSQL: the
        pg_trgm GIN index), then filtered by category and sorted."""
        if self.dialect != "sqlite":
            query = select(Movie).where(self._like(search))
            if category_keys is not None:
                query = query.where(Movie.category_key.in_(category_keys))
        else:
            query = select(Movie).where(Movie.seq.in_(self._fts_rowids(search)))
            if category_keys is not None:
                # `|| ''` keeps the planner from driving this by the category index instead.
                query = query.where(Movie.category_key.concat("").in_(category_keys))
        return await self._rows(query.order_by(*order).offset(offset).limit(limit))

    async def _rows(self, query: Select) -> list[Movie]:
        return list((await self.session.scalars(query)).unique())

    async def subtitle(self, movie_id: str, language: str) -> Subtitle | None:
        return await self.session.scalar(
            select(Subtitle).where(Subtitle.movie_id == movie_id, Subtitle.language == language)
        )

    async def add_subtitle(self, subtitle: Subtitle) -> None:
        self.session.add(subtitle)
        await self.session.flush()

    async def subtitles(self, movie_id: str) -> list[Subtitle]:
        rows = await self.session.scalars(
            select(Subtitle).where(Subtitle.movie_id == movie_id).order_by(Subtitle.language)
        )
        return list(rows)

    async def every(self) -> Sequence[Movie]:
        """Every movie, without subtitles (bulk jobs: the import's projections)."""
        return (await self.session.scalars(select(Movie).options(noload(Movie.subtitles)))).all()

    async def apply_plays(self, movie_id: str, plays: int) -> bool:
        """Store a higher distinct-viewer count (it only grows, so late events lose)."""
        result = await self.session.execute(
            update(Movie)
            .where(Movie.id == movie_id, Movie.plays < plays)
            .values(plays=plays)
            .execution_options(synchronize_session=False)
        )
        return bool(rowcount(result))

    async def apply_rating(self, movie_id: str, average: float, count: int, version: float) -> bool:
        """Store a rating summary unless a newer one is already there; True when applied."""
        result = await self.session.execute(
            update(Movie)
            .where(Movie.id == movie_id, Movie.rating_version <= version)
            .values(rating_average=average, rating_count=count, rating_version=version)
            .execution_options(synchronize_session=False)
        )
        return bool(rowcount(result))

    async def rating_states(self) -> dict[str, tuple[float, int, float]]:
        """Every movie's stored rating summary: id -> (average, count, version)."""
        rows = await self.session.execute(
            select(Movie.id, Movie.rating_average, Movie.rating_count, Movie.rating_version)
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    async def apply_ratings(self, summaries: Sequence[tuple[str, float, int, float]]) -> None:
        """`apply_rating` for many (movie id, average, count, version) in one executemany,
        with the same guard per row (a newer summary already stored wins)."""
        if not summaries:
            return
        table = cast(Table, Movie.__table__)
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"), table.c.rating_version <= bindparam("b_version")
            )
            .values(
                rating_average=bindparam("b_average"),
                rating_count=bindparam("b_count"),
                rating_version=bindparam("b_version"),
            )
        )
        await self.session.execute(
            stmt,
            [
                {"b_id": movie_id, "b_average": average, "b_count": count, "b_version": version}
                for movie_id, average, count, version in sorted(summaries)
            ],
        )
