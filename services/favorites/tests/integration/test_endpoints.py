"""API.md Favorites: every endpoint, its errors and who may call it."""

from __future__ import annotations

import uuid

FIELDS = {
    "id",
    "_id",
    "userId",
    "movieId",
    "note",
    "title",
    "poster",
    "videoUrl",
    "duration",
    "hasAudio",
    "category",
    "createdAt",
    "updatedAt",
}


async def test_adding_a_favorite_returns_it_filled_from_the_movie_projection(client, caller, movie):
    user = caller()
    film = await movie(title="Metropolis", category="sci-fi", has_audio=False)
    resp = await client.post(
        "/api/favorites", json={"movieId": film.movie_id, "note": "Lang!"}, headers=user.headers
    )
    assert resp.status_code == 201, resp.text
    fav = resp.json()
    assert set(fav) == FIELDS
    assert fav["id"] == fav["_id"] and fav["id"] != film.movie_id
    assert fav["movieId"] == film.movie_id and fav["note"] == "Lang!"
    assert fav["title"] == "Metropolis" and fav["category"] == "sci-fi"
    assert fav["poster"] == film.cover_image and fav["videoUrl"] == film.video_url
    assert fav["duration"] == film.duration and fav["hasAudio"] is False
    assert fav["createdAt"].endswith("Z")


async def test_listing_returns_a_bare_array_of_the_callers_favorites_newest_first(
    client, caller, movie
):
    user, other = caller(), caller()
    first, second = await movie(title="First"), await movie(title="Second")
    for film in (first, second):
        assert (
            await client.post(
                "/api/favorites", json={"movieId": film.movie_id}, headers=user.headers
            )
        ).status_code == 201
    await client.post("/api/favorites", json={"movieId": first.movie_id}, headers=other.headers)
    resp = await client.get("/api/favorites", headers=user.headers)
    assert resp.status_code == 200
    body = resp.json()
    assert [f["title"] for f in body] == ["Second", "First"]
    assert all(set(f) == FIELDS and f["note"] == "" and f["hasAudio"] is None for f in body)
    assert (await client.get("/api/favorites/", headers=caller().headers)).json() == []


async def test_listing_pages_with_page_and_limit(client, caller, movie):
    user = caller()
    films = [await movie(title=f"Film {i}") for i in range(3)]
    for film in films:
        await client.post("/api/favorites", json={"movieId": film.movie_id}, headers=user.headers)
    page1 = (await client.get("/api/favorites?limit=2", headers=user.headers)).json()
    page2 = (await client.get("/api/favorites?limit=2&page=2", headers=user.headers)).json()
    assert [f["title"] for f in page1] == ["Film 2", "Film 1"]
    assert [f["title"] for f in page2] == ["Film 0"]


async def test_invalid_paging_values_are_400(client, caller, assert_error):
    user = caller()
    for query in ("page=0", "limit=0", "limit=1001", "page=abc", "limit=1.5", "page=-1"):
        body = assert_error(
            await client.get(f"/api/favorites?{query}", headers=user.headers),
            400,
            "Validation error",
        )
        assert set(body["details"]["fieldErrors"]) <= {"page", "limit"}


async def test_adding_the_same_movie_twice_is_a_conflict(client, caller, movie, assert_error):
    user = caller()
    film = await movie()
    await client.post("/api/favorites", json={"movieId": film.movie_id}, headers=user.headers)
    resp = await client.post(
        "/api/favorites", json={"movieId": film.movie_id}, headers=user.headers
    )
    assert_error(resp, 409, "This movie is already in your favorites")


async def test_an_unknown_movie_is_404(client, caller, fake_movies, assert_error):
    resp = await client.post(
        "/api/favorites", json={"movieId": uuid.uuid4().hex}, headers=caller().headers
    )
    assert_error(resp, 404, "Movie not found")
    assert len(fake_movies.hits) == 1


