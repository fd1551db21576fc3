"""API.md Movies: list, get, create, update, delete, and who may write."""

import asyncio
import uuid

import pytest

from streamia_movies.movies.repository import MoviesRepository

MOVIE_KEYS = {
    "id",
    "_id",
    "title",
    "description",
    "category",
    "coverImage",
    "videoUrl",
    "duration",
    "videoFormat",
    "hasAudio",
    "subtitles",
    "provider",
    "rating",
    "plays",
    "createdAt",
    "updatedAt",
}


async def test_creating_an_external_movie_returns_the_full_representation(client, tokens):
    resp = await client.post(
        "/api/movies",
        headers=tokens("admin"),
        json={
            "title": "  El Laberinto ",
            "description": "Fauno",
            "category": "Fantasía",
            "videoUrl": "https://cdn.example.com/fauno.mp4",
            "duration": 118.5,
            "videoFormat": "MP4",
        },
    )

    assert resp.status_code == 201, resp.text
    body = resp.json()
    movie = body["data"]
    assert body["message"]
    assert set(movie) == MOVIE_KEYS
    assert movie["id"] == movie["_id"]
    assert movie["title"] == "El Laberinto"
    assert (movie["provider"], movie["videoFormat"], movie["duration"]) == (
        "external",
        "mp4",
        118.5,
    )
    assert movie["rating"] == {"average": 0.0, "count": 0}
    assert movie["subtitles"] == []
    assert movie["createdAt"].endswith("Z")


async def test_getting_a_movie_returns_source_and_data(client, new_movie):
    movie = await new_movie(client)

    resp = await client.get(f"/api/movies/{movie['id']}")

    assert resp.status_code == 200
    assert resp.json() == {"source": "local", "data": movie}


async def test_an_imported_movie_is_also_found_by_its_cloudinary_public_id(app, client, new_movie):
    movie = await new_movie(client)
    public_id = f"monolith-{uuid.uuid4().hex[:12]}"
    async with app.state.service.db.transaction() as session:
        stored = await MoviesRepository(session).get(movie["id"])
        assert stored is not None
        stored.external_id = public_id

    for _ in range(2):  # the second read must not come from a stale alias entry
        resp = await client.get(f"/api/movies/{public_id}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["id"] == movie["id"]


async def test_an_unknown_movie_is_404_movie_not_found(client, check_error):
    check_error(await client.get(f"/api/movies/{uuid.uuid4().hex}"), 404, "Movie not found")
    check_error(await client.get("/api/movies/" + "x" * 300), 404, "Movie not found")


@pytest.mark.parametrize(
    "body,field",
    [
        ({"videoUrl": "https://x.example/v.mp4"}, "title"),
        ({"title": "", "videoUrl": "https://x.example/v.mp4"}, "title"),
        ({"title": "t" * 201, "videoUrl": "https://x.example/v.mp4"}, "title"),
        ({"title": "A"}, "videoUrl"),
        ({"title": "A", "videoUrl": "javascript:alert(1)"}, "videoUrl"),
        ({"title": "A", "videoUrl": "https://x.example/v.mp4", "duration": -1}, "duration"),
        (
            {"title": "A", "videoUrl": "https://x.example/v.mp4", "videoFormat": "exe"},
            "videoFormat",
        ),
    ],
)
async def test_invalid_metadata_is_a_400_in_the_monolith_shape(
    client, tokens, check_error, body, field
):
    resp = await client.post("/api/movies", headers=tokens("admin"), json=body)

    error = check_error(resp, 400, "Validation error")
    assert field in error["details"]["fieldErrors"]


@pytest.mark.parametrize(
    "method,path",
    [
        ("post", "/api/movies"),
        ("post", "/api/movies/upload"),
        ("put", "/api/movies/{id}"),
        ("delete", "/api/movies/{id}"),
        ("post", "/api/movies/{id}/subtitles"),
    ],
)
async def test_writes_need_the_admin_role(client, tokens, new_movie, check_error, method, path):
    movie = await new_movie(client)
    url = path.format(id=movie["id"])

    check_error(await client.request(method, url, headers=tokens("user"), json={"title": "x"}), 403)
    check_error(await client.request(method, url, json={"title": "x"}), 401, "No token provided")
    check_error(
        await client.request(
            method, url, json={"title": "x"}, headers={"Authorization": "Bearer nope"}
        ),
        401,
        "Invalid or expired token",
    )
    assert (await client.get(f"/api/movies/{movie['id']}")).json()["data"]["title"] == movie[
        "title"
    ]


async def test_a_partial_update_changes_only_what_was_sent(client, tokens, new_movie):
    movie = await new_movie(client, description="old", category="Drama")
    await client.get(f"/api/movies/{movie['id']}")  # warm the cache

    resp = await client.put(
        f"/api/movies/{movie['id']}",
        headers=tokens("admin"),
        json={"title": "Nuevo título", "category": None},
    )

    assert resp.status_code == 200, resp.text
    assert resp.json()["message"]
    updated = resp.json()["data"]
    assert (updated["title"], updated["description"], updated["category"]) == (
        "Nuevo título",
        "old",
        None,
    )
    assert updated["updatedAt"] >= movie["updatedAt"]
    assert (await client.get(f"/api/movies/{movie['id']}")).json()["data"] == updated


async def test_updating_with_invalid_values_is_a_400(client, tokens, new_movie, check_error):
    movie = await new_movie(client)
    url = f"/api/movies/{movie['id']}"

    check_error(await client.put(url, headers=tokens("admin"), json={"title": ""}), 400)
    check_error(await client.put(url, headers=tokens("admin"), json={"title": None}), 400)
    check_error(await client.put(url, headers=tokens("admin"), json={"coverImage": "ftp://x"}), 400)


async def test_updating_or_deleting_an_unknown_movie_is_404(client, tokens, check_error):
    url = f"/api/movies/{uuid.uuid4().hex}"
    check_error(
        await client.put(url, headers=tokens("admin"), json={"title": "x"}), 404, "Movie not found"
    )
    check_error(await client.delete(url, headers=tokens("admin")), 404, "Movie not found")


async def test_deleting_a_movie_removes_it_and_evicts_the_cache(
    client, tokens, new_movie, check_error
):
    movie = await new_movie(client)
    await client.get(f"/api/movies/{movie['id']}")

    resp = await client.delete(f"/api/movies/{movie['id']}", headers=tokens("admin"))

    assert resp.status_code == 200 and resp.json()["message"]
    check_error(await client.get(f"/api/movies/{movie['id']}"), 404, "Movie not found")


async def test_concurrent_cache_misses_for_one_movie_reach_the_database_once(
    client, app, new_movie, monkeypatch
):
    movie = await new_movie(client)
    await app.state.movies.cache.invalidate(movie["id"])
    loads = 0
    original = MoviesRepository.public

    async def counting_load(self, movie_id):
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.05)  # keep the first load in flight while the others miss
        return await original(self, movie_id)

    monkeypatch.setattr(MoviesRepository, "public", counting_load)
    responses = await asyncio.gather(*(client.get(f"/api/movies/{movie['id']}") for _ in range(20)))

    assert {r.status_code for r in responses} == {200}
    assert loads == 1
    await client.get(f"/api/movies/{movie['id']}")
    assert loads == 1  # and the next read is a cache hit


