"""The rules of the catalogue. Never commits: the request or the consumer's unit of work does.

The movie cache (`cache.MovieCache`), the /explore totals and their warmer
(`totals.ExploreTotals`) and the media files (`media.service.MediaService`) are its parts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.config import absolute_url
from streamia_kit.db import on_commit, on_rollback, utcnow
from streamia_kit.errors import NotFound, ValidationFailed
from streamia_kit.events import (
    MediaRef,
    MovieCreated,
    MovieDeleted,
    MovieUpdated,
    PlaybackStarted,
    RatingEvent,
)
from streamia_kit.messaging import Outbox
from streamia_movies.media.service import MediaService, StoredVideo
from streamia_movies.media.storage import LocalFile, StoredMedia
from streamia_movies.media.subtitles import to_webvtt
from streamia_movies.media.uploads import StagedFile
from streamia_movies.movies import schemas
from streamia_movies.movies.cache import MovieCache
from streamia_movies.movies.models import Movie, Subtitle
from streamia_movies.movies.repository import MoviesRepository, Page
from streamia_movies.movies.search import fold, search_document
from streamia_movies.movies.totals import ExploreTotals, total

log = structlog.get_logger("streamia.movies")

MOVIE_NOT_FOUND = "Movie not found"


def _not_found() -> NotFound:
    return NotFound(MOVIE_NOT_FOUND, code="movie_not_found")


def _snapshot(movie: Movie) -> dict[str, Any]:
    return dict(
        movie_id=movie.id,
        title=movie.title,
        cover_image=movie.cover_image,
        video_url=movie.video_url,
        duration=movie.duration,
        has_audio=movie.has_audio,
        category=movie.category,
        version=movie.updated_at.timestamp(),
    )


class MoviesService:
    def __init__(
        self,
        media: MediaService,
        cache: MovieCache,
        totals: ExploreTotals,
        outbox: Outbox,
        public_base: str = "",
    ) -> None:
        self.media = media
        self.cache = cache
        self.totals = totals
        self.outbox = outbox
        self.public_base = public_base  # media URLs in representations are absolute on it

    @property
    def source(self) -> str:
        return self.media.store.provider

    # -- reads ----------------------------------------------------------------------------

    async def get_public(self, movie_id: str) -> dict[str, Any]:
        """The cached public representation; 404 for an unknown id."""
        value = await self.cache.get(movie_id)
        if value is None:
            raise _not_found()
        return value

    def _changed_after_commit(
        self, session: AsyncSession, movie_id: str | None, catalogue: bool = True
    ) -> None:
        """Once the transaction commits: drop the movie's cached copy and (a create, update
        or delete) the stale /explore totals."""
        if movie_id is not None:
            on_commit(session, lambda: self.cache.invalidate(movie_id))
        if catalogue:
            on_commit(session, self.totals.changed)

    async def get(self, session: AsyncSession, movie_id: str) -> Movie:
        movie = await MoviesRepository(session).get(movie_id)
        if movie is None:
            raise _not_found()
        return movie

    async def browse(self, session: AsyncSession, query: schemas.ExploreQuery) -> Page:
        """One page and the exact total. Totals are cached per folded search for the
        current catalogue version, so the count over a large match set runs once per
        catalogue change, not per request (and per search, not per category filter)."""
        repo = MoviesRepository(session)
        search = fold(query.search)
        version = await self.totals.version()
        # `category` is a literal, folded substring, as the monolith's regex (escaped): the
        # catalogue's category keys that contain it, read off the cached per-key totals.
        category_keys = None
        if query.category:
            every = (await self.totals.counts(repo, version, ""))["counts"]
            category_keys = sorted(k for k in every if fold(query.category) in k)
        self.totals.remember(search)
        totals = await self.totals.counts(repo, version, search)
        matched = total(totals["counts"], category_keys)
        scope = matched
        if search:  # how many rows the sort order walks over, to weigh the plans against
            every = (await self.totals.counts(repo, version, ""))["counts"]
            scope = total(every, category_keys)
        items = await repo.page_items(
            page=query.page,
            limit=query.limit,
            sort=query.sort,
            category_keys=category_keys,
            search=search,
            total=matched,
            scope=scope,
            match_ms=totals["ms"],
        )
        return Page(items, matched)

    async def subtitles(self, session: AsyncSession, movie_id: str) -> tuple[Movie, list[Subtitle]]:
        movie = await self.get(session, movie_id)
        return movie, await MoviesRepository(session).subtitles(movie_id)

    async def local_video(
        self, session: AsyncSession, movie_id: str
    ) -> tuple[Movie, LocalFile | None]:
        """The movie and, when its video is stored by a local store, the file to stream."""
        movie = await self.get(session, movie_id)
        # The file needs no connection: give it back before the disk (a thread hop, which
        # on a busy loop held it as long again as the query).
        await session.close()
        return movie, await self.media.open_video(movie.provider, movie.video_key)

    # -- writes ---------------------------------------------------------------------------

    def _new_movie(self, **values: Any) -> Movie:
        now = utcnow()
        movie = Movie(created_at=now, updated_at=now, **values)
        self._refresh_keys(movie)
        return movie

    @staticmethod
    def _refresh_keys(movie: Movie) -> None:
        movie.title_key = fold(movie.title)[:200]
        movie.category_key = fold(movie.category)[:100]
        movie.search_text = search_document(movie.title, movie.description)

    async def create_uploaded(
        self, session: AsyncSession, data: schemas.UploadIn, stored: StoredVideo
    ) -> Movie:
        movie = self._new_movie(
            id=stored.movie_id,
            title=data.title,
            description=data.description,
            category=data.category or None,
            provider=stored.video.provider,
            video_key=stored.video.key,
            poster_key=stored.poster.key if stored.poster else None,
            poster_provider=stored.poster.provider if stored.poster else None,
            video_url=self._video_url(stored),
            cover_image=stored.poster.url if stored.poster else None,
            video_format=stored.video_format,
            duration=stored.duration,
            has_audio=stored.has_audio,
            size_bytes=stored.video.size,
        )
        # The stored files belong to this row: gone again if it is never committed.
        on_rollback(session, lambda: self.media.delete_quietly(stored.media()))
        await MoviesRepository(session).add(movie)
        await self.outbox.add(session, MovieCreated(**_snapshot(movie)))
        self._changed_after_commit(session, None)
        return movie

    def _video_url(self, stored: StoredVideo) -> str:
        if stored.video.provider == "local":
            # Local files are played through the Range-capable stream endpoint.
            return f"/api/movies/{stored.movie_id}/stream"
        return stored.video.url

    async def create_external(self, session: AsyncSession, data: schemas.CreateMovieIn) -> Movie:
        movie = self._new_movie(
            title=data.title,
            description=data.description,
            category=data.category or None,
            provider="external",
            video_url=data.videoUrl,
            cover_image=data.coverImage,
            duration=data.duration,
            video_format=data.videoFormat,
            has_audio=data.hasAudio,
        )
        await MoviesRepository(session).add(movie)
        await self.outbox.add(session, MovieCreated(**_snapshot(movie)))
        self._changed_after_commit(session, None)
        return movie

    async def update(
        self, session: AsyncSession, movie_id: str, data: schemas.UpdateMovieIn
    ) -> Movie:
        repo = MoviesRepository(session)
        movie = await repo.get(movie_id, for_update=True)
        if movie is None:
            raise _not_found()
        self._changed_after_commit(session, movie_id)
        changes = data.changes()
        # A representation sent back unchanged carries the movie's own absolute URLs.
        for name, column in (("videoUrl", "video_url"), ("coverImage", "cover_image")):
            own = absolute_url(getattr(movie, column), self.public_base)
            if name in changes and changes[name] == own:
                del changes[name]
        if "videoUrl" in changes and movie.provider != "external":
            raise ValidationFailed(
                {"videoUrl": ["Only external movies can change their video URL"]}
            )
        columns = {
            "title": "title",
            "description": "description",
            "category": "category",
            "coverImage": "cover_image",
            "videoUrl": "video_url",
            "duration": "duration",
            "videoFormat": "video_format",
            "hasAudio": "has_audio",
        }
        if not changes:
            return movie
        for name, value in changes.items():
            if name in ("description", "category") and value == "":
                value = None
            setattr(movie, columns[name], value)
        self._refresh_keys(movie)
        movie.updated_at = utcnow()
        await repo.flush()
        await self.outbox.add(session, MovieUpdated(**_snapshot(movie)))
        return movie

    async def delete(self, session: AsyncSession, movie_id: str) -> Movie:
        """Remove the row now; the media files go in the `movie.deleted` saga step."""
        repo = MoviesRepository(session)
        movie = await repo.get(movie_id, for_update=True)
        if movie is None:
            raise _not_found()
        media: list[MediaRef] = []
        if movie.video_key:
            media.append(MediaRef(provider=movie.provider, key=movie.video_key, kind="video"))
        if movie.poster_key:
            poster_provider = movie.poster_provider or movie.provider
            media.append(MediaRef(provider=poster_provider, key=movie.poster_key, kind="poster"))
        media += [
            MediaRef(provider=s.provider, key=s.key, kind="subtitle") for s in movie.subtitles
        ]
        await self.outbox.add(
            session, MovieDeleted(movie_id=movie.id, title=movie.title, media=media)
        )
        await repo.delete(movie)
        self._changed_after_commit(session, movie_id)
        return movie

    async def replace_cover(
        self, session: AsyncSession, movie_id: str, cover: StoredMedia
    ) -> Movie:
        """Point the movie at a stored cover: the poster file it replaces is deleted once the
        transaction commits, the stored cover if it rolls back."""
        on_rollback(session, lambda: self.media.delete_quietly([cover]))
        repo = MoviesRepository(session)
        movie = await repo.get(movie_id, for_update=True)
        if movie is None:
            raise _not_found()
        if movie.poster_key:
            provider = movie.poster_provider or movie.provider
            replaced = StoredMedia(provider, movie.poster_key, movie.cover_image or "", 0, "poster")
            on_commit(session, lambda: self.media.delete_quietly([replaced]))
        movie.poster_key, movie.poster_provider = cover.key, cover.provider
        movie.cover_image = cover.url
        movie.updated_at = utcnow()
        await repo.flush()
        await self.outbox.add(session, MovieUpdated(**_snapshot(movie)))
        self._changed_after_commit(session, movie_id)
        return movie

    async def add_subtitle(
        self,
        session: AsyncSession,
        movie_id: str,
        data: schemas.SubtitleIn,
        staged: StagedFile | None,
    ) -> list[Subtitle]:
        """Convert and store a track, one per language; the file it replaces is deleted once
        the transaction commits, the new one if it rolls back. Returns the movie's tracks."""
        if staged is None:
            raise ValidationFailed({"subtitle": ["A subtitle file is required"]})
        repo = MoviesRepository(session)
        movie = await repo.get(movie_id, for_update=True)
        if movie is None:
            raise _not_found()
        raw = await asyncio.to_thread(staged.path.read_bytes)
        vtt = to_webvtt(raw, staged.filename)
        stored = await self.media.save_subtitle(movie_id, data.language, vtt.data)
        on_rollback(session, lambda: self.media.delete_quietly([stored]))
        existing = await repo.subtitle(movie_id, data.language)
        label = data.label or schemas.default_label(data.language)
        if existing is not None:
            replaced = StoredMedia(existing.provider, existing.key, existing.url, 0, "subtitle")
            on_commit(session, lambda: self.media.delete_quietly([replaced]))
            existing.label, existing.url, existing.key = label, stored.url, stored.key
            existing.provider, existing.updated_at = stored.provider, utcnow()
        else:
            await repo.add_subtitle(
                Subtitle(
                    movie_id=movie_id,
                    language=data.language,
                    label=label,
                    url=stored.url,
                    key=stored.key,
                    provider=stored.provider,
                )
            )
        movie.updated_at = utcnow()
        await repo.flush()
        self._changed_after_commit(session, movie_id, catalogue=False)
        return await repo.subtitles(movie_id)

    # -- events ---------------------------------------------------------------------------

    async def apply_rating(self, session: AsyncSession, event: RatingEvent) -> None:
        applied = await MoviesRepository(session).apply_rating(
            event.movie_id, event.summary.average, event.summary.count, event.version
        )
        if applied:
            self._changed_after_commit(session, event.movie_id, catalogue=False)

    async def apply_plays(self, session: AsyncSession, event: PlaybackStarted) -> None:
        if await MoviesRepository(session).apply_plays(event.movie_id, event.plays):
            self._changed_after_commit(session, event.movie_id, catalogue=False)
