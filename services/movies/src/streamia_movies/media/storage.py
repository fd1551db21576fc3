"""The media store port and its adapters: local disk (default) and Cloudinary."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, unquote, urlparse

import structlog

log = structlog.get_logger("streamia.movies.storage")

Kind = Literal["video", "subtitle", "poster"]

_COPY_CHUNK = 1024 * 1024
# How long the status route waits for Cloudinary's ping before calling it unusable.
_STATUS_TIMEOUT = 5.0


class MediaStoreError(Exception):
    """The store could not complete an operation (network, disk, remote API)."""


@dataclass(frozen=True)
class StoredMedia:
    """Where a saved file lives: the provider, its key there and the URL clients use."""

    provider: str
    key: str
    url: str
    size: int
    kind: Kind


@dataclass(frozen=True)
class LocalFile:
    """A stored file that this process can stream itself."""

    path: Path
    stat: os.stat_result


class MediaStore(Protocol):
    """Saves, finds and deletes media files; business code only sees this."""

    provider: str

    @property
    def staging_dir(self) -> Path:
        """Where uploads are spooled before `save_file`; on the store's own filesystem."""
        ...

    async def save_file(self, key: str, path: Path, kind: Kind, content_type: str) -> StoredMedia:
        """Move a finished local file (which the store now owns) under `key`."""
        ...

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], kind: Kind, content_type: str
    ) -> StoredMedia:
        """Write a stream of chunks under `key`, never holding it whole in memory."""
        ...

    async def open(self, key: str) -> LocalFile | None:
        """The local file behind `key`, or None when it is absent or stored remotely."""
        ...

    async def delete(self, key: str, kind: Kind) -> None:
        """Remove `key`; deleting what is already gone succeeds."""
        ...

    def url(self, key: str, kind: Kind) -> str:
        """The public URL of `key`."""
        ...

    async def problem(self) -> str | None:
        """None when the store can take media now, else why it cannot."""
        ...


def validate_key(key: str) -> PurePosixPath:
    """Keys are relative POSIX paths made of safe segments; nothing climbs out of the root."""
    path = PurePosixPath(key)
    if (
        not key
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in key.split("/"))
        or "\\" in key
        or "\x00" in key
    ):
        raise ValueError(f"invalid media key {key!r}")
    return path


