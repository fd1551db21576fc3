"""Redis down: summaries are served from the database, writes succeed, nothing stale after."""

from __future__ import annotations

import asyncio
import time

import pytest

from streamia_kit.deadlines import DEADLINE_HEADER
from streamia_kit.events import UserDeleted
from streamia_kit.faults import CANCELLABLE_TASK
from streamia_kit.testing import wait_for

pytestmark = pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)


@pytest.fixture
def app(make_app, redis_proxy):
    # Statements wait at most 1 s (for a row lock too): well above what a write holds one.
    return make_app(
        redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0", database_statement_timeout_seconds=1.0
    )


async def rate(client, user, movie_id: str, stars: int):
    return await client.post(
        "/api/ratings", json={"movieId": movie_id, "rating": stars}, headers=user.headers
    )


async def test_with_redis_cut_summaries_come_from_the_database_and_none_is_stale_after(
    client, app, caller, movie, publish, redis_proxy
):
    film = await movie()
    summary = f"/api/ratings/movie/{film.movie_id}"
    rater = caller()
    assert (await rate(client, rater, film.movie_id, 5)).status_code == 201
    assert (await client.get(summary)).json()["count"] == 1  # cached in Redis

    await redis_proxy.cut()
    while_down = await client.get(summary)
    assert while_down.status_code == 200, while_down.text
    assert while_down.json()["count"] == 1
    # The rater's account goes: the rating is removed, the cached summary's drop fails.
    await publish(UserDeleted(user_id=rater.id, email="r@x.io", first_name="R", last_name="S"))

    async def count() -> int:
        response = await client.get(summary)
        assert response.status_code == 200, response.text
        return response.json()["count"]

    await wait_for(lambda: _equals(count(), 0), message="summary without the rating")

    await redis_proxy.restore()
    cache = app.state.service.infra.cache

    async def cached_again() -> bool:
        await client.get(summary)
        return await cache.get(f"movie:{film.movie_id}:rating") is not None

    await wait_for(cached_again, message="the summary cached again")
    assert await count() == 0


async def _equals(awaitable, expected) -> bool:
    return await awaitable == expected


@pytest.mark.parametrize("fault", ["slow", "black_hole"])
async def test_a_summary_read_past_its_deadline_while_redis_hangs_is_a_prompt_504(
    client, app, movie, redis_proxy, assert_error, fault
):
    film = await movie()
    summary = f"/api/ratings/movie/{film.movie_id}"
    assert (await client.get(summary)).status_code == 200  # a pooled Redis connection
    await (redis_proxy.slow(1.0) if fault == "slow" else redis_proxy.black_hole())
    began = time.monotonic()
    late = await client.get(summary, headers={DEADLINE_HEADER: "300"})
    took = time.monotonic() - began
    assert_error(late, 504, "The request's deadline passed; nothing was done")
    assert took < 0.8  # the deadline, not Redis's 2 s round trip or socket timeout
    # The cache call's own task ends with Redis's answer or its socket timeout.
    await wait_for(lambda: not _calls_running(), timeout=5.0, message="no task left")
    await redis_proxy.restore()


def _calls_running() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks() if task.get_name() == CANCELLABLE_TASK]


async def test_with_redis_black_holed_concurrent_ratings_of_one_movie_all_succeed(
    client, app, caller, movie, redis_proxy
):
    """A rating caches its movie's new summary while it holds the summary's row lock (so
    the cache is refreshed in commit order). A black-holed Redis held that write, and the
    lock, for the client's 2 s socket timeout: the other raters of the movie waited past
    their statement timeout and got 503 database_unavailable."""
    film = await movie()
    assert (await client.get(f"/api/ratings/movie/{film.movie_id}")).status_code == 200
    await redis_proxy.black_hole()
    raters = [caller() for _ in range(5)]
    answers = await asyncio.gather(*(rate(client, user, film.movie_id, 4) for user in raters))
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    summary = await client.get(f"/api/ratings/movie/{film.movie_id}")
    assert summary.json()["count"] == 5
    await redis_proxy.restore()
