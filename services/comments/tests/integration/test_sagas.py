"""Deletion sagas for comments: nothing of a deleted user or movie remains, and tombstones
refuse what arrives afterwards."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from streamia_comments.comments.models import Author, Comment, Report
from streamia_kit.events import MovieDeleted, UserDeleted, UserUpdated
from streamia_kit.testing import wait_for


def user_deleted(user_id: str) -> UserDeleted:
    return UserDeleted(user_id=user_id, email="gone@example.com", first_name="G", last_name="O")


async def count(app, model, *where) -> int:
    async with app.state.service.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def post(client, user, movie_id: str, text: str = "hello"):
    return await client.post(
        "/api/comments", json={"movieId": movie_id, "text": text}, headers=user.headers
    )


async def test_deleting_a_user_removes_their_comments_reports_and_name(
    client, app, caller, movie, publish, processed, assert_error
):
    gone, stays = caller(), caller()
    film = await movie()
    named = await publish(
        UserUpdated(user_id=gone.id, email="g@example.com", first_name="Gone", last_name="User")
    )
    await wait_for(lambda: processed(named), message="name projected")
    mine = (await post(client, gone, film.movie_id, "mine")).json()
    theirs = (await post(client, stays, film.movie_id, "theirs")).json()
    await client.post(f"/api/comments/{theirs['id']}/report", headers=gone.headers)
    await publish(user_deleted(gone.id))

    async def cleaned() -> bool:
        return (
            await count(app, Comment, Comment.user_id == gone.id) == 0
            and await count(app, Report, Report.reporter_id == gone.id) == 0
            and await count(app, Author, Author.user_id == gone.id) == 0
        )

    await wait_for(cleaned, message="user's traces removed")
    assert await count(app, Comment, Comment.id == theirs["id"]) == 1
    assert mine["id"] not in (await client.get(f"/api/comments/{film.movie_id}")).text
    assert_error(await post(client, gone, film.movie_id), 401, "Invalid or expired token")
    # A late user.updated does not bring the deleted user's name back.
    late = await publish(
        UserUpdated(user_id=gone.id, email="g@example.com", first_name="Back", last_name="Again")
    )
    await wait_for(lambda: processed(late), message="late update consumed")
    assert await count(app, Author, Author.user_id == gone.id) == 0


async def test_deleting_a_movie_removes_its_comments_and_refuses_new_ones(
    client, app, caller, movie, publish, projected, assert_error
):
    film, kept = await movie(), await movie()
    user = caller()
    for f in (film, kept):
        await post(client, user, f.movie_id)
    await publish(MovieDeleted(movie_id=film.movie_id))

    async def cleaned() -> bool:
        return (await projected(film.movie_id)).deleted and await count(
            app, Comment, Comment.movie_id == film.movie_id
        ) == 0

    await wait_for(cleaned, message="movie's comments removed")
    assert len((await client.get(f"/api/comments/{kept.movie_id}")).json()) == 1
    assert_error(await post(client, caller(), film.movie_id), 404, "Movie not found")


async def test_comments_racing_a_user_deletion_never_leave_an_orphan(
    client, app, caller, movie, publish
):
    user = caller()
    films = [await movie() for _ in range(3)]

    async def write(i: int) -> int:
        return (await post(client, user, films[i % 3].movie_id, f"c{i}")).status_code

    early = [asyncio.create_task(write(i)) for i in range(6)]
    await publish(user_deleted(user.id))
    late = [asyncio.create_task(write(i)) for i in range(6, 12)]
    statuses = await asyncio.gather(*early, *late)
    assert set(statuses) <= {201, 401}, statuses

    async def done() -> bool:
        return (await post(client, user, films[0].movie_id)).status_code == 401 and await count(
            app, Comment, Comment.user_id == user.id
        ) == 0

    await wait_for(done, message="cleanup complete")
    assert await count(app, Comment, Comment.user_id == user.id) == 0
