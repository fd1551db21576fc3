"""Provider side of the HTTP pacts: the real services, on free ports, answer as their callers
expect. Pact's verifier replays every committed interaction naming the provider; no broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pact import Verifier
from sqlalchemy import update

from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.testing import Stack, free_port, serve_app, wait_for
from streamia_movies.app import create_app as movies_app
from streamia_movies.config import MoviesSettings
from streamia_movies.movies.models import Movie
from streamia_users.app import create_app as users_app
from streamia_users.config import UsersSettings

PACTS = Path(__file__).resolve().parents[2] / "contracts" / "pacts"


@asynccontextmanager
async def listening(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app (lifespan included) on a free local port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="localhost", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started or task.done(), message="provider listening")
        if task.done():
            task.result()  # surfaces a startup failure
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        await task


def _verify(provider: str, url: str, states: dict[str, Any] | None = None) -> None:
    pacts = sorted(PACTS.glob(f"*-{provider}.json"))
    assert pacts, f"no consumer pact names {provider}"
    verifier = Verifier(provider).add_transport(url=url)
    if states is not None:
        verifier.state_handler(states, teardown=False)
    for pact in pacts:
        verifier.add_source(pact)
    verifier.verify()


async def test_the_movie_service_answers_the_projections_catch_up_calls(tmp_path: Path) -> None:
    stack = Stack("embedded", tmp_path)
    key = SigningKey(Ed25519PrivateKey.generate())
    settings = MoviesSettings(**stack.overrides(), media_dir=tmp_path / "media")
    app = movies_app(settings, keys=StaticKeys(key))
    admin = {
        "Authorization": f"Bearer {key.issue(uuid.uuid4().hex, 'a@example.com', 'admin', 600)}"
    }
    loop = asyncio.get_running_loop()

    async def add_movie(movie_id: str, title: str) -> None:
        # Through the API, so every column is the service's own; the id is the pact's.
        async with serve_app(app) as client:
            body = {
                "title": title,
                "category": "horror",
                "duration": 5640,
                "hasAudio": True,
                "coverImage": "https://cdn.example.com/nosferatu.jpg",
                "videoUrl": "https://cdn.example.com/nosferatu.mp4",
            }
            resp = await client.post("/api/movies", json=body, headers=admin)
            assert resp.status_code == 201, resp.text
        async with app.state.service.db.transaction() as session:
            created = resp.json()["data"]["id"]
            await session.execute(update(Movie).where(Movie.id == created).values(id=movie_id))

    def a_movie_exists(parameters: dict[str, Any]) -> None:
        future = asyncio.run_coroutine_threadsafe(
            add_movie(parameters["id"], parameters["title"]), loop
        )
        future.result(timeout=30)

    def no_movie_has_the_id(parameters: dict[str, Any]) -> None:
        pass  # a fresh database knows no movie

    async with listening(app) as url:
        await asyncio.to_thread(
            _verify,
            "movies",
            url,
            {"a movie exists": a_movie_exists, "no movie has the id": no_movie_has_the_id},
        )


async def test_the_users_service_publishes_the_keys_the_gateway_verifies_with(
    tmp_path: Path,
) -> None:
    app = users_app(UsersSettings(**Stack("embedded", tmp_path).overrides()))
    async with listening(app) as url:
        await asyncio.to_thread(_verify, "users", url)
