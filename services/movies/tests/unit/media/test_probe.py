import asyncio
import os
import shutil
import time

import pytest
from structlog.testing import capture_logs

from streamia_movies.media import probe as probe_module
from streamia_movies.media.probe import MediaProber, container_name

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg not installed"
)


@needs_ffmpeg
async def test_probe_reads_duration_format_and_audio(sample_videos):
    result = await MediaProber().probe(sample_videos["mp4"])

    assert result.duration == pytest.approx(2.0, abs=0.2)
    assert result.video_format == "mp4"
    assert result.has_audio is True
    assert (result.width, result.height) == (160, 120)


@needs_ffmpeg
@pytest.mark.parametrize("fmt", ["mov", "mkv", "webm", "avi"])
async def test_probe_names_each_container(sample_videos, fmt):
    assert (await MediaProber().probe(sample_videos[fmt])).video_format == fmt


@needs_ffmpeg
async def test_a_video_without_sound_has_no_audio(sample_videos):
    assert (await MediaProber().probe(sample_videos["silent_mp4"])).has_audio is False


@needs_ffmpeg
async def test_a_file_that_is_not_a_video_probes_to_nulls(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)

    result = await MediaProber().probe(junk)

    assert (result.duration, result.video_format, result.has_audio) == (None, None, None)


@needs_ffmpeg
async def test_the_poster_is_a_jpeg_from_the_video(sample_videos, tmp_path):
    dest = tmp_path / "poster.jpg"

    ok = await MediaProber().poster(sample_videos["mp4"], dest, 2.0)

    assert ok
    assert dest.read_bytes()[:3] == b"\xff\xd8\xff"


@needs_ffmpeg
async def test_no_poster_file_is_left_when_ffmpeg_fails(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"x" * 1000)
    dest = tmp_path / "poster.jpg"

    assert await MediaProber().poster(junk, dest, None) is False
    assert not dest.exists()


async def test_without_ffmpeg_everything_is_null_and_one_warning_is_logged(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_module, "_warned_missing", False)
    prober = MediaProber(ffprobe="no-such-ffprobe-here", ffmpeg="no-such-ffmpeg-here")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\x00" * 100)

    with capture_logs() as logs:
        first = await prober.probe(video)
        await prober.probe(video)
        poster = await prober.poster(video, tmp_path / "p.jpg", 10.0)
        await MediaProber(ffprobe="still-missing").probe(video)

    assert (first.duration, first.video_format, first.has_audio) == (None, None, None)
    assert poster is False
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["ffmpeg_missing"]


async def test_a_hung_ffprobe_is_killed_at_the_timeout(tmp_path):
    hung = tmp_path / "ffprobe"
    pid_file = tmp_path / "pid"
    hung.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    hung.chmod(0o755)
    prober = MediaProber(ffprobe=str(hung), timeout=0.5)

    started = time.monotonic()
    result = await prober.probe(tmp_path / "v.mp4")

    assert time.monotonic() - started < 5
    assert result.duration is None
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_cancelling_a_probe_kills_the_child(tmp_path):
    hung = tmp_path / "ffprobe"
    pid_file = tmp_path / "pid"
    hung.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    hung.chmod(0o755)
    task = asyncio.create_task(MediaProber(ffprobe=str(hung), timeout=30).probe(tmp_path / "v"))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_container_names_follow_brand_and_codecs():
    assert container_name("mov,mp4,m4a,3gp,3g2,mj2", "isom", {"h264"}) == "mp4"
    assert container_name("mov,mp4,m4a,3gp,3g2,mj2", "qt  ", {"h264"}) == "mov"
    assert container_name("matroska,webm", None, {"vp9", "opus"}) == "webm"
    assert container_name("matroska,webm", None, {"h264", "aac"}) == "mkv"
    assert container_name("avi", None, {"mpeg4"}) == "avi"
    assert container_name("wav", None, {"pcm_s16le"}) is None