async def _spool(chunks: AsyncIterable[bytes], directory: Path) -> tuple[Path, int]:
    """Copy chunks to a new temp file in `directory` (flushing in a thread); the file, its size."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=".incoming-")
    size = 0
    buffer = bytearray()
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= _COPY_CHUNK:
                    data, buffer = bytes(buffer), bytearray()
                    await asyncio.to_thread(out.write, data)
            if buffer:
                await asyncio.to_thread(out.write, bytes(buffer))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), size


class LocalMediaStore:
    """Files under one directory; writes land in a temp file that is renamed into place."""

    provider = "local"

    def __init__(self, root: Path, public_base: str = "/api/movies/media") -> None:
        self.root = root.resolve()
        self.public_base = public_base.rstrip("/")

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    async def problem(self) -> str | None:
        try:
            self.staging_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"Media directory unusable: {exc.strerror or exc}"
        if not os.access(self.staging_dir, os.W_OK):
            return "Media directory is not writable"
        return None

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"invalid media key {key!r}")
        return path

    async def save_file(self, key: str, path: Path, kind: Kind, content_type: str) -> StoredMedia:
        dest = self.path_for(key)

        def _move() -> int:
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size
            try:
                os.replace(path, dest)  # atomic on one filesystem: readers never see half a file
            except OSError:
                # Different filesystem: copy to a temp file beside the target, then rename.
                tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
                try:
                    with path.open("rb") as src, tmp.open("wb") as out:
                        while block := src.read(_COPY_CHUNK):
                            out.write(block)
                    os.replace(tmp, dest)
                finally:
                    tmp.unlink(missing_ok=True)
                path.unlink(missing_ok=True)
            return size

        size = await asyncio.to_thread(_move)
        return StoredMedia(self.provider, key, self.url(key, kind), size, kind)

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], kind: Kind, content_type: str
    ) -> StoredMedia:
        self.path_for(key)  # refuse a bad key before writing anything
        tmp, _ = await _spool(chunks, self.staging_dir)
        try:
            return await self.save_file(key, tmp, kind, content_type)
        finally:
            tmp.unlink(missing_ok=True)

    async def open(self, key: str) -> LocalFile | None:
        try:
            path = self.path_for(key)
            st = await asyncio.to_thread(os.stat, path)
        except (ValueError, FileNotFoundError, NotADirectoryError):
            return None
        return LocalFile(path, st) if os.path.isfile(path) else None

    async def delete(self, key: str, kind: Kind) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise MediaStoreError(f"could not delete {key}: {exc}") from exc
        with contextlib.suppress(OSError):  # tidy now-empty folders, never the root
            parent = path.parent
            while parent != self.root and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def url(self, key: str, kind: Kind) -> str:
        return f"{self.public_base}/{key}"


@dataclass(frozen=True)
class CloudinaryConfig:
    """The parts of a `cloudinary://key:secret@cloud?upload_prefix=…` URL the SDK needs."""

    cloud_name: str
    api_key: str
    api_secret: str
    options: dict[str, str]

    @classmethod
    def from_url(cls, url: str) -> CloudinaryConfig:
        parsed = urlparse(url)
        if parsed.scheme != "cloudinary" or not parsed.hostname:
            raise ValueError("CLOUDINARY_URL must look like cloudinary://key:secret@cloud_name")
        if not parsed.username or not parsed.password:
            raise ValueError("CLOUDINARY_URL must carry an api key and secret")
        return cls(
            cloud_name=parsed.hostname,
            api_key=unquote(parsed.username),
            api_secret=unquote(parsed.password),
            options=dict(parse_qsl(parsed.query)),
        )

    def sdk_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "cloud_name": self.cloud_name,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "secure": True,
        }
        opts.update(self.options)  # e.g. upload_prefix, signature_algorithm
        return opts


_RESOURCE_TYPES: dict[str, str] = {"video": "video", "poster": "image", "subtitle": "raw"}


class CloudinaryMediaStore:
    """Videos, posters and subtitle files on Cloudinary through its official (blocking) SDK."""

    provider = "cloudinary"

    def __init__(
        self,
        config: CloudinaryConfig,
        staging_dir: Path,
        folder: str = "streamia",
        chunk_size: int = 6 * 1024 * 1024,
        timeout: float = 120.0,
    ) -> None:
        self.config = config
        self._staging_dir = staging_dir
        self.folder = folder.strip("/")
        self.chunk_size = chunk_size  # Cloudinary's minimum chunk is 5 MB
        self.timeout = timeout

    @property
    def staging_dir(self) -> Path:
        return self._staging_dir

    def public_id(self, key: str, kind: Kind) -> str:
        """Raw files keep their extension in the public id; videos and images do not."""
        path = validate_key(key)
        stem = str(path) if kind == "subtitle" else str(path.with_suffix(""))
        return f"{self.folder}/{stem}" if self.folder else stem

    def _upload(self, key: str, path: Path, kind: Kind) -> dict[str, Any]:
        import cloudinary.uploader

        options = {
            **self.config.sdk_options(),
            "public_id": self.public_id(key, kind),
            "resource_type": _RESOURCE_TYPES[kind],
            "overwrite": True,
            "invalidate": True,
            "timeout": self.timeout,
        }
        if kind == "video":
            # Chunked: the SDK reads one chunk at a time, so a 2 GiB video never sits in memory.
            return cloudinary.uploader.upload_large(
                str(path), chunk_size=self.chunk_size, filename=path.name, **options
            )
        return cloudinary.uploader.upload(str(path), **options)

    async def save_file(self, key: str, path: Path, kind: Kind, content_type: str) -> StoredMedia:
        import cloudinary.exceptions

        try:
            size = path.stat().st_size
            result = await asyncio.to_thread(self._upload, key, path, kind)
        except (cloudinary.exceptions.Error, OSError, ValueError) as exc:
            raise MediaStoreError(f"Cloudinary upload failed: {exc}") from exc
        finally:
            path.unlink(missing_ok=True)
        url = result.get("secure_url") or result.get("url") or self.url(key, kind)
        return StoredMedia(self.provider, key, url, int(result.get("bytes") or size), kind)

    async def save(
        self, key: str, chunks: AsyncIterable[bytes], kind: Kind, content_type: str
    ) -> StoredMedia:
        validate_key(key)
        tmp, _ = await _spool(chunks, self.staging_dir)
        return await self.save_file(key, tmp, kind, content_type)

    async def open(self, key: str) -> LocalFile | None:
        return None  # served from Cloudinary's CDN, not by this service

    async def problem(self) -> str | None:
        import cloudinary.api

        try:
            await asyncio.to_thread(
                cloudinary.api.ping, timeout=_STATUS_TIMEOUT, **self.config.sdk_options()
            )
        except Exception as exc:  # any failure means "unusable now"; the reason is reported
            return f"Cloudinary unreachable: {type(exc).__name__}"
        return None

    def _destroy(self, key: str, kind: Kind) -> dict[str, Any]:
        import cloudinary.uploader

        return cloudinary.uploader.destroy(
            self.public_id(key, kind),
            resource_type=_RESOURCE_TYPES[kind],
            invalidate=True,
            timeout=self.timeout,
            **self.config.sdk_options(),
        )

    async def delete(self, key: str, kind: Kind) -> None:
        import cloudinary.exceptions

        try:
            result = await asyncio.to_thread(self._destroy, key, kind)
        except (cloudinary.exceptions.Error, OSError) as exc:
            raise MediaStoreError(f"Cloudinary delete failed: {exc}") from exc
        # "not found" means an earlier attempt already deleted it: the saga step is idempotent.
        if result.get("result") not in ("ok", "not found"):
            raise MediaStoreError(f"Cloudinary delete of {key} answered {result!r}")

    def url(self, key: str, kind: Kind) -> str:
        import cloudinary.utils

        suffix = PurePosixPath(key).suffix.lstrip(".")
        extra = {"format": suffix} if kind != "subtitle" and suffix else {}
        url, _ = cloudinary.utils.cloudinary_url(
            self.public_id(key, kind),
            resource_type=_RESOURCE_TYPES[kind],
            **extra,
            **self.config.sdk_options(),
        )
        return str(url)
