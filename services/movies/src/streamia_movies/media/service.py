"""Media files of movies: staged uploads probed and moved into a store, covers, subtitles,
local files to stream, and the deletion saga step. Knows files, never rows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from streamia_kit.db import new_id
from streamia_kit.errors import ValidationFailed
from streamia_kit.events import MovieDeleted
from streamia_movies.media.formats import content_type_for, sniff_video
from streamia_movies.media.images import reencode_cover
from streamia_movies.media.prober import MediaProber
from streamia_movies.media.storage import Kind, LocalFile, MediaStore, StoredMedia
from streamia_movies.media.uploads import StagedFile

log = structlog.get_logger("streamia.movies.media")


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


class MediaService:
    def __init__(
        self, store: MediaStore, stores: Mapping[str, MediaStore], prober: MediaProber
    ) -> None:
        self.store = store  # where new media goes
        self.stores = stores  # every provider this process can still reach, for reads/deletes
        self.prober = prober

    @property
    def staging_dir(self) -> Path:
        return self.store.staging_dir

    async def open_video(self, provider: str, key: str | None) -> LocalFile | None:
        """The file to stream, when the video is kept by a store of this process's disk."""
        store = self.stores.get(provider)
        return await store.open(key) if store and key else None

    async def open_local(self, key: str) -> LocalFile | None:
        store = self.stores.get("local")
        return await store.open(key) if store else None

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

    async def save_subtitle(self, movie_id: str, language: str, vtt: bytes) -> StoredMedia:
        # A fresh key per upload: the old file stays valid until the new row commits.
        key = f"subtitles/{movie_id}/{language}-{new_id()[:8]}.vtt"
        return await self.store.save(key, _one(vtt), "subtitle", "text/vtt")

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
                await self.delete_quietly(stored.media())
            elif stored_cover is not None:
                await self.delete_quietly([stored_cover])
            raise
        finally:
            poster_path.unlink(missing_ok=True)

    async def delete_quietly(self, media: list[StoredMedia]) -> None:
        """Best-effort removal of files nothing points at any more."""
        for item in media:
            try:
                await self.stores[item.provider].delete(item.key, item.kind)
            except Exception as exc:  # an orphan file is a leak, not a failed request
                log.warning("media_cleanup_failed", key=item.key, error=str(exc))

    async def purge(self, event: MovieDeleted) -> None:
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
