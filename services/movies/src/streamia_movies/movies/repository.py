"""The only place the movies service talks SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_movies.movies.models import Movie, Subtitle
from streamia_movies.movies.search import fold

# Below three characters a trigram index cannot help; those queries scan the folded column.
_MIN_INDEXED = 3


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


class MoviesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        bind = self.session.bind
        return bind.dialect.name if bind is not None else "sqlite"

    async def get(self, movie_id: str, for_update: bool = False) -> Movie | None:
        query = select(Movie).where(Movie.id == movie_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def add(self, movie: Movie) -> Movie:
        self.session.add(movie)
        await self.session.flush()
        await self.session.refresh(movie, ["subtitles"])
        return movie

    async def delete(self, movie: Movie) -> None:
        await self.session.execute(delete(Subtitle).where(Subtitle.movie_id == movie.id))
        await self.session.execute(delete(Movie).where(Movie.id == movie.id))

    async def flush(self) -> None:
        await self.session.flush()

    def _search_clause(self, query: Select, search: str) -> Select:
        if len(search) >= _MIN_INDEXED and self._dialect == "sqlite":
            # FTS5 trigram index over the folded text (kept in sync by triggers).
            matches = text("SELECT rowid FROM movies_fts WHERE movies_fts MATCH :phrase").bindparams(
                phrase=_fts_phrase(search)
            )
            return query.where(Movie.seq.in_(matches.columns(literal_column("rowid"))))
        # PostgreSQL: a pg_trgm GIN index serves this LIKE; SQLite short queries scan.
        return query.where(Movie.search_text.like(_like_pattern(search), escape="\\"))

    async def page(
        self,
        *,
        page: int,
        limit: int,
        sort: str,
        category: str | None = None,
        search: str | None = None,
    ) -> Page:
        """One page of movies, filtered, sorted, and the total that matched."""
        query = select(Movie)
        if category:
            query = query.where(Movie.category_key == fold(category))
        folded = fold(search)
        if folded:
            query = self._search_clause(query, folded)
        total = await self.session.scalar(
            select(func.count()).select_from(query.order_by(None).subquery())
        )
        if sort == "title":
            order = (Movie.title_key.asc(), Movie.seq.asc())
        elif sort == "rating":
            order = (Movie.rating_average.desc(), Movie.rating_count.desc(), Movie.seq.desc())
        else:
            order = (Movie.created_at.desc(), Movie.seq.desc())
        rows = await self.session.scalars(
            query.order_by(*order).offset((page - 1) * limit).limit(limit)
        )
        return Page(list(rows.unique()), int(total or 0))

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

    async def apply_rating(self, movie_id: str, average: float, count: int, version: float) -> bool:
        """Store a rating summary unless a newer one is already there; True when applied."""
        result = await self.session.execute(
            update(Movie)
            .where(Movie.id == movie_id, Movie.rating_version <= version)
            .values(rating_average=average, rating_count=count, rating_version=version)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)
