"""The rating projection: rating.* events keep {average, count} on each movie."""

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text

from streamia_kit.events import (
    Envelope,
    PlaybackStarted,
    RatingCreated,
    RatingDeleted,
    RatingSummary,
    RatingUpdated,
)
from streamia_kit.testing import until_lock_waiters, wait_for


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


@pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)
@pytest.mark.parametrize("event_type", ["rating.updated", "playback.started"])
async def test_concurrent_batches_over_the_same_movies_in_opposite_orders_never_deadlock(
    client, app, new_movie, event_type
):
    """Two consumer workers' batches update `movies` rows one event at a time; in their own
    delivery orders (A then B, B then A) the second would hold B and wait for A while the
    first held A and waited for B. A third transaction holding A lines them up so that this
    happens whenever a batch writes its rows in delivery order."""
    service = app.state.service
    a, b = sorted([(await new_movie(client))["id"], (await new_movie(client))["id"]])
    now = time.time()

    def event(movie_id, step):
        if event_type == "playback.started":
            return PlaybackStarted(user_id=uuid.uuid4().hex, movie_id=movie_id, plays=step)
        return _rating(RatingUpdated, movie_id, float(step), step, now + step)

    consumer = service.infra.bus.subscriptions[f"movies.{event_type}"].handler

    async def batch(*events):
        assert await consumer.batch([Envelope.wrap(e, "streamia/test") for e in events]) == []

    async with service.db.transaction() as blocker:
        await blocker.execute(text("SELECT id FROM movies WHERE id = :id FOR UPDATE"), {"id": a})
        first = asyncio.create_task(batch(event(a, 2), event(b, 2)))
        await until_lock_waiters(service.db, 1, "the first batch waiting for A")
        second = asyncio.create_task(batch(event(b, 3), event(a, 3)))
        await until_lock_waiters(service.db, 2, "both waiting")
    assert await asyncio.gather(first, second, return_exceptions=True) == [None, None]
