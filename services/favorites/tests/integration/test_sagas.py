"""Deletion sagas: user.deleted and movie.deleted leave nothing behind, and tombstones refuse
writes that arrive after (or race) the cleanup."""

from __future__ import annotations

import asyncio

from streamia_kit.events import MovieDeleted, MovieUpdated, UserDeleted
from streamia_kit.testing import wait_for


def user_deleted(user_id: str) -> UserDeleted:
    return UserDeleted(user_id=user_id, email="gone@example.com", first_name="G", last_name="O")


async def favorites_of(client, user) -> list:
    return (await client.get("/api/favorites", headers=user.headers)).json()


async def test_deleting_a_user_removes_their_favorites_and_no_one_elses(
    client, caller, movie, publish
):
    gone, stays = caller(), caller()
    films = [await movie() for _ in range(3)]
    for film in films:
        for user in (gone, stays):
            await client.post(
                "/api/favorites", json={"movieId": film.movie_id}, headers=user.headers
            )
    await publish(user_deleted(gone.id))
    await wait_for(lambda: _empty(client, gone), message="favorites removed")
    assert len(await favorites_of(client, stays)) == 3


async def _empty(client, user) -> bool:
    return await favorites_of(client, user) == []


async def test_a_deleted_user_cannot_add_favorites_afterwards(
    client, caller, movie, publish, assert_error
):
    gone = caller()
    film = await movie()
    await publish(user_deleted(gone.id))
    other = await movie()

    async def refused() -> bool:
        resp = await client.post(
            "/api/favorites", json={"movieId": film.movie_id}, headers=gone.headers
        )
        return resp.status_code == 401

    await wait_for(refused, message="write refused after user.deleted")
    resp = await client.post(
        "/api/favorites", json={"movieId": other.movie_id}, headers=gone.headers
    )
    assert_error(resp, 401, "Invalid or expired token")
    assert await favorites_of(client, gone) == []


async def test_deleting_a_movie_removes_it_from_everyones_favorites_and_tombstones_it(
    client, caller, movie, publish, projected, assert_error
):
    users = [caller() for _ in range(3)]
    film, kept = await movie(title="Doomed"), await movie(title="Kept")
    for user in users:
        for f in (film, kept):
            await client.post("/api/favorites", json={"movieId": f.movie_id}, headers=user.headers)
    await publish(MovieDeleted(movie_id=film.movie_id, title="Doomed"))

    async def cleaned() -> bool:
        lists = [await favorites_of(client, u) for u in users]
        return all([f["title"] for f in fav] == ["Kept"] for fav in lists)

    await wait_for(cleaned, message="movie removed from favorites")
    assert (await projected(film.movie_id)).deleted
    resp = await client.post(
        "/api/favorites", json={"movieId": film.movie_id}, headers=caller().headers
    )
    assert_error(resp, 404, "Movie not found")


async def test_a_late_movie_update_does_not_bring_a_deleted_movie_back(
    client, caller, movie, publish, projected, processed, assert_error
):
    film = await movie()
    await publish(MovieDeleted(movie_id=film.movie_id))
    await wait_for(lambda: _deleted(projected, film.movie_id), message="tombstone")
    update = await publish(
        MovieUpdated(movie_id=film.movie_id, title="Zombie", version=film.version + 100)
    )
    await wait_for(lambda: processed(update), message="late update consumed")
    assert (await projected(film.movie_id)).deleted
    resp = await client.post(
        "/api/favorites", json={"movieId": film.movie_id}, headers=caller().headers
    )
    assert_error(resp, 404, "Movie not found")


async def _deleted(projected, movie_id: str) -> bool:
    movie = await projected(movie_id)
    return movie is not None and movie.deleted


async def test_the_newest_movie_version_wins_whatever_the_arrival_order(
    client, caller, movie, publish, projected, processed
):
    film = await movie(title="Old title")
    newer = MovieUpdated(movie_id=film.movie_id, title="New title", version=film.version + 10)
    older = MovieUpdated(movie_id=film.movie_id, title="Stale title", version=film.version + 5)
    await publish(newer)
    await wait_for(lambda: _titled(projected, film.movie_id, "New title"), message="update")
    stale = await publish(older)
    await wait_for(lambda: processed(stale), message="stale update consumed")
    fav = (
        await client.post(
            "/api/favorites", json={"movieId": film.movie_id}, headers=caller().headers
        )
    ).json()
    assert fav["title"] == "New title"


async def _titled(projected, movie_id: str, title: str) -> bool:
    movie = await projected(movie_id)
    return movie is not None and movie.title == title


async def test_a_redelivered_movie_deleted_event_is_applied_once(
    client, caller, movie, publish, app, processed
):
    user = caller()
    film = await movie()
    await client.post("/api/favorites", json={"movieId": film.movie_id}, headers=user.headers)
    sub = app.state.service.infra.bus.subscriptions["favorites.movie.deleted"]
    real, done = sub.handler, []

    async def counted(envelope):
        await real(envelope)
        done.append(envelope.id)

    sub.handler = counted
    envelope = await publish(MovieDeleted(movie_id=film.movie_id))
    await wait_for(lambda: _empty(client, user), message="cleanup")
    await publish(envelope)  # the broker redelivers the very same message
    await wait_for(lambda: done == [envelope.id, envelope.id], message="both deliveries")
    assert await processed(envelope) == 1
    assert await favorites_of(client, user) == []


async def test_writes_racing_a_movie_deletion_never_leave_an_orphan(
    client, caller, movie, publish, app
):
    film = await movie()
    users = [caller() for _ in range(12)]

    async def add(user) -> int:
        resp = await client.post(
            "/api/favorites", json={"movieId": film.movie_id}, headers=user.headers
        )
        return resp.status_code

    early = [asyncio.create_task(add(u)) for u in users[:6]]
    await publish(MovieDeleted(movie_id=film.movie_id))
    late = [asyncio.create_task(add(u)) for u in users[6:]]
    statuses = await asyncio.gather(*early, *late)
    assert set(statuses) <= {201, 404}, statuses
    from sqlalchemy import func, select

    from streamia_favorites.favorites.models import Favorite

    async def remaining() -> int:
        async with app.state.service.db.sessions() as session:
            return await session.scalar(
                select(func.count()).select_from(Favorite).where(Favorite.movie_id == film.movie_id)
            )

    await wait_for(
        lambda: _deleted_and_empty(app, film.movie_id, remaining), message="cleanup done"
    )
    # Any write still in flight after the tombstone is refused; nothing can reappear.
    assert await add(caller()) == 404
    assert await remaining() == 0


async def _deleted_and_empty(app, movie_id: str, remaining) -> bool:
    async with app.state.service.db.sessions() as session:
        movie = await app.state.favorites.movies.get(session, movie_id)
    return movie is not None and movie.deleted and await remaining() == 0
