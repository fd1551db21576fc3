"""ffprobe and ffmpeg as asyncio subprocesses: duration, container, audio, poster frame."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("streamia.movies.probe")

_warned_missing = False

_WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe found; every field is None when it could not tell."""

    duration: float | None = None
    video_format: str | None = None
    has_audio: bool | None = None
    width: int | None = None
    height: int | None = None


def _warn_missing(tool: str) -> None:
    """One warning per process, however many uploads follow."""
    global _warned_missing
    if not _warned_missing:
        _warned_missing = True
        log.warning(
            "ffmpeg_missing",
            tool=tool,
            hint="install the ffmpeg package (apt-get install ffmpeg) to get duration, "
            "format, audio detection and poster frames",
        )


def container_name(format_name: str, major_brand: str | None, codecs: set[str]) -> str | None:
    """Map ffprobe's `format_name` (and the brand / codecs) to mp4, mov, mkv, webm or avi."""
    names = set(format_name.split(","))
    if "mp4" in names or "mov" in names:
        return "mov" if (major_brand or "").strip() == "qt" else "mp4"
    if "matroska" in names or "webm" in names:
        return "webm" if codecs and codecs <= _WEBM_CODECS else "mkv"
    if "avi" in names:
        return "avi"
    return None


class MediaProber:
    """Runs ffprobe/ffmpeg; absent tools or failures give nulls, never an error."""

    def __init__(
        self, ffprobe: str = "ffprobe", ffmpeg: str = "ffmpeg", timeout: float = 30.0
    ) -> None:
        self.ffprobe = shutil.which(ffprobe)
        self.ffmpeg = shutil.which(ffmpeg)
        self.timeout = timeout

    async def _run(self, *argv: str) -> tuple[int, bytes] | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except FileNotFoundError:
            _warn_missing(argv[0])
            return None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            log.warning("ffmpeg_timeout", tool=argv[0], timeout=self.timeout)
            return None
        finally:
            # On timeout or cancellation the child must not outlive the request.
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await asyncio.shield(proc.wait())
        return proc.returncode or 0, out

    async def probe(self, path: Path) -> ProbeResult:
        """Duration in seconds, container name and whether there is an audio stream."""
        if self.ffprobe is None:
            _warn_missing("ffprobe")
            return ProbeResult()
        result = await self._run(
            self.ffprobe, "-v", "error", "-print_format", "json",
            "-show_format", "-show_streams", str(path),
        )  # fmt: skip
        if result is None or result[0] != 0:
            log.info("ffprobe_failed", path=str(path))
            return ProbeResult()
        try:
            info = json.loads(result[1])
        except ValueError:
            return ProbeResult()
        fmt = info.get("format") or {}
        streams = info.get("streams") or []
        video = next((s for s in streams if s.get("codec_type") == "video"), None)
        codecs = {
            str(s.get("codec_name")) for s in streams if s.get("codec_type") in ("video", "audio")
        }
        duration: float | None
        try:
            duration = round(float(fmt["duration"]), 3)
        except (KeyError, TypeError, ValueError):
            duration = None
        return ProbeResult(
            duration=duration,
            video_format=container_name(
                str(fmt.get("format_name", "")), (fmt.get("tags") or {}).get("major_brand"), codecs
            ),
            has_audio=any(s.get("codec_type") == "audio" for s in streams),
            width=video.get("width") if video else None,
            height=video.get("height") if video else None,
        )

    async def poster(self, video: Path, dest: Path, duration: float | None) -> bool:
        """Write a JPEG frame from about 10 % into the video; False when none could be made."""
        if self.ffmpeg is None:
            _warn_missing("ffmpeg")
            return False
        at = max(0.0, (duration or 0.0) * 0.10)
        result = await self._run(
            self.ffmpeg, "-nostdin", "-v", "error", "-y",
            "-ss", f"{at:.3f}", "-i", str(video),
            "-frames:v", "1", "-vf", "scale='min(640,iw)':-2", "-q:v", "4",
            "-f", "image2", "-c:v", "mjpeg", str(dest),
        )  # fmt: skip
        ok = result is not None and result[0] == 0 and dest.exists() and dest.stat().st_size > 0
        if not ok:
            dest.unlink(missing_ok=True)
        return ok
