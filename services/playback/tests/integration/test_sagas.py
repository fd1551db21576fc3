"""Deletion sagas: user.deleted and movie.deleted leave no progress behind, and tombstones
refuse reports that arrive after (or race) the cleanup."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from streamia_kit.events import MovieDeleted, UserDeleted
from streamia_kit.testing import wait_for
from streamia_playback.progress.models import Progress, Viewer


def user_deleted(user_id: str) -> UserDeleted:
    return UserDeleted(user_id=user_id, email="gone@example.com", first_name="G", last_name="O")


async def rows(app, table, **where) -> int:
    async with app.state.service.db.sessions() as session:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return await session.scalar(query)


async def test_deleting_a_user_removes_their_progress_and_no_one_elses(
    app, client, caller, movie, watch, publish, assert_error
):
    gone, stays = caller(), caller()
    films = [await movie() for _ in range(3)]
    for film in films:
        for user in (gone, stays):
            await watch(user, film.movie_id, 30.0)
    await publish(user_deleted(gone.id))

    async def cleaned() -> bool:
        return await rows(app, Progress, user_id=gone.id) == 0

    await wait_for(cleaned, message="progress removed")
    assert await rows(app, Viewer, user_id=gone.id) == 0
    assert await rows(app, Progress, user_id=stays.id) == 3
    # A report that arrives after the cleanup is refused, not stored as an orphan.
    assert_error(await watch(gone, films[0].movie_id, 40.0), 401, "Invalid or expired token")
    assert await rows(app, Progress, user_id=gone.id) == 0


async def test_deleting_a_movie_removes_everyones_progress_and_tombstones_it(
    app, client, caller, movie, watch, publish, projected, assert_error
):
    users = [caller() for _ in range(3)]
    doomed, kept = await movie(title="Doomed"), await movie(title="Kept")
    for user in users:
        for film in (doomed, kept):
            await watch(user, film.movie_id, 30.0)
    await publish(MovieDeleted(movie_id=doomed.movie_id, title="Doomed"))

    async def cleaned() -> bool:
        return await rows(app, Progress, movie_id=doomed.movie_id) == 0

    await wait_for(cleaned, message="movie's progress removed")
    assert (await projected(doomed.movie_id)).deleted
    for user in users:
        listed = (await client.get("/api/playback/history", headers=user.headers)).json()
        assert [e["movie"]["title"] for e in listed] == ["Kept"]
    assert_error(await watch(caller(), doomed.movie_id, 1.0), 404, "Movie not found")
    assert_error(await watch(users[0], doomed.movie_id, 50.0), 404, "Movie not found")
    popular = (await client.get("/api/playback/popular")).json()
    assert [m["title"] for m in popular] == ["Kept"]


async def test_reports_racing_a_movie_deletion_never_leave_an_orphan(
    app, caller, movie, watch, publish
):
    film = await movie()
    users = [caller() for _ in range(12)]

    async def report(user) -> int:
        return (await watch(user, film.movie_id, 10.0)).status_code

    early = [asyncio.create_task(report(u)) for u in users[:6]]
    await publish(MovieDeleted(movie_id=film.movie_id))
    late = [asyncio.create_task(report(u)) for u in users[6:]]
    statuses = await asyncio.gather(*early, *late)
    assert set(statuses) <= {200, 404}, statuses

    async def cleaned() -> bool:
        return await rows(app, Progress, movie_id=film.movie_id) == 0

    await wait_for(cleaned, message="cleanup done")
    assert await report(caller()) == 404
    assert await rows(app, Progress, movie_id=film.movie_id) == 0
