"""The rules of the catalogue. Never commits: the request or the consumer's unit of work does."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.cache import Cache, SingleFlight
from streamia_kit.config import absolute_url
from streamia_kit.db import Database, new_id, utcnow
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
from streamia_movies.media.formats import content_type_for, sniff_video
from streamia_movies.media.images import reencode_cover
from streamia_movies.media.prober import MediaProber
from streamia_movies.media.storage import Kind, LocalFile, MediaStore, StoredMedia
from streamia_movies.media.subtitles import to_webvtt
from streamia_movies.media.uploads import StagedFile
from streamia_movies.movies import schemas
from streamia_movies.movies.models import Movie, Subtitle
from streamia_movies.movies.repository import MoviesRepository, Page
from streamia_movies.movies.search import fold, search_document

log = structlog.get_logger("streamia.movies")

MOVIE_NOT_FOUND = "Movie not found"

# /explore totals: `<_TOTALS_KEY>:<catalogue version>:<hash of the folded search>` holds
# {"counts": {category_key: count}, "ms": counting time}; a new version (any create, update
# or delete) orphans them all. Rating changes move no total, so they keep the version.
_TOTALS_KEY = "movies:explore:totals"
_VERSION_KEY = "movies:catalogue:version"
_VERSION_TTL = 7 * 24 * 3600.0


def _total(totals: dict[str, int], category_keys: list[str] | None) -> int:
    if category_keys is None:
        return sum(totals.values())
    return sum(totals.get(key, 0) for key in category_keys)


def _not_found() -> NotFound:
    return NotFound(MOVIE_NOT_FOUND, code="movie_not_found")


@dataclass
class StoredVideo:
    """A video (and maybe its poster) already in the media store, waiting for its row."""

    movie_id: str
    video: StoredMedia
    video_format: str | None
    duration: float | None
    has_audio: bool | None
    poster: StoredMedia | None = None
    extra: list[StoredMedia] = field(default_factory=list)

    def media(self) -> list[StoredMedia]:
        return [self.video, *([self.poster] if self.poster else []), *self.extra]


def _snapshot(movie: Movie) -> dict[str, Any]:
    return dict(
        movie_id=movie.id,
        title=movie.title,
        cover_image=movie.cover_image,
        video_url=movie.video_url,
        duration=movie.duration,
        category=movie.category,
        version=movie.updated_at.timestamp(),
    )


class MoviesService:
    def __init__(
        self,
        store: MediaStore,
        stores: Mapping[str, MediaStore],
        prober: MediaProber,
        outbox: Outbox,
        cache: Cache,
        cache_ttl: float = 60.0,
        totals_ttl: float = 300.0,
        db: Database | None = None,
        warm_delay: float = 1.0,
        warm_searches: int = 32,
        public_base: str = "",
    ) -> None:
        self.store = store  # where new media goes
        self.public_base = public_base  # media URLs in representations are absolute on it
        self.stores = stores  # every provider this process can still reach, for reads/deletes
        self.prober = prober
        self.outbox = outbox
        self.cache = cache
        self.cache_ttl = cache_ttl
        self.totals_ttl = totals_ttl
        self._flight = SingleFlight()
        # Background recount of /explore totals (see `schedule_warm`); needs the database.
        self.db = db
        self.warm_delay = warm_delay
        self.warm_searches = warm_searches
        self._recent: OrderedDict[str, None] = OrderedDict()  # folded searches, newest last
        self._warm_task: asyncio.Task[None] | None = None
        self._warm_again = False

    @property
    def source(self) -> str:
        return self.store.provider

    # -- reads ----------------------------------------------------------------------------

    @staticmethod
    def cache_key(movie_id: str) -> str:
        return f"movies:movie:{movie_id}"

    async def get_cached(self, db: Database, movie_id: str) -> dict[str, Any]:
        """The public representation, cache-aside; concurrent misses load once."""
        if len(movie_id) > 64:
            raise _not_found()
        key = self.cache_key(movie_id)
        value = await self.cache.get(key)
        if value is None:
            value = await self._flight.do(key, lambda: self._fill(db, movie_id))
        if value is None:
            raise _not_found()
        return value

    async def _fill(self, db: Database, movie_id: str) -> dict[str, Any] | None:
        # A load that overlaps an invalidation may have read the old row; the generation
        # key (bumped by every invalidation) tells, and then the result is not cached.
        key = self.cache_key(movie_id)
        generation = await self.cache.get(key + ":gen")
        async with db.sessions() as session:
            found = await MoviesRepository(session).public(movie_id)
            value = schemas.movie_out(found[0], self.public_base, found[1]) if found else None
        # Cached under the movie's own id only: an alias's entry would outlive invalidations.
        fresh = await self.cache.get(key + ":gen") == generation
        if value is not None and value["id"] == movie_id and fresh:
            await self.cache.set(key, value, self.cache_ttl)
        return value

    async def invalidate(self, movie_id: str) -> None:
        key = self.cache_key(movie_id)
        await self.cache.set(key + ":gen", time.time_ns(), self.cache_ttl * 2)
        await self.cache.delete(key)

    def invalidate_after_commit(self, session: AsyncSession, movie_id: str) -> None:
        """Drop the cached copy once the surrounding transaction commits (consumers)."""
        loop = asyncio.get_running_loop()

        def _after_commit(_: Any) -> None:
            loop.create_task(self.invalidate(movie_id))

        sa_event.listen(session.sync_session, "after_commit", _after_commit, once=True)

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
        version = await self._catalogue_version()
        # `category` is a literal, folded substring, as the monolith's regex (escaped): the
        # catalogue's category keys that contain it, read off the cached per-key totals.
        category_keys = None
        if query.category:
            every = (await self._category_totals(repo, version, ""))["counts"]
            category_keys = sorted(k for k in every if fold(query.category) in k)
        if search and self.warm_searches > 0:
            self._recent[search] = None
            self._recent.move_to_end(search)
            if len(self._recent) > self.warm_searches:
                self._recent.popitem(last=False)
        totals = await self._category_totals(repo, version, search)
        total = _total(totals["counts"], category_keys)
        scope = total
        if search:  # how many rows the sort order walks over, to weigh the plans against
            every = (await self._category_totals(repo, version, ""))["counts"]
            scope = _total(every, category_keys)
        items = await repo.page_items(
            page=query.page,
            limit=query.limit,
            sort=query.sort,
            category_keys=category_keys,
            search=search,
            total=total,
            scope=scope,
            match_ms=totals["ms"],
        )
        return Page(items, total)

    async def _category_totals(
        self, repo: MoviesRepository, version: str, search: str
    ) -> dict[str, Any]:
        """{"counts": {category_key: count}, "ms": how long counting took}, cached."""
        digest = hashlib.sha256(search.encode()).hexdigest()[:32]
        key = f"{_TOTALS_KEY}:{version}:{digest}"
        cached = await self.cache.get(key)
        if cached is not None:
            return cached

        async def load() -> dict[str, Any]:
            started = time.perf_counter()
            counts = await repo.category_totals(search)
            # The time of the index pass that found the matches prices the plan that
            # fetches them all again (SQLite); the walk is priced per row.
            totals = {"counts": counts, "ms": (time.perf_counter() - started) * 1000}
            await self.cache.set(key, totals, self.totals_ttl)
            return totals

        return await self._flight.do(key, load)

    async def _catalogue_version(self) -> str:
        version = await self.cache.get(_VERSION_KEY)
        if version is None:  # first use, or expired/evicted: any fresh token will do
            version = new_id()
            await self.cache.set(_VERSION_KEY, version, _VERSION_TTL)
        return str(version)

    async def catalogue_changed(self) -> None:
        """After a committed create, update or delete: cached /explore totals are stale.

        Called once the transaction has committed (a count that read the old rows under
        the old version can then only be stored under that version, never read again)."""
        await self.cache.set(_VERSION_KEY, new_id(), _VERSION_TTL)
        self.schedule_warm()

    def schedule_warm(self, delay: float | None = None) -> None:
        """Count the totals of the current catalogue version in the background: the whole
        catalogue's (every list and category filter needs them) and the recent searches'.
        Changes arriving meanwhile are coalesced into one more pass."""
        if self.db is None:
            return
        if self._warm_task is not None and not self._warm_task.done():
            self._warm_again = True
            return
        wait = self.warm_delay if delay is None else delay
        self._warm_task = asyncio.create_task(self._warm_loop(wait), name="explore-totals-warm")

    async def _warm_loop(self, delay: float) -> None:
        while True:
            self._warm_again = False
            await asyncio.sleep(delay)
            try:
                await self.warm_totals()
            except Exception as exc:  # a cold count later is the only cost
                log.warning("explore_warm_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            if not self._warm_again:
                return
            delay = self.warm_delay

    async def warm_totals(self) -> int:
        """Count (or find cached) the totals of "" and of each recent search, newest first;
        stops early once the catalogue changes again. Returns how many it went through."""
        assert self.db is not None
        version = await self._catalogue_version()
        done = 0
        for search in ["", *reversed(self._recent)]:
            if await self._catalogue_version() != version:
                break
            async with self.db.sessions() as session:
                await self._category_totals(MoviesRepository(session), version, search)
            done += 1
        return done

    async def stop_warming(self) -> None:
        if self._warm_task is not None:
            self._warm_task.cancel()
            await asyncio.gather(self._warm_task, return_exceptions=True)
            self._warm_task = None

    async def subtitles(self, session: AsyncSession, movie_id: str) -> tuple[Movie, list[Subtitle]]:
        movie = await self.get(session, movie_id)
        return movie, await MoviesRepository(session).subtitles(movie_id)

    async def local_video(
        self, session: AsyncSession, movie_id: str
    ) -> tuple[Movie, LocalFile | None]:
        """The movie and, when its video is stored by a local store, the file to stream."""
        movie = await self.get(session, movie_id)
        store = self.stores.get(movie.provider)
        local = await store.open(movie.video_key) if store and movie.video_key else None
        return movie, local

    async def local_media(self, key: str) -> LocalFile | None:
        store = self.stores.get("local")
        return await store.open(key) if store else None

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

    async def save_cover(self, movie_id: str, cover: StagedFile) -> StoredMedia:
        """Re-encode an uploaded cover (see `images`) and store it under a fresh key."""
        jpeg = cover.path.with_name(cover.path.name + ".jpg")
        try:
            await asyncio.to_thread(reencode_cover, cover.path, jpeg)
            return await self.store.save_file(
                f"posters/{movie_id}-{new_id()[:8]}.jpg", jpeg, "poster", "image/jpeg"
            )
        finally:
            jpeg.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def stored_video(
        self, staged: StagedFile | None, cover: StagedFile | None = None
    ) -> AsyncIterator[StoredVideo]:
        """Probe a staged upload, move it and its poster (the uploaded cover, else a frame of
        the video) into the store; if the caller's block fails the stored files are deleted
        again, so no row means no media."""
        if staged is None:
            raise ValidationFailed({"video": ["A video file is required"]})
        movie_id = new_id()
        poster_path = staged.path.with_name(staged.path.name + ".jpg")
        stored: StoredVideo | None = None
        stored_cover = await self.save_cover(movie_id, cover) if cover is not None else None
        try:
            probe = await self.prober.read(staged.path, None if cover else poster_path)
            video_format = probe.video_format or sniff_video(staged.head)
            video = await self.store.save_file(
                f"videos/{movie_id}.{video_format or 'bin'}",
                staged.path,
                "video",
                content_type_for(video_format),
            )
            stored = StoredVideo(movie_id, video, video_format, probe.duration, probe.has_audio)
            stored.poster = stored_cover
            if probe.poster:
                stored.poster = await self.store.save_file(
                    f"posters/{movie_id}.jpg", poster_path, "poster", "image/jpeg"
                )
            yield stored
        except BaseException:
            if stored is not None:
                await self._delete_quietly(stored.media())
            elif stored_cover is not None:
                await self._delete_quietly([stored_cover])
            raise
        finally:
            poster_path.unlink(missing_ok=True)

    async def _delete_quietly(self, media: list[StoredMedia]) -> None:
        for item in media:
            try:
                await self.stores[item.provider].delete(item.key, item.kind)
            except Exception as exc:  # an orphan file is a leak, not a failed request
                log.warning("media_cleanup_failed", key=item.key, error=str(exc))

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
        await MoviesRepository(session).add(movie)
        await self.outbox.add(session, MovieCreated(**_snapshot(movie)))
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
        return movie

    async def update(
        self, session: AsyncSession, movie_id: str, data: schemas.UpdateMovieIn
    ) -> Movie:
        repo = MoviesRepository(session)
        movie = await repo.get(movie_id, for_update=True)
        if movie is None:
            raise _not_found()
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
        return movie

    async def replace_cover(
        self, session: AsyncSession, movie_id: str, cover: StoredMedia
    ) -> tuple[Movie, StoredMedia | None]:
        """Point the movie at a stored cover; returns it and the poster file it replaced."""
        repo = MoviesRepository(session)
        movie = await repo.get(movie_id, for_update=True)
        if movie is None:
            raise _not_found()
        replaced = None
        if movie.poster_key:
            provider = movie.poster_provider or movie.provider
            replaced = StoredMedia(provider, movie.poster_key, movie.cover_image or "", 0, "poster")
        movie.poster_key, movie.poster_provider = cover.key, cover.provider
        movie.cover_image = cover.url
        movie.updated_at = utcnow()
        await repo.flush()
        await self.outbox.add(session, MovieUpdated(**_snapshot(movie)))
        return movie, replaced

    async def add_subtitle(
        self,
        session: AsyncSession,
        movie_id: str,
        data: schemas.SubtitleIn,
        staged: StagedFile | None,
    ) -> tuple[list[Subtitle], StoredMedia | None]:
        """Convert and store a track; one per language. Returns the tracks and the replaced file."""
        if staged is None:
            raise ValidationFailed({"subtitle": ["A subtitle file is required"]})
        repo = MoviesRepository(session)
        movie = await repo.get(movie_id, for_update=True)
        if movie is None:
            raise _not_found()
        raw = await asyncio.to_thread(staged.path.read_bytes)
        vtt = to_webvtt(raw, staged.filename)
        # A fresh key per upload: the old file stays valid until this transaction commits.
        key = f"subtitles/{movie_id}/{data.language}-{new_id()[:8]}.vtt"
        stored = await self.store.save(key, _one(vtt.data), "subtitle", "text/vtt")
        try:
            existing = await repo.subtitle(movie_id, data.language)
            replaced = None
            label = data.label or schemas.default_label(data.language)
            if existing is not None:
                replaced = StoredMedia(existing.provider, existing.key, existing.url, 0, "subtitle")
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
            subtitles = await repo.subtitles(movie_id)
        except BaseException:
            await self._delete_quietly([stored])
            raise
        return subtitles, replaced

    async def discard(self, media: StoredMedia | None) -> None:
        """Best-effort removal of a file nothing points at any more."""
        if media is not None:
            await self._delete_quietly([media])

    # -- events ---------------------------------------------------------------------------

    async def apply_rating(self, session: AsyncSession, event: RatingEvent) -> None:
        applied = await MoviesRepository(session).apply_rating(
            event.movie_id, event.summary.average, event.summary.count, event.version
        )
        if applied:
            self.invalidate_after_commit(session, event.movie_id)

    async def apply_plays(self, session: AsyncSession, event: PlaybackStarted) -> None:
        if await MoviesRepository(session).apply_plays(event.movie_id, event.plays):
            self.invalidate_after_commit(session, event.movie_id)

    async def purge_media(self, event: MovieDeleted) -> None:
        """Saga step: delete a removed movie's files; raising makes the bus retry later."""
        for ref in event.media:
            if ref.provider == "external":
                continue
            store = self.stores.get(ref.provider)
            if store is None:
                raise RuntimeError(f"media provider {ref.provider!r} is not configured here")
            await store.delete(ref.key, _kind(ref.kind))
        log.info("movie_media_deleted", movie_id=event.movie_id, files=len(event.media))


def _kind(value: str) -> Kind:
    if value not in ("video", "subtitle", "poster"):
        raise ValueError(f"unknown media kind {value!r}")
    return value  # type: ignore[return-value]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
