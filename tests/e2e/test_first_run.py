"""A newcomer's first run: a fresh clone, the README's first command, no ffmpeg on the PATH."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from streamia import ALL_SERVICES
from streamia_movies.demo import DEMO_MOVIES

ROOT = Path(__file__).resolve().parents[2]
# Every server `up` starts gets a free port (playback was missing: with another `up` running on
# the default ports, the clone's playback could not bind 3007 and the test failed).
SERVICES = ALL_SERVICES
# Creating the clone's .venv (pip installs uv, uv syncs from its warm cache) and generating
# the catalogue; both are far below this on an idle two-core machine.
DEADLINE = 210.0
CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)", re.M)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _path_without_ffmpeg() -> str:
    return os.pathsep.join(
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not any((Path(d) / name).exists() for name in ("ffmpeg", "ffprobe"))
    )


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _catalogue(client: httpx.Client) -> list[dict]:
    """The demo movies once every one has both subtitle tracks; [] until then."""
    try:
        body = client.get("/api/movies", params={"limit": 100}).json()
    except (httpx.HTTPError, ValueError):
        return []
    movies = body.get("data") or []
    done = len(movies) == len(DEMO_MOVIES) and all(len(m["subtitles"]) == 2 for m in movies)
    return movies if done else []


def test_a_fresh_clone_started_with_the_readme_command_serves_a_playable_demo(tmp_path):
    repo = tmp_path / "streamia"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True, timeout=60)
    path = _path_without_ffmpeg()
    assert shutil.which("ffmpeg", path=path) is None
    python = shutil.which("python3", path=path) or sys.executable
    ports = {name: _free_port() for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMIA_", "VIRTUAL_ENV"))}
    env |= {"PATH": path, "STREAMIA_LOG_LEVEL": "WARNING"}
    env |= {f"STREAMIA_{name.upper()}_URL": f"http://127.0.0.1:{p}" for name, p in ports.items()}
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [python, "run.py", "up"],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + DEADLINE
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        with httpx.Client(base_url=gateway, timeout=10.0) as client:
            movies: list[dict] = []
            while not movies:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(1.0)
                movies = _catalogue(client)

            assert {m["title"] for m in movies} == {m.title for m in DEMO_MOVIES}
            for movie in movies:
                video = client.get(movie["videoUrl"], headers={"Range": "bytes=0-"})
                assert video.status_code == 206, movie["title"]
                assert video.content[4:8] == b"ftyp"
                assert movie["duration"] > 15 and movie["hasAudio"] is True
                poster = client.get(movie["coverImage"])
                with Image.open(io.BytesIO(poster.content)) as image:
                    image.load()  # a real picture, decoded to the last byte
                    assert image.width == 640
                for track in movie["subtitles"]:
                    vtt = client.get(track["url"]).text
                    assert vtt.startswith("WEBVTT")
                    spans = [(_seconds(*c[:4]), _seconds(*c[4:])) for c in CUE.findall(vtt)]
                    assert spans and all(0 <= a < b <= movie["duration"] for a, b in spans)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
