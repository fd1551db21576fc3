"""API.md Ratings: upsert, lists, the public summary, owner-only changes and their errors."""

from __future__ import annotations

import uuid

from streamia_kit.testing import wait_for

RATING_FIELDS = {"id", "_id", "movieId", "userId", "rating", "createdAt", "updatedAt"}


async def rate(client, user, movie_id: str, stars: object):
    return await client.post(
        "/api/ratings", json={"movieId": movie_id, "rating": stars}, headers=user.headers
    )


async def test_rating_a_movie_creates_then_updates_the_callers_rating(client, caller, movie):
    user = caller()
    film = await movie()
    created = await rate(client, user, film.movie_id, 4)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["message"] and set(body["rating"]) == RATING_FIELDS
    assert body["rating"]["id"] == body["rating"]["_id"]
    assert body["rating"]["rating"] == 4 and body["rating"]["userId"] == user.id
    assert body["summary"] == {"average": 4.0, "count": 1}
    updated = await rate(client, user, film.movie_id, 2)
    assert updated.status_code == 200, updated.text
    assert updated.json()["rating"]["id"] == body["rating"]["id"]
    assert updated.json()["summary"] == {"average": 2.0, "count": 1}


async def test_the_public_summary_has_average_count_and_distribution(client, caller, movie):
    film = await movie()
    for stars in (5, 4, 4):
        await rate(client, caller(), film.movie_id, stars)
    resp = await client.get(f"/api/ratings/movie/{film.movie_id}")
    assert resp.status_code == 200
    assert resp.json() == {
        "movieId": film.movie_id,
        "average": 4.33,
        "count": 3,
        "distribution": {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1},
    }
    unrated = await movie()
    empty = (await client.get(f"/api/ratings/movie/{unrated.movie_id}")).json()
    assert empty["count"] == 0 and empty["average"] == 0
    assert set(empty["distribution"].values()) == {0}


async def test_every_write_refreshes_the_cached_summary(client, app, caller, movie):
    cache = app.state.service.infra.cache
    key = lambda movie_id: f"movie:{movie_id}:rating"  # noqa: E731
    film = await movie()
    user, other = caller(), caller()
    await client.get(f"/api/ratings/movie/{film.movie_id}")  # warms the cache with zeros
    first = (await rate(client, user, film.movie_id, 5)).json()["rating"]
    assert (await cache.get(key(film.movie_id)))["count"] == 1
    await rate(client, other, film.movie_id, 1)
    assert (await cache.get(key(film.movie_id)))["average"] == 3.0
    await client.put(f"/api/ratings/{first['id']}", json={"rating": 3}, headers=user.headers)
    assert (await cache.get(key(film.movie_id)))["distribution"]["3"] == 1
    await client.delete(f"/api/ratings/{first['id']}", headers=user.headers)
    cached = await cache.get(key(film.movie_id))
    assert cached == (await client.get(f"/api/ratings/movie/{film.movie_id}")).json()
    assert cached["count"] == 1 and cached["average"] == 1.0


async def test_the_rating_must_be_a_whole_number_from_1_to_5(client, caller, movie, assert_error):
    film = await movie()
    user = caller()
    for bad in (0, 6, "4.5", 4.5, True, None, [4], 10**30, "four"):
        body = assert_error(await rate(client, user, film.movie_id, bad), 400, "Validation error")
        assert "rating" in body["details"]["fieldErrors"], bad
    missing = await client.post("/api/ratings", json={"rating": 3}, headers=user.headers)
    assert "movieId" in assert_error(missing, 400)["details"]["fieldErrors"]
    garbage = await client.post(
        "/api/ratings", content=b"{", headers={**user.headers, "content-type": "application/json"}
    )
    assert_error(garbage, 400)


