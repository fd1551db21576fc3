"""Test support for services that keep the movie projection, loaded as a pytest plugin: a
fake movie service to catch up from, and fixtures that announce movies and read the projection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from streamia_kit.events import MovieCreated
from streamia_kit.testing import free_port, new_test_id, wait_for


@dataclass
class FakeMovies:
    """A tiny movie service: GET /api/movies/{id} answers from `movies`, counting hits."""

    movies: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    hit_at: list[float] = field(default_factory=list)  # `time.monotonic()` of each hit
    url: str = ""
    delay: float = 0.0

    def add(self, movie_id: str | None = None, **fields: Any) -> dict[str, Any]:
        movie_id = movie_id or new_test_id()
        movie = {
            "id": movie_id,
            "_id": movie_id,
            "title": f"Film {movie_id[:6]}",
            "coverImage": f"https://cdn.example/{movie_id}.jpg",
            "videoUrl": f"https://cdn.example/{movie_id}.mp4",
            "duration": 5400.0,
            "hasAudio": True,
            "category": "drama",
            "updatedAt": "2025-01-01T00:00:00.000Z",
            **fields,
        }
        self.movies[movie_id] = movie
        return movie


@pytest.fixture
async def fake_movies() -> AsyncIterator[FakeMovies]:
    fake = FakeMovies()

    async def get_movie(request: web.Request) -> web.Response:
        movie_id = request.match_info["movie_id"]
        fake.hits.append(movie_id)
        fake.hit_at.append(time.monotonic())
        if fake.delay:
            await asyncio.sleep(fake.delay)
        if movie_id not in fake.movies:
            return web.json_response(
                {
                    "error": "Movie not found",
                    "message": "Movie not found",
                    "code": "movie_not_found",
                },
                status=404,
            )
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
def projected(app: Any) -> Callable[..., Any]:
    """The service's movie projection row for an id (None until projected)."""
    domain = getattr(app.state, app.state.service.name)

    async def get(movie_id: str) -> Any:
        async with app.state.service.db.sessions() as session:
            return await domain.movies.get(session, movie_id)

    return get


@pytest.fixture
def movie(publish: Any, projected: Any) -> Callable[..., Any]:
    """Announce a movie through `movie.created` and wait until the projection has it."""

    async def make(**fields: Any) -> Any:
        event = MovieCreated(
            **{
                "movie_id": new_test_id(),
                "title": "Nosferatu",
                "cover_image": "https://cdn.example/poster.jpg",
                "video_url": "https://cdn.example/video.mp4",
                "duration": 5640.0,
                "category": "horror",
                "version": time.time(),
                **fields,
            }
        )
        await publish(event)
        await wait_for(lambda: projected(event.movie_id), message="movie projected")
        return event

    return make
