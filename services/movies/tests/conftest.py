from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """A 3-second mp4 with a test picture and a tone."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


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
