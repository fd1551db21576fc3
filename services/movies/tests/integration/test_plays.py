"""The playback projection: playback.started keeps `plays` (distinct viewers) on each movie,
and `sort=popular` lists the most watched first."""

import uuid

from streamia_kit.events import Envelope, PlaybackStarted
from streamia_kit.testing import wait_for


async def _started(app, movie_id: str, plays: int) -> Envelope:
    envelope = Envelope.wrap(
        PlaybackStarted(user_id=uuid.uuid4().hex, movie_id=movie_id, plays=plays),
        "streamia/playback",
    )
    await app.state.service.bus.publish([envelope])
    return envelope


async def _plays(client, movie_id: str) -> int:
    return (await client.get(f"/api/movies/{movie_id}")).json()["data"]["plays"]


async def test_playback_started_sets_plays_and_a_late_lower_count_is_ignored(
    client, app, new_movie
):
    movie = await new_movie(client)
    assert await _plays(client, movie["id"]) == 0  # now cached
    await _started(app, movie["id"], 2)
    await wait_for(lambda: _is(client, movie["id"], 2), message="plays applied")
    await _started(app, movie["id"], 1)  # an older start, delivered late
    marker = await new_movie(client)
    await _started(app, marker["id"], 1)
    await wait_for(lambda: _is(client, marker["id"], 1), message="later event applied")
    assert await _plays(client, movie["id"]) == 2


async def _is(client, movie_id: str, plays: int) -> bool:
    return await _plays(client, movie_id) == plays


async def test_sort_popular_lists_the_most_watched_first(client, app, new_movie):
    quiet, busy, middle = [await new_movie(client) for _ in range(3)]
    for movie, plays in ((busy, 9), (middle, 4)):
        await _started(app, movie["id"], plays)
    await wait_for(lambda: _is(client, middle["id"], 4), message="plays applied")
    await wait_for(lambda: _is(client, busy["id"], 9), message="plays applied")
    listed = (await client.get("/api/movies?sort=popular")).json()["data"]
    ids = [m["id"] for m in listed]
    assert ids.index(busy["id"]) < ids.index(middle["id"]) < ids.index(quiet["id"])
    assert listed[0]["plays"] == 9
