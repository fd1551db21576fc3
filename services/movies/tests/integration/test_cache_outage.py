"""Redis down: movie reads are served from the database (200, not 500 or 503)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)


@pytest.fixture
async def app(app_factory, redis_proxy):
    return app_factory(redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")


async def test_with_redis_cut_a_movie_and_the_catalogue_are_read_from_the_database(
    client, new_movie, redis_proxy
):
    movie = await new_movie(client, title="Metropolis")
    assert (await client.get(f"/api/movies/{movie['id']}")).status_code == 200  # now cached

    await redis_proxy.cut()
    one = await client.get(f"/api/movies/{movie['id']}")
    assert one.status_code == 200, one.text
    assert one.json()["data"]["title"] == "Metropolis"
    listing = await client.get("/api/movies")
    assert listing.status_code == 200, listing.text
    assert movie["id"] in {m["id"] for m in listing.json()["data"]}

    await redis_proxy.restore()
    again = await client.get(f"/api/movies/{movie['id']}")
    assert again.status_code == 200, again.text
