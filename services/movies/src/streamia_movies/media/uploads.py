"""Multipart uploads streamed from the ASGI receive channel to staging files on disk.

Nothing holds a whole file: python-multipart's push parser is fed each body chunk as it
arrives, file parts are appended to a temp file (written from a thread in ~1 MiB batches),
and limits are enforced while the bytes flow, so a 2 GiB video costs a few MB of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from streamia_kit.errors import BadRequest, PayloadTooLarge, StreamiaError
from streamia_movies.media.formats import SNIFF_BYTES, VIDEO_EXTENSIONS, sniff_video

DEFAULT_MAX_VIDEO_BYTES = 2 * 1024**3
DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0
_FLUSH_BYTES = 1024 * 1024
_FORM_OVERHEAD = 1024 * 1024  # room for boundaries and the small text fields


class InvalidUpload(BadRequest):
    code = "invalid_upload"


class UploadStalled(StreamiaError):
    """The client stopped sending mid-body: its connection and staging file are let go."""

    status, code = 408, "upload_timeout"


class UnsupportedVideo(BadRequest):
    code = "unsupported_video_format"


def human_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


# Called once with (filename, first bytes) before the rest of a file is accepted.
HeadCheck = Callable[[str, bytes], None]


@dataclass
class FileRule:
    """What a file field may hold: a size limit and an optional check of its first bytes."""

    max_bytes: int
    check: HeadCheck | None = None
    too_large: str = "File too large"


@dataclass
class StagedFile:
    """A file part spooled to disk; whoever takes `path` (e.g. a media store) owns it."""

    field: str
    filename: str
    content_type: str | None
    path: Path
    size: int = 0
    head: bytes = b""


@dataclass
class MultipartForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, StagedFile] = field(default_factory=dict)

    def cleanup(self) -> None:
        """Remove any staged file nobody took."""
        for staged in self.files.values():
            staged.path.unlink(missing_ok=True)


def check_video(filename: str, head: bytes) -> None:
    """Refuse anything that is not an mp4, mov, mkv, webm or avi, by its bytes and its name."""
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    allowed = "Only mp4, mov, mkv, webm and avi videos are allowed"
    if suffix and suffix not in VIDEO_EXTENSIONS:
        raise UnsupportedVideo(allowed)
    if sniff_video(head) is None:
        raise UnsupportedVideo(allowed, details={"reason": "content is not a supported video"})


class _Part:
    def __init__(self) -> None:
        self.header_field = bytearray()
        self.header_value = bytearray()
        # Raw bytes: a header value is not decoded until its parameters are split out.
        self.headers: dict[str, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.value = bytearray()
        self.staged: StagedFile | None = None
        self.out: BinaryIO | None = None
        self.pending = bytearray()
        self.checked = False
        self.ignored = False


class _Receiver:
    """Drives the push parser; callbacks only record, the async loop does the I/O."""

    def __init__(
        self,
        staging_dir: Path,
        files: dict[str, FileRule],
        max_field_bytes: int,
        max_fields: int,
    ) -> None:
        self.staging_dir = staging_dir
        self.rules = files
        self.max_field_bytes = max_field_bytes
        self.max_fields = max_fields
        self.form = MultipartForm()
        self.part: _Part | None = None
        self.finished: list[_Part] = []
        self.ended = False

    # -- parser callbacks (synchronous, cheap) ---------------------------------------------

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        assert self.part is not None
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        assert self.part is not None
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        part = self.part
        assert part is not None
        part.headers[part.header_field.decode("latin-1").lower()] = bytes(part.header_value)
        part.header_field.clear()
        part.header_value.clear()

    def on_headers_finished(self) -> None:
        part = self.part
        assert part is not None
        # Parameters are split on the raw bytes, then decoded as UTF-8 (what browsers send):
        # given a str, parse_options_header would encode it as latin-1 and fail on the rest.
        _, options = parse_options_header(part.headers.get("content-disposition", b""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            part.filename = PurePath(filename.decode("utf-8", "replace").replace("\\", "/")).name
            rule = self.rules.get(part.name)
            if rule is None:
                part.ignored = True  # a file nobody asked for: read past it, keep nothing
            elif part.name in self.form.files:
                raise InvalidUpload(f"Only one '{part.name}' file is allowed")
            else:
                self.staging_dir.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=self.staging_dir, prefix=".upload-")
                part.out = os.fdopen(fd, "wb")
                content_type = part.headers.get("content-type")
                part.staged = StagedFile(
                    part.name,
                    part.filename,
                    None if content_type is None else content_type.decode("utf-8", "replace"),
                    Path(name),
                )
                self.form.files[part.name] = part.staged
        elif len(self.form.fields) >= self.max_fields:
            raise InvalidUpload("Too many form fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        assert part is not None
        if part.ignored:
            return
        chunk = data[start:end]
        if part.staged is None:
            part.value += chunk
            if len(part.value) > self.max_field_bytes:
                raise InvalidUpload(f"Form field '{part.name}' is too long")
            return
        staged = part.staged
        rule = self.rules[part.name]
        staged.size += len(chunk)
        if staged.size > rule.max_bytes:
            raise PayloadTooLarge(rule.too_large, details={"maxBytes": rule.max_bytes})
        if len(staged.head) < SNIFF_BYTES:
            staged.head += chunk[: SNIFF_BYTES - len(staged.head)]
        part.pending += chunk

    def on_part_end(self) -> None:
        assert self.part is not None
        self.finished.append(self.part)
        self.part = None

    def on_end(self) -> None:
        self.ended = True

    # -- async side ---------------------------------------------------------------------

    async def _flush(self, part: _Part, final: bool) -> None:
        staged = part.staged
        if staged is None or part.out is None:
            return
        rule = self.rules[part.name]
        if not part.checked and (final or len(staged.head) >= SNIFF_BYTES):
            part.checked = True
            if rule.check is not None:
                rule.check(staged.filename, staged.head)
        if part.pending and (final or len(part.pending) >= _FLUSH_BYTES):
            data, part.pending = bytes(part.pending), bytearray()
            await asyncio.to_thread(part.out.write, data)
        if final:
            out, part.out = part.out, None
            await asyncio.to_thread(out.close)

    async def after_write(self) -> None:
        if self.part is not None:
            await self._flush(self.part, final=False)
        for part in self.finished:
            if part.staged is not None:
                await self._flush(part, final=True)
            elif not part.ignored and part.filename is None and part.name:
                self.form.fields[part.name] = part.value.decode("utf-8", "replace")
        self.finished.clear()

    async def abort(self) -> None:
        for part in [self.part, *self.finished]:
            if part is not None and part.out is not None:
                with contextlib.suppress(OSError):
                    part.out.close()
        self.form.cleanup()


async def receive_multipart(
    request: Request,
    staging_dir: Path,
    files: dict[str, FileRule],
    *,
    max_field_bytes: int = 64 * 1024,
    max_fields: int = 32,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
) -> MultipartForm:
    """Parse a multipart/form-data body as it streams in; file parts land in `staging_dir`.

    A body that sends nothing for `idle_timeout` seconds is refused with 408 (`UploadStalled`)
    and its files removed: a stalled client would hold them and the connection for good."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidUpload("Expected a multipart/form-data body")
    body_limit = max((rule.max_bytes for rule in files.values()), default=0) + _FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        # Refuse before reading a byte; the tightest rule names the limit.
        rule = max(files.values(), key=lambda r: r.max_bytes)
        raise PayloadTooLarge(rule.too_large, details={"maxBytes": rule.max_bytes})

    receiver = _Receiver(staging_dir, files, max_field_bytes, max_fields)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
            "on_end": receiver.on_end,
        },
    )
    received = 0
    try:
        async for chunk in _unless_idle(request.stream(), idle_timeout):
            if chunk:
                received += len(chunk)
                if received > body_limit:  # a chunked body, or bytes in parts nobody wanted
                    rule = max(files.values(), key=lambda r: r.max_bytes)
                    raise PayloadTooLarge(rule.too_large, details={"maxBytes": rule.max_bytes})
                parser.write(chunk)
                await receiver.after_write()
        parser.finalize()
        await receiver.after_write()
        if not receiver.ended:
            raise InvalidUpload("The multipart body ended early")
    except MultipartParseError as exc:
        await receiver.abort()
        raise InvalidUpload("Malformed multipart body") from exc
    except BaseException:  # ClientDisconnect, limits, cancellation: leave nothing behind
        await receiver.abort()
        raise
    return receiver.form


async def _unless_idle(chunks: AsyncIterator[bytes], idle_timeout: float) -> AsyncIterator[bytes]:
    """`chunks`, raising `UploadStalled` when the next one takes longer than `idle_timeout`."""
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadStalled(
                f"The upload stalled: nothing received for {idle_timeout:g} s",
                details={"idleTimeoutSeconds": idle_timeout},
            ) from None
        yield chunk


def video_rule(max_bytes: int = DEFAULT_MAX_VIDEO_BYTES) -> FileRule:
    """The `video` field: up to `max_bytes`, and it must look like a supported container."""
    return FileRule(
        max_bytes, check_video, f"Video exceeds the maximum size of {human_size(max_bytes)}"
    )
