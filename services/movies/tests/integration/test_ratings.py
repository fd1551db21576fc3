"""The rating projection: rating.* events keep {average, count} on each movie."""

import time
import uuid

from streamia_kit.events import Envelope, RatingCreated, RatingDeleted, RatingSummary, RatingUpdated
from streamia_kit.testing import wait_for


async def _publish(app, event):
    await app.state.service.bus.publish([Envelope.wrap(event, "streamia/ratings")])


def _rating(cls, movie_id, average, count, version):
    return cls(
        rating_id=uuid.uuid4().hex,
        movie_id=movie_id,
        user_id=uuid.uuid4().hex,
        rating=5,
        summary=RatingSummary(average=average, count=count),
        version=version,
    )


async def _rating_of(client, movie_id):
    return (await client.get(f"/api/movies/{movie_id}")).json()["data"]["rating"]


async def test_rating_events_update_the_movie_and_its_cached_copy(client, app, new_movie):
    movie = await new_movie(client)
    assert await _rating_of(client, movie["id"]) == {"average": 0.0, "count": 0}  # now cached
    now = time.time()

    await _publish(app, _rating(RatingCreated, movie["id"], 4.0, 1, now))
    await wait_for(
        lambda: _has_rating(client, movie["id"], {"average": 4.0, "count": 1}),
        message="rating.created applied",
    )
    await _publish(app, _rating(RatingUpdated, movie["id"], 3.5, 2, now + 1))
    await wait_for(
        lambda: _has_rating(client, movie["id"], {"average": 3.5, "count": 2}),
        message="rating.updated applied",
    )
    await _publish(app, _rating(RatingDeleted, movie["id"], 3.0, 1, now + 2))
    await wait_for(
        lambda: _has_rating(client, movie["id"], {"average": 3.0, "count": 1}),
        message="rating.deleted applied",
    )


async def _has_rating(client, movie_id, expected):
    return await _rating_of(client, movie_id) == expected


async def test_an_older_summary_arriving_late_is_ignored(client, app, new_movie):
    movie = await new_movie(client)
    marker = await new_movie(client)
    now = time.time()
    await _publish(app, _rating(RatingUpdated, movie["id"], 5.0, 3, now + 10))
    await wait_for(lambda: _has_rating(client, movie["id"], {"average": 5.0, "count": 3}))

    await _publish(app, _rating(RatingCreated, movie["id"], 1.0, 1, now))
    # A later event on another movie proves the stale one has been consumed by then.
    await _publish(app, _rating(RatingCreated, marker["id"], 2.0, 1, now + 20))
    await wait_for(lambda: _has_rating(client, marker["id"], {"average": 2.0, "count": 1}))

    assert await _rating_of(client, movie["id"]) == {"average": 5.0, "count": 3}


async def test_a_rating_for_an_unknown_movie_is_harmless(client, app, new_movie):
    marker = await new_movie(client)
    await _publish(app, _rating(RatingCreated, uuid.uuid4().hex, 4.0, 1, time.time()))
    await _publish(app, _rating(RatingCreated, marker["id"], 4.0, 1, time.time()))

    await wait_for(lambda: _has_rating(client, marker["id"], {"average": 4.0, "count": 1}))


async def test_the_list_sorts_by_rating(client, app, new_movie):
    category = f"rated-{uuid.uuid4().hex[:8]}"
    low, high, mid = [
        await new_movie(client, title=t, category=category) for t in ("low", "high", "mid")
    ]
    now = time.time()
    for movie, average in ((low, 1.5), (high, 4.8), (mid, 3.0)):
        await _publish(app, _rating(RatingCreated, movie["id"], average, 2, now))
    await wait_for(lambda: _has_rating(client, mid["id"], {"average": 3.0, "count": 2}))
    await wait_for(lambda: _has_rating(client, high["id"], {"average": 4.8, "count": 2}))
    await wait_for(lambda: _has_rating(client, low["id"], {"average": 1.5, "count": 2}))

    body = (
        await client.get("/api/movies/explore", params={"category": category, "sort": "rating"})
    ).json()

    assert [m["title"] for m in body["data"]] == ["high", "mid", "low"]
