"""Redis down: summaries are served from the database, writes succeed, nothing stale after."""

from __future__ import annotations

import pytest

from streamia_kit.events import UserDeleted
from streamia_kit.testing import wait_for

pytestmark = pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)


@pytest.fixture
def app(make_app, redis_proxy):
    return make_app(redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")


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
