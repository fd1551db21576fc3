"""Catch-up: one call to the movie service when the projection lags; a fast 503 when it is down."""

from __future__ import annotations

import time
import uuid

from streamia_kit.events import MovieCreated
from streamia_kit.testing import serve_app, wait_for


async def test_an_unprojected_movie_is_fetched_once_from_the_movie_service(
    client, caller, fake_movies, publish, processed, projected
):
    remote = fake_movies.add(title="Caught up", category="noir")
    first = await client.post(
        "/api/favorites", json={"movieId": remote["id"]}, headers=caller().headers
    )
    assert first.status_code == 201, first.text
    assert first.json()["title"] == "Caught up" and first.json()["poster"] == remote["coverImage"]
    second = await client.post(
        "/api/favorites", json={"movieId": remote["id"]}, headers=caller().headers
    )
    assert second.status_code == 201
    assert fake_movies.hits == [remote["id"]]
    # The movie.created event that arrives later (same version) changes nothing.
    late = await publish(
        MovieCreated(movie_id=remote["id"], title="Caught up", category="noir", version=0.0)
    )
    await wait_for(lambda: processed(late), message="late movie.created consumed")
    assert (await projected(remote["id"])).title == "Caught up"


async def test_a_down_movie_service_gives_a_fast_503(make_app, caller, assert_error):
    from streamia_kit.testing import free_port

    app = make_app(movies_url=f"http://127.0.0.1:{free_port()}")
    async with serve_app(app) as client:
        started = time.monotonic()
        resp = await client.post(
            "/api/favorites", json={"movieId": uuid.uuid4().hex}, headers=caller().headers
        )
        assert time.monotonic() - started < 1.0
    body = assert_error(resp, 503, "Movie service unavailable")
    assert body["code"] == "movies_unavailable" and resp.headers["retry-after"]


async def test_an_open_breaker_refuses_without_calling_the_movie_service(
    client, app, caller, fake_movies, assert_error
):
    breaker = app.state.favorites.movies.client.breaker
    permit = breaker.acquire()
    for _ in range(breaker.volume_threshold):
        breaker.record(breaker.acquire(), False)
    breaker.release(permit)
    remote = fake_movies.add()
    resp = await client.post(
        "/api/favorites", json={"movieId": remote["id"]}, headers=caller().headers
    )
    assert_error(resp, 503, "Movie service unavailable")
    assert fake_movies.hits == []


async def test_a_slow_movie_service_times_out_into_a_503(
    make_app, caller, fake_movies, assert_error
):
    app = make_app(movie_lookup_timeout_seconds=0.2)
    fake_movies.delay = 2.0
    async with serve_app(app) as client:
        started = time.monotonic()
        resp = await client.post(
            "/api/favorites", json={"movieId": fake_movies.add()["id"]}, headers=caller().headers
        )
        assert time.monotonic() - started < 1.5
    assert_error(resp, 503, "Movie service unavailable")
