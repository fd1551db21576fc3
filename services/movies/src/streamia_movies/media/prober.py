"""Reads uploads in a child process with a time and memory limit; the event loop only waits.

Why a process per upload and not a thread: a hostile file can make a decoder spin or allocate
without bound, and a thread can be neither stopped nor capped. A child (`python -m
streamia_movies.media.probe`) is killed at the time limit, runs under RLIMIT_AS, and a crash
in FFmpeg's C code takes down only that child. It costs ~0.2 s of interpreter start per
upload (`bench/media.py` measures it against the in-process reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

import structlog

from streamia_kit.errors import BadRequest
from streamia_movies.media.probe import MediaInfo

log = structlog.get_logger("streamia.movies.prober")


class UnreadableVideo(BadRequest):
    code = "unreadable_video"


def _unreadable(reason: str) -> UnreadableVideo:
    return UnreadableVideo(f"The video could not be read: {reason}", details={"reason": reason})


class MediaProber:
    """Probe a video and write its poster frame, at most `concurrency` readers at a time."""

    def __init__(
        self, timeout: float = 60.0, memory_mb: int = 1024, concurrency: int | None = None
    ) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._slots = asyncio.Semaphore(concurrency or os.cpu_count() or 1)

    async def read(self, video: Path, poster: Path | None = None) -> MediaInfo:
        """What `video` holds (and its poster at `poster`); UnreadableVideo (400) when it
        is not a video, is hostile, or takes longer than the time limit. On failure a poster
        file may be half-written: the caller owns `poster` and removes it."""
        args = (str(video), str(poster) if poster else "-", str(self.memory_mb))
        async with self._slots:
            try:
                returncode, out, err = await run_module(
                    "streamia_movies.media.probe", args, self.timeout
                )
            except TimeoutError:
                log.warning("media_read_timeout", path=str(video), timeout=self.timeout)
                raise _unreadable(f"reading it took longer than {self.timeout:g} s") from None
        if returncode != 0:
            log.warning(
                "media_reader_failed",
                path=str(video),
                returncode=returncode,
                stderr=err.decode("utf-8", "replace")[-2000:],
            )
            raise _unreadable("the reader stopped on it (a damaged or hostile file)")
        result = json.loads(out)
        if "error" in result:
            raise _unreadable(result["error"])
        return MediaInfo(**result)


async def run_module(
    module: str, args: tuple[str, ...], time_limit: float
) -> tuple[int, bytes, bytes]:
    """`python -m module *args` in a child; (returncode, stdout, stderr). TimeoutError after
    `time_limit` seconds; on timeout or cancellation the child is killed, never left running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), time_limit)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
    return proc.returncode or 0, out, err
