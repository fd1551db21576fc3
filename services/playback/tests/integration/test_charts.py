"""Most watched in a window and trending: public, from starts, finishes and ratings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streamia_kit.events import Envelope, PlaybackStarted, RatingCreated, RatingSummary
from streamia_kit.testing import wait_for


async def test_popular_ranks_movies_by_distinct_viewers_and_needs_no_token(
    client, caller, movie, watch
):
    big, small, unseen = await movie(title="Big"), await movie(title="Small"), await movie()
    users = [caller() for _ in range(3)]
    for user in users:
        await watch(user, big.movie_id, 10.0)
        await watch(user, big.movie_id, 20.0)  # the same viewer twice counts once
    await watch(users[0], small.movie_id, 10.0)
    resp = await client.get("/api/playback/popular?window=7d")
    assert resp.status_code == 200, resp.text
    ranked = resp.json()
    assert [(m["title"], m["viewers"]) for m in ranked] == [("Big", 3), ("Small", 1)]
    assert resp.headers["x-total-count"] == "2"
    assert ranked[0]["poster"] == big.cover_image and ranked[0]["movieId"] == big.movie_id
    assert unseen.movie_id not in {m["movieId"] for m in ranked}
    top = await client.get("/api/playback/popular?limit=1")
    assert [m["title"] for m in top.json()] == ["Big"] and top.headers["x-total-count"] == "2"


async def test_popular_refuses_a_malformed_window(client, assert_error):
    for window in ("7", "0d", "7w", "400d", "-1d", "1e3h"):
        resp = await client.get(f"/api/playback/popular?window={window}")
        assert "window" in assert_error(resp, 400, "Validation error")["details"]["fieldErrors"]
    assert_error(await client.get("/api/playback/trending?limit=0"), 400)


async def test_trending_weighs_recent_starts_finishes_and_ratings_over_old_ones(
    client, caller, movie, publish, processed
):
    old, fresh, rated = (
        await movie(title="Old"),
        await movie(title="Fresh"),
        await movie(title="Rated"),
    )
    now = datetime.now(UTC)

    def at(event, when: datetime) -> Envelope:
        return Envelope.wrap(event, "streamia/test").model_copy(update={"time": when})

    sent = []
    # Five starts three days ago weigh less than two starts now (half-life: one day).
    for _ in range(5):
        started = PlaybackStarted(user_id=caller().id, movie_id=old.movie_id, plays=1)
        sent.append(await publish(at(started, now - timedelta(days=3))))
    for _ in range(2):
        started = PlaybackStarted(user_id=caller().id, movie_id=fresh.movie_id, plays=1)
        sent.append(await publish(at(started, now)))
    rating = RatingCreated(
        rating_id="r1",
        movie_id=rated.movie_id,
        user_id=caller().id,
        rating=5,
        summary=RatingSummary(average=5.0, count=1),
        version=now.timestamp(),
    )
    sent.append(await publish(at(rating, now)))

    async def all_consumed() -> bool:
        return all([await processed(e) for e in sent])

    await wait_for(all_consumed, message="interest events consumed")
    resp = await client.get("/api/playback/trending")
    assert resp.status_code == 200, resp.text
    ranked = resp.json()
    assert [m["title"] for m in ranked] == ["Fresh", "Rated", "Old"]
    assert resp.headers["x-total-count"] == "3"
    assert abs(ranked[0]["score"] - 2.0) < 0.01 and abs(ranked[2]["score"] - 5 / 8) < 0.01


async def test_the_services_own_starts_and_finishes_feed_trending(client, caller, movie, watch):
    film = await movie(title="Watched")
    user = caller()
    await watch(user, film.movie_id, 10.0)
    await watch(user, film.movie_id, 5600.0)

    async def scored() -> bool:
        ranked = (await client.get("/api/playback/trending")).json()
        return bool(ranked) and abs(ranked[0]["score"] - 3.0) < 0.01

    await wait_for(scored, message="start (1) and finish (2) scored")
