"""What a video is and a poster frame from it, read with PyAV (FFmpeg's libraries, no executable).

This module runs inside a child process (`python -m streamia_movies.media.probe VIDEO POSTER`,
started by `prober.MediaProber`), so it imports only PyAV, Pillow and the standard library.
"""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import av.container

POSTER_WIDTH = 640
POSTER_AT = 0.10  # fraction of the duration the poster frame is taken from
POSTER_QUALITY = 82
# A picture larger than 8K is refused before a frame is decoded: a few bytes of header can
# otherwise ask a decoder for gigabytes.
MAX_PIXELS = 7680 * 4320
# Frames decoded after the seek while looking for the poster's timestamp (keyframes are
# rarely further apart than this; a file that needs more gets the last frame decoded).
MAX_POSTER_FRAMES = 300

_WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})


class UnreadableMedia(Exception):
    """The file is not a video PyAV can read; `reason` says why, in words for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MediaInfo:
    """What the file holds; a field is None when the container does not say."""

    duration: float | None = None
    video_format: str | None = None
    has_audio: bool | None = None
    width: int | None = None
    height: int | None = None
    poster: bool = False


def container_name(format_name: str, major_brand: str | None, codecs: set[str]) -> str | None:
    """Map FFmpeg's demuxer name (and the brand / codecs) to mp4, mov, mkv, webm or avi."""
    names = set(format_name.split(","))
    if "mp4" in names or "mov" in names:
        return "mov" if (major_brand or "").strip() == "qt" else "mp4"
    if "matroska" in names or "webm" in names:
        return "webm" if codecs and codecs <= _WEBM_CODECS else "mkv"
    if "avi" in names:
        return "avi"
    return None


def _ffmpeg_reason(exc: av.FFmpegError) -> str:
    # The message without the path of our staging file.
    return str(exc.strerror or type(exc).__name__)


def read_media(video: Path, poster: Path | None = None) -> MediaInfo:
    """Probe `video`; with `poster`, also write a JPEG of a frame ~10 % in, 640 px wide at most."""
    try:
        with av.open(str(video), metadata_errors="ignore") as container:
            info = _facts(container)
            if poster is not None:
                _write_poster(container, poster, info.duration)
                info = MediaInfo(**{**asdict(info), "poster": True})
    except av.FFmpegError as exc:
        raise UnreadableMedia(f"not a readable video ({_ffmpeg_reason(exc)})") from exc
    return info


def _facts(container: av.container.InputContainer) -> MediaInfo:
    if not container.streams.video:
        raise UnreadableMedia("the file has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_PIXELS:
        raise UnreadableMedia(f"the picture is too large ({width}×{height})")
    duration: float | None = None
    if container.duration is not None and container.duration > 0:
        duration = round(container.duration / av.time_base, 3)
    elif stream.duration and stream.time_base:
        duration = round(float(stream.duration * stream.time_base), 3)
    codecs = {s.codec_context.name for s in container.streams if s.type in ("video", "audio")}
    return MediaInfo(
        duration=duration,
        video_format=container_name(
            container.format.name, container.metadata.get("major_brand"), codecs
        ),
        has_audio=bool(container.streams.audio),
        width=width or None,
        height=height or None,
    )


def _write_poster(
    container: av.container.InputContainer, dest: Path, duration: float | None
) -> None:
    stream = container.streams.video[0]
    target = (duration or 0.0) * POSTER_AT
    if target > 0:
        # To the keyframe before `target`; the frames up to it are decoded below.
        container.seek(int(target * av.time_base))
    chosen = None
    try:
        for count, frame in enumerate(container.decode(stream), 1):
            chosen = frame
            if frame.time is None or frame.time >= target or count >= MAX_POSTER_FRAMES:
                break
    except av.FFmpegError:
        if chosen is None:
            raise
    if chosen is None:
        raise UnreadableMedia("no picture could be decoded from the video")
    width = min(POSTER_WIDTH, chosen.width)
    height = max(2, round(chosen.height * width / chosen.width / 2) * 2)
    chosen.to_image(width=width, height=height).save(
        dest, "JPEG", quality=POSTER_QUALITY, optimize=True
    )


def main(argv: list[str]) -> int:
    """`VIDEO POSTER|- MEMORY_MB`: one JSON line on stdout, {"error": reason} when unreadable."""
    video, poster, memory_mb = Path(argv[0]), argv[1], int(argv[2])
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        info = read_media(video, None if poster == "-" else Path(poster))
    except UnreadableMedia as exc:
        print(json.dumps({"error": exc.reason}))
    except MemoryError:
        print(json.dumps({"error": f"reading the video needs more than {memory_mb} MB"}))
    else:
        print(json.dumps(asdict(info)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