async def test_bad_bodies_are_400_in_the_monolith_shape(client, caller, assert_error):
    user = caller()
    cases = [
        ({}, "movieId"),
        ({"movieId": 12345}, "movieId"),
        ({"movieId": "../etc/passwd"}, "movieId"),
        ({"movieId": "x" * 65}, "movieId"),
        ({"movieId": uuid.uuid4().hex, "note": "n" * 501}, "note"),
        ({"movieId": uuid.uuid4().hex, "note": "nul\u0000byte"}, "note"),
        ({"movieId": uuid.uuid4().hex, "note": 5}, "note"),
    ]
    for body, field in cases:
        resp = await client.post("/api/favorites", json=body, headers=user.headers)
        assert field in assert_error(resp, 400, "Validation error")["details"]["fieldErrors"]
    for raw in (b"{nope", b"[]", b'"x"', b""):
        resp = await client.post(
            "/api/favorites",
            content=raw,
            headers={**user.headers, "content-type": "application/json"},
        )
        assert_error(resp, 400)
    lone = b'{"movieId": "abc", "note": "\\ud800"}'
    resp = await client.post(
        "/api/favorites", content=lone, headers={**user.headers, "content-type": "application/json"}
    )
    assert "note" in assert_error(resp, 400)["details"]["fieldErrors"]


async def test_every_endpoint_needs_a_valid_bearer_token(client, caller, assert_error):
    fid = uuid.uuid4().hex
    calls = [
        ("GET", "/api/favorites", None),
        ("POST", "/api/favorites", {"movieId": fid}),
        ("PUT", f"/api/favorites/{fid}", {"note": "x"}),
        ("DELETE", f"/api/favorites/{fid}", None),
    ]
    for method, path, body in calls:
        assert_error(await client.request(method, path, json=body), 401, "No token provided")
        bad = {"Authorization": "Bearer not.a.token"}
        assert_error(
            await client.request(method, path, json=body, headers=bad),
            401,
            "Invalid or expired token",
        )


async def test_the_owner_updates_the_note_and_nobody_else_can_see_the_favorite(
    client, caller, movie, assert_error
):
    owner, other, admin = caller(), caller(), caller("admin")
    film = await movie(title="Vertigo")
    fav = (
        await client.post("/api/favorites", json={"movieId": film.movie_id}, headers=owner.headers)
    ).json()
    resp = await client.put(
        f"/api/favorites/{fav['id']}", json={"note": "rewatch"}, headers=owner.headers
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["message"] and body["favorite"]["note"] == "rewatch"
    assert body["favorite"]["id"] == fav["id"] and body["favorite"]["title"] == "Vertigo"
    for intruder in (other, admin):
        resp = await client.put(
            f"/api/favorites/{fav['id']}", json={"note": "mine now"}, headers=intruder.headers
        )
        assert_error(resp, 404, "Favorite not found")
    listed = (await client.get("/api/favorites", headers=owner.headers)).json()
    assert listed[0]["note"] == "rewatch"
    assert_error(
        await client.put(
            f"/api/favorites/{uuid.uuid4().hex}", json={"note": "x"}, headers=owner.headers
        ),
        404,
    )
    assert_error(
        await client.put(f"/api/favorites/{fav['id']}", json={}, headers=owner.headers),
        400,
        "Validation error",
    )
    cleared = await client.put(
        f"/api/favorites/{fav['id']}", json={"note": None}, headers=owner.headers
    )
    assert cleared.json()["favorite"]["note"] == ""


async def test_removing_by_movie_id_reports_the_removed_movie(client, caller, movie, assert_error):
    owner, other = caller(), caller()
    film = await movie(title="Alien")
    for user in (owner, other):
        await client.post("/api/favorites", json={"movieId": film.movie_id}, headers=user.headers)
    resp = await client.delete(f"/api/favorites/{film.movie_id}", headers=owner.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["message"]
    assert resp.json()["removedMovie"] == {"movieId": film.movie_id, "title": "Alien"}
    assert (await client.get("/api/favorites", headers=owner.headers)).json() == []
    assert len((await client.get("/api/favorites", headers=other.headers)).json()) == 1
    again = await client.delete(f"/api/favorites/{film.movie_id}", headers=owner.headers)
    assert_error(again, 404, "This movie is not in your favorites")
    assert_error(await client.delete("/api/favorites/%00", headers=owner.headers), 404)


async def test_adding_and_removing_publish_events_through_the_outbox(probe, client, caller, movie):
    from streamia_kit.testing import wait_for

    user = caller()
    film = await movie()
    fav = (
        await client.post("/api/favorites", json={"movieId": film.movie_id}, headers=user.headers)
    ).json()
    await client.delete(f"/api/favorites/{film.movie_id}", headers=user.headers)
    await wait_for(lambda: len(probe) == 2, message="two favorite events")
    assert [e.type for e in probe] == ["favorite.added", "favorite.removed"]
    assert all(
        e.data == {"favorite_id": fav["id"], "user_id": user.id, "movie_id": film.movie_id}
        for e in probe
    )
