from __future__ import annotations

import math
from array import array
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import av
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.testing import Stack, serve_app
from streamia_movies.app import create_app
from streamia_movies.config import MoviesSettings


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


@pytest.fixture
def tokens(signing_key):
    """Bearer headers: tokens("admin") / tokens("user")."""

    def make(role: str = "user") -> dict[str, str]:
        token = signing_key.issue(f"{role}-id", f"{role}@example.com", role, 3600)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def settings_factory(stack: Stack, tmp_path: Path):
    def make(**extra: object) -> MoviesSettings:
        # Media URLs are absolute on the public URL: the test client's own base here.
        extra.setdefault("public_url", "http://testserver")
        return MoviesSettings(**stack.overrides(media_dir=tmp_path / "media", **extra))

    return make


@pytest.fixture
def app_factory(settings_factory, signing_key):
    def make(**extra: object):
        store = extra.pop("store", None)
        return create_app(settings_factory(**extra), keys=StaticKeys(signing_key), store=store)

    return make


@pytest.fixture
async def app(app_factory):
    return app_factory()


@pytest.fixture
async def client(app) -> AsyncIterator:
    async with serve_app(app) as c:
        yield c


def _write_clip(
    path: Path,
    seconds: float = 2.0,
    video_codec: str = "libx264",
    audio_codec: str | None = "aac",
    size: tuple[int, int] = (160, 120),
    fps: int = 10,
) -> Path:
    """A small clip made with PyAV: a picture whose colour changes every frame, a 440 Hz tone."""
    rate = 48_000
    step = 2 * math.pi * 440 / rate
    tone = array("h", (int(8000 * math.sin(i * step)) for i in range(1024))).tobytes()
    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        sound = out.add_stream(audio_codec, rate=rate, layout="mono") if audio_codec else None
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (index * 23 % 256, 90, 160)))
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            for index in range(round(seconds * rate) // 1024):
                samples = av.AudioFrame(format="s16", layout="mono", samples=1024)
                samples.planes[0].update(tone)
                samples.sample_rate, samples.pts = rate, index * 1024
                samples.time_base = Fraction(1, rate)
                out.mux(sound.encode(samples))
            out.mux(sound.encode(None))
    return path


@pytest.fixture(scope="session")
def write_clip():
    """The clip writer: write_clip(path, seconds=2.0, video_codec=..., audio_codec=... | None)."""
    return _write_clip


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """A 3-second mp4 (H.264/AAC) with a changing picture and a tone."""
    return _write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=3.0)


def assert_error(resp, status: int, message: str | None = None, code: str | None = None) -> dict:
    """API.md's error shape: both `error` and `message`, a snake_case `code`."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == body["message"]
    assert body["code"] and body["code"] == body["code"].lower()
    if message is not None:
        assert body["message"] == message
    if code is not None:
        assert body["code"] == code
    return body


@pytest.fixture
def check_error():
    return assert_error


@pytest.fixture
def new_movie(tokens):
    """Create an external movie through the API; returns its representation."""

    async def make(client, **fields):
        body = {"title": "Película", "videoUrl": "https://cdn.example.com/v.mp4", **fields}
        resp = await client.post("/api/movies", json=body, headers=tokens("admin"))
        assert resp.status_code == 201, resp.text
        return resp.json()["data"]

    return make


@pytest.fixture
def upload(tokens, clip):
    """Upload the sample clip (or other bytes) as an admin; returns the response."""

    async def send(client, data: bytes | None = None, filename: str = "clip.mp4", **fields):
        form = {"title": "Clip", **fields}
        content = clip.read_bytes() if data is None else data
        return await client.post(
            "/api/movies/upload",
            headers=tokens("admin"),
            data=form,
            files={"video": (filename, content, "video/mp4")},
        )

    return send