async def test_rating_an_unknown_or_deleted_movie_is_404(
    client, caller, movie, publish, projected, assert_error
):
    from streamia_kit.events import MovieDeleted

    assert_error(await rate(client, caller(), uuid.uuid4().hex, 3), 404, "Movie not found")
    film = await movie()
    await publish(MovieDeleted(movie_id=film.movie_id))

    async def deleted() -> bool:
        return (await projected(film.movie_id)).deleted

    await wait_for(deleted, message="tombstone")
    assert_error(await rate(client, caller(), film.movie_id, 3), 404, "Movie not found")
    assert_error(await client.get(f"/api/ratings/movie/{film.movie_id}"), 404, "Movie not found")


async def test_a_user_reads_their_own_ratings_and_an_admin_reads_anyones(
    client, caller, movie, assert_error
):
    owner, other, admin = caller(), caller(), caller("admin")
    films = [await movie() for _ in range(3)]
    for film in films:
        await rate(client, owner, film.movie_id, 3)
    own = await client.get(f"/api/ratings/{owner.id}", headers=owner.headers)
    assert own.status_code == 200 and len(own.json()) == 3
    assert all(set(r) == RATING_FIELDS for r in own.json())
    assert [r["movieId"] for r in own.json()] == [f.movie_id for f in reversed(films)]
    paged = await client.get(f"/api/ratings/{owner.id}?limit=2&page=2", headers=owner.headers)
    assert [r["movieId"] for r in paged.json()] == [films[0].movie_id]
    assert (
        await client.get(f"/api/ratings/{owner.id}", headers=admin.headers)
    ).json() == own.json()
    assert_error(await client.get(f"/api/ratings/{owner.id}", headers=other.headers), 403)
    assert (await client.get(f"/api/ratings/{other.id}", headers=other.headers)).json() == []
    assert_error(await client.get(f"/api/ratings/{owner.id}"), 401, "No token provided")
    assert_error(
        await client.get(f"/api/ratings/{owner.id}?limit=1001", headers=owner.headers), 400
    )


async def test_only_the_owner_changes_or_deletes_a_rating(client, caller, movie, assert_error):
    owner, other, admin = caller(), caller(), caller("admin")
    film = await movie()
    rating = (await rate(client, owner, film.movie_id, 5)).json()["rating"]
    path = f"/api/ratings/{rating['id']}"
    for intruder in (other, admin):
        assert_error(await client.put(path, json={"rating": 1}, headers=intruder.headers), 403)
        assert_error(await client.delete(path, headers=intruder.headers), 403)
    assert_error(await client.put(path, json={"rating": 1}), 401, "No token provided")
    assert_error(await client.delete(path), 401, "No token provided")
    assert_error(await client.put(path, json={"rating": "1.5"}, headers=owner.headers), 400)
    changed = await client.put(path, json={"rating": 1}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["rating"]["rating"] == 1 and changed.json()["message"]
    assert changed.json()["summary"] == {"average": 1.0, "count": 1}
    deleted = await client.delete(path, headers=owner.headers)
    assert deleted.status_code == 200
    assert deleted.json()["summary"] == {"average": 0.0, "count": 0} and deleted.json()["message"]
    assert_error(await client.delete(path, headers=owner.headers), 404, "Rating not found")
    assert_error(await client.put(path, json={"rating": 2}, headers=owner.headers), 404)
    assert_error(
        await client.put("/api/ratings/%00", json={"rating": 2}, headers=owner.headers), 404
    )


async def test_writes_publish_rating_events_with_the_summary(probe, client, caller, movie):
    user = caller()
    film = await movie()
    rating = (await rate(client, user, film.movie_id, 4)).json()["rating"]
    await rate(client, user, film.movie_id, 2)
    await client.delete(f"/api/ratings/{rating['id']}", headers=user.headers)
    await wait_for(lambda: len(probe) == 3, message="three rating events")
    assert [e.type for e in probe] == ["rating.created", "rating.updated", "rating.deleted"]
    assert [e.data["summary"] for e in probe] == [
        {"average": 4.0, "count": 1},
        {"average": 2.0, "count": 1},
        {"average": 0.0, "count": 0},
    ]
    versions = [e.data["version"] for e in probe]
    assert versions == sorted(versions)
    assert all(e.data["rating_id"] == rating["id"] and e.data["user_id"] == user.id for e in probe)
