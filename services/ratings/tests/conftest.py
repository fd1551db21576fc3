from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.events import Envelope, Event, MovieCreated
from streamia_kit.testing import Stack, free_port, serve_app, wait_for
from streamia_ratings.app import create_app
from streamia_ratings.config import RatingsSettings


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class FakeMovies:
    """A tiny movie service: GET /api/movies/{id} answers from `movies`, counting hits."""

    movies: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    url: str = ""
    delay: float = 0.0

    def add(self, movie_id: str | None = None, **fields: Any) -> dict[str, Any]:
        movie_id = movie_id or new_id()
        movie = {"id": movie_id, "_id": movie_id, "title": f"Film {movie_id[:6]}",
                 "coverImage": f"https://cdn.example/{movie_id}.jpg",
                 "videoUrl": f"https://cdn.example/{movie_id}.mp4", "duration": 5400.0,
                 "category": "drama", "updatedAt": "2025-01-01T00:00:00.000Z", **fields}
        self.movies[movie_id] = movie
        return movie


@pytest.fixture
async def fake_movies() -> AsyncIterator[FakeMovies]:
    fake = FakeMovies()

    async def get_movie(request: web.Request) -> web.Response:
        movie_id = request.match_info["movie_id"]
        fake.hits.append(movie_id)
        if fake.delay:
            await asyncio.sleep(fake.delay)
        if movie_id not in fake.movies:
            return web.json_response({"error": "Movie not found", "message": "Movie not found",
                                      "code": "movie_not_found"}, status=404)
        return web.json_response({"source": "local", "data": fake.movies[movie_id]})

    server = web.Application()
    server.router.add_get("/api/movies/{movie_id}", get_movie)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


@dataclass
class Caller:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def caller(signing_key: SigningKey) -> Callable[..., Caller]:
    """Mint a token for a fresh user (or an admin)."""

    def make(role: str = "user", user_id: str | None = None) -> Caller:
        user_id = user_id or new_id()
        return Caller(user_id, signing_key.issue(user_id, f"{user_id[:8]}@example.com", role, 3600))

    return make


@pytest.fixture
def make_app(stack: Stack, signing_key: SigningKey, fake_movies: FakeMovies):
    def make(**overrides: Any):
        settings = RatingsSettings(**stack.overrides(**{"movies_url": fake_movies.url,
                                                          **overrides}))
        return create_app(settings, keys=StaticKeys(signing_key))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


PUBLISHED = ("rating.created", "rating.updated", "rating.deleted")


@pytest.fixture
def probe(app) -> list[Envelope]:
    """Every event the service publishes, in arrival order (request it before `client`)."""
    seen: list[Envelope] = []

    async def record(envelope: Envelope) -> None:
        seen.append(envelope)

    for event_type in PUBLISHED:
        app.state.service.infra.bus.subscribe("probe", event_type, record)
    return seen


@pytest.fixture
async def client(app) -> AsyncIterator:
    async with serve_app(app) as c:
        yield c


@pytest.fixture
def publish(app):
    """Deliver an event to the service through its bus (as another service would)."""

    async def send(event: Event | Envelope) -> Envelope:
        envelope = event if isinstance(event, Envelope) else Envelope.wrap(event, "streamia/test")
        await app.state.service.infra.bus.publish([envelope])
        return envelope

    return send


@pytest.fixture
def processed(app):
    """How many times the service's inbox recorded this event (0 until it is consumed)."""
    from sqlalchemy import func, select

    inbox = app.state.service.inbox.table

    async def count(envelope: Envelope) -> int:
        async with app.state.service.db.sessions() as session:
            return await session.scalar(
                select(func.count()).select_from(inbox).where(inbox.c.event_id == envelope.id))

    return count


@pytest.fixture
def projected(app):
    async def get(movie_id: str):  # noqa: ANN202
        async with app.state.service.db.sessions() as session:
            return await app.state.ratings.movies.get(session, movie_id)

    return get


@pytest.fixture
def movie(publish, projected):
    """Announce a movie through `movie.created` and wait until the projection has it."""

    async def make(**fields: Any) -> MovieCreated:
        event = MovieCreated(**{"movie_id": new_id(), "title": "Nosferatu",
                                "cover_image": "https://cdn.example/poster.jpg",
                                "video_url": "https://cdn.example/video.mp4",
                                "duration": 5640.0, "category": "horror",
                                "version": time.time(), **fields})
        await publish(event)
        await wait_for(lambda: projected(event.movie_id), message="movie projected")
        return event

    return make


def _assert_error(resp: Any, status: int, message: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == body["message"] and body["code"]
    if message is not None:
        assert body["message"] == message
    return body


@pytest.fixture
def assert_error():
    """Check API.md's error shape, status and message."""
    return _assert_error