async def test_the_list_keeps_the_monolith_envelope_with_paging(client, new_movie):
    category = f"cat-{uuid.uuid4().hex[:8]}"
    for i in range(3):
        await new_movie(client, title=f"M{i}", category=category)

    resp = await client.get("/api/movies", params={"limit": 2, "page": 1})

    body = resp.json()
    assert set(body) == {"source", "data", "total", "page", "limit"}
    assert (body["source"], body["page"], body["limit"], len(body["data"])) == ("local", 1, 2, 2)
    assert body["total"] >= 3


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"limit": 0}, {"limit": 101}, {"page": "x"}, {"sort": "random"}]
)
async def test_out_of_range_list_parameters_are_a_400(client, check_error, params):
    check_error(await client.get("/api/movies", params=params), 400, "Validation error")


async def test_a_load_overlapping_an_update_does_not_cache_the_old_row(
    client, app, tokens, new_movie, monkeypatch
):
    movie = await new_movie(client, title="Antes")
    await app.state.movies.cache.invalidate(movie["id"])
    original = MoviesRepository.public
    loading = asyncio.Event()
    release = asyncio.Event()

    async def slow_load(self, movie_id):
        row = await original(self, movie_id)
        loading.set()
        await release.wait()  # the old row is in hand while the update commits
        return row

    monkeypatch.setattr(MoviesRepository, "public", slow_load)
    stale_read = asyncio.create_task(client.get(f"/api/movies/{movie['id']}"))
    await loading.wait()
    await client.put(
        f"/api/movies/{movie['id']}", headers=tokens("admin"), json={"title": "Después"}
    )
    release.set()
    assert (await stale_read).json()["data"]["title"] == "Antes"
    monkeypatch.setattr(MoviesRepository, "public", original)

    assert (await client.get(f"/api/movies/{movie['id']}")).json()["data"]["title"] == "Después"
