import shutil
import subprocess
from pathlib import Path

import pytest


def make_video(
    path: Path, seconds: float = 2.0, audio: bool = True, args: tuple[str, ...] = ()
) -> Path:
    """A tiny generated clip: testsrc picture, optionally a sine tone."""
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size=160x120:rate=10:duration={seconds}",
    ]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    cmd += [*args, "-shortest", str(path)]
    subprocess.run(cmd, check=True, timeout=60)
    return path


@pytest.fixture(scope="session")
def sample_videos(tmp_path_factory):
    """One small clip per supported container (session-wide: ffmpeg is not free)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    d = tmp_path_factory.mktemp("videos")
    return {
        "mp4": make_video(d / "a.mp4", args=("-c:v", "libx264", "-c:a", "aac")),
        "mov": make_video(d / "a.mov", args=("-c:v", "mpeg4", "-c:a", "aac")),
        "mkv": make_video(d / "a.mkv", args=("-c:v", "mpeg4", "-c:a", "mp3")),
        "webm": make_video(d / "a.webm", args=("-c:v", "libvpx", "-c:a", "libvorbis")),
        "avi": make_video(d / "a.avi", args=("-c:v", "mpeg4", "-c:a", "mp3")),
        "silent_mp4": make_video(d / "silent.mp4", audio=False, args=("-c:v", "libx264")),
    }
