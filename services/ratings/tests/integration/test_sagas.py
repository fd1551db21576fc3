"""Deletion sagas for ratings, the summary they leave behind, and tombstoned writes."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from streamia_kit.events import Envelope, MovieDeleted, UserDeleted
from streamia_kit.testing import until_lock_waiters, wait_for


def user_deleted(user_id: str) -> UserDeleted:
    return UserDeleted(user_id=user_id, email="gone@example.com", first_name="G", last_name="O")


async def rate(client, user, movie_id: str, stars: int) -> int:
    resp = await client.post(
        "/api/ratings", json={"movieId": movie_id, "rating": stars}, headers=user.headers
    )
    return resp.status_code


async def test_deleting_a_user_removes_their_ratings_and_republishes_each_summary(
    probe, client, caller, movie, publish
):
    gone, stays = caller(), caller()
    films = [await movie() for _ in range(2)]
    for film in films:
        await rate(client, gone, film.movie_id, 5)
        await rate(client, stays, film.movie_id, 1)
    await publish(user_deleted(gone.id))

    async def cleaned() -> bool:
        return (await client.get(f"/api/ratings/{gone.id}", headers=gone.headers)).json() == []

    await wait_for(cleaned, message="ratings removed")
    for film in films:
        summary = (await client.get(f"/api/ratings/movie/{film.movie_id}")).json()
        assert summary["count"] == 1 and summary["average"] == 1.0
    assert len((await client.get(f"/api/ratings/{stays.id}", headers=stays.headers)).json()) == 2
    await wait_for(
        lambda: sum(e.type == "rating.deleted" for e in probe) == 2,
        message="rating.deleted per removed rating",
    )
    deleted = [e.data for e in probe if e.type == "rating.deleted"]
    assert {d["movie_id"] for d in deleted} == {f.movie_id for f in films}
    assert all(
        d["user_id"] == gone.id and d["summary"] == {"average": 1.0, "count": 1} for d in deleted
    )


async def test_a_deleted_user_can_no_longer_rate(client, caller, movie, publish, assert_error):
    gone = caller()
    film = await movie()
    await publish(user_deleted(gone.id))

    async def refused() -> bool:
        return await rate(client, gone, film.movie_id, 3) == 401

    await wait_for(refused, message="write refused")
    summary = (await client.get(f"/api/ratings/movie/{film.movie_id}")).json()
    assert summary["count"] == 0


async def test_deleting_a_movie_removes_its_ratings_and_its_summary(
    client, app, caller, movie, publish, assert_error
):
    film, kept = await movie(), await movie()
    user = caller()
    for f in (film, kept):
        await rate(client, user, f.movie_id, 4)
    await publish(MovieDeleted(movie_id=film.movie_id))

    async def cleaned() -> bool:
        ratings = (await client.get(f"/api/ratings/{user.id}", headers=user.headers)).json()
        return [r["movieId"] for r in ratings] == [kept.movie_id]

    await wait_for(cleaned, message="movie's ratings removed")
    assert await app.state.service.infra.cache.get(f"movie:{film.movie_id}:rating") is None
    assert_error(await client.get(f"/api/ratings/movie/{film.movie_id}"), 404)
    assert await rate(client, caller(), film.movie_id, 2) == 404


async def test_a_redelivered_user_deleted_event_is_applied_once(
    probe, client, app, caller, movie, publish, processed
):
    gone = caller()
    film = await movie()
    await rate(client, gone, film.movie_id, 5)
    sub = app.state.service.infra.bus.subscriptions["ratings.user.deleted"]
    real, done = sub.handler, []

    async def counted(envelope):
        await real(envelope)
        done.append(envelope.id)

    sub.handler = counted
    envelope = await publish(user_deleted(gone.id))
    await wait_for(lambda: len(done) == 1, message="first delivery")
    await publish(envelope)
    await wait_for(lambda: len(done) == 2, message="redelivery")
    assert await processed(envelope) == 1
    await wait_for(lambda: any(e.type == "rating.deleted" for e in probe), message="event")
    await app.state.service.relay.drain()
    assert sum(e.type == "rating.deleted" for e in probe) == 1


async def test_ratings_racing_a_movie_deletion_never_leave_an_orphan(
    client, app, caller, movie, publish, projected
):
    film = await movie()
    users = [caller() for _ in range(12)]
    early = [asyncio.create_task(rate(client, u, film.movie_id, 3)) for u in users[:6]]
    await publish(MovieDeleted(movie_id=film.movie_id))
    late = [asyncio.create_task(rate(client, u, film.movie_id, 4)) for u in users[6:]]
    statuses = await asyncio.gather(*early, *late)
    assert set(statuses) <= {201, 404}, statuses
    from sqlalchemy import func, select

    from streamia_ratings.ratings.models import MovieSummary, Rating

    async def leftovers() -> tuple[int, int]:
        async with app.state.service.db.sessions() as session:
            ratings = await session.scalar(
                select(func.count()).select_from(Rating).where(Rating.movie_id == film.movie_id)
            )
            summaries = await session.scalar(
                select(func.count())
                .select_from(MovieSummary)
                .where(MovieSummary.movie_id == film.movie_id)
            )
        return ratings, summaries

    async def done() -> bool:
        movie_row = await projected(film.movie_id)
        return movie_row.deleted and await leftovers() == (0, 0)

    await wait_for(done, message="cleanup complete")
    assert await rate(client, caller(), film.movie_id, 5) == 404
    assert await leftovers() == (0, 0)


async def test_concurrent_ratings_of_one_movie_keep_an_exact_summary(client, caller, movie):
    film = await movie()
    users = [caller() for _ in range(10)]
    stars = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]
    await asyncio.gather(
        *(rate(client, u, film.movie_id, s) for u, s in zip(users, stars, strict=True))
    )
    summary = (await client.get(f"/api/ratings/movie/{film.movie_id}")).json()
    assert summary["count"] == 10 and summary["average"] == 3.0
    assert summary["distribution"] == {"1": 2, "2": 2, "3": 2, "4": 2, "5": 2}


async def test_a_summary_written_behind_a_newer_one_still_gets_a_newer_version(
    app, probe, client, caller, movie, publish
):
    """Two writers read the clock, then queue for the movie's counters: the one that read it
    first may commit second. Its summary is the newer one and must carry the higher version,
    or the movies service (which keeps the highest) keeps the older count for good."""
    from sqlalchemy import update

    from streamia_ratings.ratings.models import MovieSummary

    gone, stays = caller(), caller()
    film = await movie()
    await rate(client, gone, film.movie_id, 5)
    await rate(client, stays, film.movie_id, 1)
    ahead = (await _versions(probe))[-1] + 1000.0  # a writer whose clock read came later
    async with app.state.service.db.transaction() as session:
        await session.execute(
            update(MovieSummary).where(MovieSummary.movie_id == film.movie_id).values(version=ahead)
        )
    await publish(user_deleted(gone.id))
    await wait_for(lambda: any(e.type == "rating.deleted" for e in probe), message="deleted")
    deleted = next(e.data for e in probe if e.type == "rating.deleted")
    assert deleted["summary"] == {"average": 1.0, "count": 1}
    assert deleted["version"] > ahead


async def _versions(probe) -> list[float]:
    await wait_for(lambda: len(probe) >= 2, message="two rating.created")
    return sorted(e.data["version"] for e in probe)


@pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)
async def test_concurrent_batches_of_deleted_users_never_deadlock(app, client, caller, movie):
    """Each user.deleted of a batch moved its movies' counters in movie id order, but a
    batch is one transaction: one batch's first user held A's counters while its second
    waited for B's, held by another batch whose second user waited for A's. A third
    transaction holding A's counters lines two such batches up."""
    service = app.state.service
    a, b = sorted([(await movie()).movie_id, (await movie()).movie_id])
    users = [caller() for _ in range(4)]
    # Batch one: a user who rated A, then one who rated B; batch two the other way round.
    for user, film in zip(users, (a, b, b, a), strict=True):
        assert await rate(client, user, film, 4) == 201
    consumer = service.infra.bus.subscriptions["ratings.user.deleted"].handler

    async def batch(*batch_users) -> None:
        envelopes = [Envelope.wrap(user_deleted(u.id), "streamia/users") for u in batch_users]
        assert await consumer.batch(envelopes) == []

    summaries = text("SELECT movie_id FROM movie_summaries WHERE movie_id = :id FOR UPDATE")
    async with service.db.transaction() as blocker:
        await blocker.execute(summaries, {"id": a})
        first = asyncio.create_task(batch(users[0], users[1]))
        await until_lock_waiters(service.db, 1, "the first batch waiting for A")
        second = asyncio.create_task(batch(users[2], users[3]))
        await until_lock_waiters(service.db, 2, "both waiting")
    assert await asyncio.gather(first, second, return_exceptions=True) == [None, None]
    for film in (a, b):
        assert (await client.get(f"/api/ratings/movie/{film}")).json()["count"] == 0
