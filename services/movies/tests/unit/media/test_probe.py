import asyncio
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from streamia_movies.media import probe as probe_module
from streamia_movies.media.probe import UnreadableMedia, container_name, read_media
from streamia_movies.media.prober import MediaProber, UnreadableVideo, run_module


async def test_probe_reads_duration_format_audio_and_size(sample_videos):
    result = await MediaProber().read(sample_videos["mp4"])

    assert result.duration == pytest.approx(2.0, abs=0.2)
    assert result.video_format == "mp4"
    assert result.has_audio is True
    assert (result.width, result.height) == (160, 120)
    assert result.poster is False


@pytest.mark.parametrize("fmt", ["mov", "mkv", "webm", "avi"])
async def test_probe_names_each_container(sample_videos, fmt):
    assert (await MediaProber().read(sample_videos[fmt])).video_format == fmt


async def test_a_video_without_sound_has_no_audio(sample_videos):
    assert (await MediaProber().read(sample_videos["silent_mp4"])).has_audio is False


async def test_a_file_that_is_not_a_video_is_refused_with_a_reason(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x20ftypisom" + b"not a video" * 100)
    poster = tmp_path / "poster.jpg"

    with pytest.raises(UnreadableVideo) as caught:
        await MediaProber().read(junk, poster)

    assert caught.value.status == 400 and caught.value.code == "unreadable_video"
    assert "Invalid data" in caught.value.details["reason"]


async def test_a_truncated_video_is_refused(sample_videos, tmp_path):
    data = sample_videos["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone

    with pytest.raises(UnreadableVideo):
        await MediaProber().read(cut, tmp_path / "poster.jpg")


async def test_the_poster_is_a_jpeg_at_most_640_pixels_wide(write_clip, tmp_path):
    wide = write_clip(tmp_path / "wide.mp4", seconds=1.0, size=(1280, 720))
    poster = tmp_path / "poster.jpg"

    result = await MediaProber().read(wide, poster)

    assert result.poster is True
    with Image.open(poster) as image:
        assert (image.format, image.size) == ("JPEG", (640, 360))


async def test_the_poster_is_the_frame_about_a_tenth_of_the_way_in(write_clip, tmp_path):
    # The clip's red channel is 23 × frame index: frame 10 (1.0 s of 10 s) is 230, frame 0 is 0.
    video = write_clip(tmp_path / "ten.mp4", seconds=10.0)
    poster = tmp_path / "poster.jpg"

    await MediaProber().read(video, poster)

    with Image.open(poster) as image:
        red = image.convert("RGB").getpixel((80, 60))
    assert isinstance(red, tuple) and abs(red[0] - 230) < 16


def test_a_picture_larger_than_the_limit_is_refused_before_decoding(
    sample_videos, monkeypatch, tmp_path
):
    monkeypatch.setattr(probe_module, "MAX_PIXELS", 100 * 100)

    with pytest.raises(UnreadableMedia, match="too large"):
        read_media(sample_videos["mp4"], tmp_path / "poster.jpg")


async def test_a_read_slower_than_the_limit_is_refused(sample_videos, tmp_path):
    started = time.monotonic()
    with pytest.raises(UnreadableVideo, match="longer than"):
        await MediaProber(timeout=0.01).read(sample_videos["mp4"], tmp_path / "poster.jpg")

    assert time.monotonic() - started < 5


def _running(marker: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


async def test_a_child_that_hangs_is_killed_at_the_timeout():
    marker = f"hang-{uuid.uuid4().hex}"
    script = f"import time; time.sleep(60)  # {marker}"

    with pytest.raises(TimeoutError):
        await run_module("timeit", ("-n", "1", script), 0.5)

    assert not _running(marker)


async def test_cancelling_a_read_kills_the_child():
    marker = f"cancel-{uuid.uuid4().hex}"
    script = f"import time; time.sleep(60)  # {marker}"
    task = asyncio.create_task(run_module("timeit", ("-n", "1", script), 30))
    for _ in range(500):
        if _running(marker):
            break
        await asyncio.sleep(0.01)
    assert _running(marker)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not _running(marker)


def test_container_names_follow_brand_and_codecs():
    assert container_name("mov,mp4,m4a,3gp,3g2,mj2", "isom", {"h264"}) == "mp4"
    assert container_name("mov,mp4,m4a,3gp,3g2,mj2", "qt  ", {"h264"}) == "mov"
    assert container_name("matroska,webm", None, {"vp9", "opus"}) == "webm"
    assert container_name("matroska,webm", None, {"h264", "aac"}) == "mkv"
    assert container_name("avi", None, {"mpeg4"}) == "avi"
    assert container_name("wav", None, {"pcm_s16le"}) is None
