"""Provider side of the message pacts: each publisher's real events honour its consumers' pacts.

The publisher runs on each stack and does, through its own HTTP API, what makes it
publish each event; the envelopes it puts on its bus (as the bus encodes them, with the
exchange and routing key the bus uses) are handed to the Pact verifier, which checks them
against every committed pact in `contracts/pacts/` that names this publisher. No broker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pact import Verifier
from pact.types import Message

from streamia import platform
from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.bus import encode
from streamia_kit.events import EVENT_TYPES, PUBLISHERS, Envelope, MovieCreated, exchange_for
from streamia_kit.testing import Stack, serve_app, wait_for

PACTS = Path(__file__).resolve().parents[2] / "contracts" / "pacts"
CONTENT_TYPE = "application/cloudevents+json"
PASSWORD = "Str0ng!Passw0rd"
Scenario = Callable[[httpx.AsyncClient, Any, SigningKey], Awaitable[None]]


def _bearer(key: SigningKey, role: str) -> dict[str, str]:
    token = key.issue(uuid.uuid4().hex, f"{role}@example.com", role, 600)
    return {"Authorization": f"Bearer {token}"}


async def _users(client: httpx.AsyncClient, _app: Any, _key: SigningKey) -> None:
    """Register, edit the profile, ask for a password reset, delete the account."""
    email = f"ana-{uuid.uuid4().hex[:10]}@example.com"
    registration = {
        "firstName": "Ana",
        "lastName": "García",
        "age": 31,
        "email": email,
        "password": PASSWORD,
        "confirmPassword": PASSWORD,
    }
    resp = await client.post("/api/users/register", json=registration)
    assert resp.status_code == 201, resp.text
    auth = {"Authorization": f"Bearer {resp.json()['token']}"}
    resp = await client.put("/api/users/me", json={"lastName": "García López"}, headers=auth)
    assert resp.status_code == 200, resp.text
    resp = await client.post("/api/users/forgot-password", json={"email": email})
    assert resp.status_code == 200, resp.text
    resp = await client.request(
        "DELETE", "/api/users/me", json={"password": PASSWORD}, headers=auth
    )
    assert resp.status_code == 204, resp.text


async def _movies(client: httpx.AsyncClient, _app: Any, key: SigningKey) -> None:
    """Add a movie, give it a subtitle track (media the deletion saga must purge), delete it."""
    admin = _bearer(key, "admin")
    body = {"title": "Nosferatu", "videoUrl": "https://cdn.example.com/nosferatu.mp4"}
    resp = await client.post("/api/movies", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    movie_id = resp.json()["data"]["id"]
    resp = await client.post(
        f"/api/movies/{movie_id}/subtitles",
        headers=admin,
        data={"language": "es"},
        files={"subtitle": ("es.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHola\n")},
    )
    assert resp.status_code == 200, resp.text
    resp = await client.put(f"/api/movies/{movie_id}", json={"category": "horror"}, headers=admin)
    assert resp.status_code == 200, resp.text
    resp = await client.delete(f"/api/movies/{movie_id}", headers=admin)
    assert resp.status_code == 200, resp.text


async def _announce_movie(app: Any) -> str:
    """Tell the service about a movie the way the movie service does (movie.created); wait
    until its projection has it."""
    movie = MovieCreated(
        movie_id=uuid.uuid4().hex, title="Nosferatu", duration=600.0, version=time.time()
    )
    await app.state.service.bus.publish([Envelope.wrap(movie, "streamia/movies")])
    domain = getattr(app.state, app.state.service.name)

    async def projected() -> bool:
        async with app.state.service.db.sessions() as session:
            return await domain.movies.get(session, movie.movie_id) is not None

    await wait_for(projected, message="movie projected")
    return movie.movie_id


async def _ratings(client: httpx.AsyncClient, app: Any, key: SigningKey) -> None:
    """Rate a movie, change the rating, remove it."""
    movie_id = await _announce_movie(app)
    user = _bearer(key, "user")
    resp = await client.post("/api/ratings", json={"movieId": movie_id, "rating": 4}, headers=user)
    assert resp.status_code == 201, resp.text
    rating_id = resp.json()["rating"]["id"]
    resp = await client.put(f"/api/ratings/{rating_id}", json={"rating": 5}, headers=user)
    assert resp.status_code == 200, resp.text
    resp = await client.delete(f"/api/ratings/{rating_id}", headers=user)
    assert resp.status_code == 200, resp.text


async def _playback(client: httpx.AsyncClient, app: Any, key: SigningKey) -> None:
    """Start watching a movie, then reach its end."""
    url = f"/api/playback/progress/{await _announce_movie(app)}"
    user = _bearer(key, "user")
    for position in (10.0, 595.0):
        resp = await client.put(url, json={"position": position, "duration": 600.0}, headers=user)
        assert resp.status_code == 200, resp.text


async def _comments(client: httpx.AsyncClient, app: Any, key: SigningKey) -> None:
    """Comment on a movie, have an admin's report hide it, delete it."""
    movie_id = await _announce_movie(app)
    user = _bearer(key, "user")
    resp = await client.post(
        "/api/comments", json={"movieId": movie_id, "text": "Spoilers!"}, headers=user
    )
    assert resp.status_code == 201, resp.text
    path = f"/api/comments/{resp.json()['id']}"
    resp = await client.post(f"{path}/report", headers=_bearer(key, "admin"))
    assert resp.status_code == 200, resp.text
    resp = await client.delete(path, headers=_bearer(key, "admin"))
    assert resp.status_code == 200, resp.text


def _app(publisher: str, stack: Stack, key: SigningKey) -> Any:
    module = platform.load(publisher)
    assert module is not None
    extra: dict[str, Any] = {"media_dir": stack.tmp / "media"} if publisher == "movies" else {}
    settings = module.settings_cls(**stack.overrides(**extra))
    if publisher == "users":
        return module.app.create_app(settings)  # it signs with its own key
    return module.app.create_app(settings, keys=StaticKeys(key))


SCENARIOS: dict[str, Scenario] = {
    "users": _users,
    "movies": _movies,
    "ratings": _ratings,
    "comments": _comments,
    "playback": _playback,
}


@pytest.mark.parametrize(
    "publisher", sorted({PUBLISHERS[sub.exchange] for sub in platform.subscriptions()})
)
async def test_the_events_the_publisher_sends_honour_every_consumer_pact(
    publisher: str, stack: Stack
) -> None:
    pacts = sorted(PACTS.glob(f"*-{publisher}-events.json"))
    assert pacts, f"no consumer pact names {publisher}-events"
    key = SigningKey(Ed25519PrivateKey.generate())
    app = _app(publisher, stack, key)
    sent: dict[str, Envelope] = {}

    async def record(envelope: Envelope) -> None:
        sent[envelope.type] = envelope

    types = [t for t, cls in EVENT_TYPES.items() if PUBLISHERS[cls.exchange] == publisher]
    for event_type in types:
        app.state.service.bus.subscribe("probe", event_type, record)
    async with serve_app(app) as client:
        await SCENARIOS[publisher](client, app, key)
        await wait_for(lambda: set(sent) == set(types), message=f"{publisher}'s events")

    messages: dict[str, Callable[..., Message] | Message | bytes] = {
        event_type: Message(
            contents=encode(envelope),
            metadata={"exchange": exchange_for(event_type), "routingKey": event_type},
            content_type=CONTENT_TYPE,
        )
        for event_type, envelope in sent.items()
    }
    verifier = Verifier(f"{publisher}-events").message_handler(messages)
    for pact in pacts:
        verifier.add_source(pact)
    verifier.verify()
