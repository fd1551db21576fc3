"""Issue 9 through the gateway: an unmodified monolith client keeps working (API.md)."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e


def error_code(resp: httpx.Response, status: int) -> str:
    """The `code` of a JSON error in API.md's shape, after checking its status."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert body["error"] == body["message"], body
    return body["code"]


async def test_one_trailing_slash_gets_the_same_answer_and_never_a_redirect(
    platform, api: httpx.AsyncClient, admin_headers, harness
) -> None:
    account = await platform.register(api)
    auth = harness.bearer(account.token)

    resp = await api.get("/api/users/me/", headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["id"] == account.id

    login = {"email": account.email, "password": account.password}
    resp = await api.post("/api/users/login/", json=login)
    assert resp.status_code == 200, resp.text

    resp = await api.post("/api/movies/", headers=admin_headers, json=harness.new_movie())
    assert resp.status_code == 201, resp.text
    movie_id = resp.json()["data"]["id"]
    resp = await api.put(
        f"/api/movies/{movie_id}/", headers=admin_headers, json={"title": "With a slash"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["title"] == "With a slash"

    for path in ("/api/favorites/", f"/api/comments/{movie_id}/", f"/api/ratings/{account.id}/"):
        resp = await api.get(path, headers=auth)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        assert resp.json() == [], path
    assert error_code(await api.get("/api/movies/nope/"), 404) == "movie_not_found"


async def test_numbers_sent_as_text_or_as_25_point_0_are_coerced_and_fractions_refused(
    platform, api: httpx.AsyncClient, admin_headers, harness
) -> None:
    for age in (25.0, "25"):
        resp = await api.post("/api/users/register", json=harness.new_user(age=age))
        assert resp.status_code == 201, resp.text
        assert resp.json()["user"]["age"] == 25
    for age in (25.5, "25.5", True):
        resp = await api.post("/api/users/register", json=harness.new_user(age=age))
        assert error_code(resp, 400) == "validation_error"
        assert "age" in resp.json()["details"]["fieldErrors"]

    account = await platform.register(api)
    resp = await api.post("/api/movies", headers=admin_headers, json=harness.new_movie())
    movie_id = resp.json()["data"]["id"]
    for stars in ("4", 3.0):
        resp = await api.post(
            "/api/ratings", headers=account.auth, json={"movieId": movie_id, "rating": stars}
        )
        assert resp.status_code in (200, 201), resp.text
        assert resp.json()["rating"]["rating"] == int(float(stars))
    resp = await api.post(
        "/api/ratings", headers=account.auth, json={"movieId": movie_id, "rating": 4.5}
    )
    assert error_code(resp, 400) == "validation_error"


async def test_every_comment_representation_carries_the_author_as_userId_without_the_email(
    platform, api: httpx.AsyncClient, admin_headers, harness
) -> None:
    account = await platform.register(api, firstName="Ana", lastName="García")
    movie_id = await api.post("/api/movies", headers=admin_headers, json=harness.new_movie())
    movie_id = movie_id.json()["data"]["id"]
    author = {"_id": account.id, "id": account.id, "firstName": "Ana", "lastName": "García"}

    async def author_shown() -> bool:
        listed = (await api.get(f"/api/comments/{movie_id}")).json()
        return bool(listed) and listed[0]["userId"] == author

    created = await api.post(
        "/api/comments", headers=account.auth, json={"movieId": movie_id, "text": "Great"}
    )
    assert created.status_code == 201, created.text
    # The display name comes from the users service's event: it may trail the first write.
    await harness.wait_until(author_shown, 10, message="the author's name on the comment")
    edited = await api.put(
        f"/api/comments/{created.json()['id']}", headers=account.auth, json={"text": "Better"}
    )
    listed = (await api.get(f"/api/comments/movie/{movie_id}")).json()
    for comment in (edited.json(), listed[0]):
        assert comment["userId"] == author and comment["user"] == author, comment
        assert account.email not in str(comment)


async def test_bare_array_lists_return_every_item_with_a_total_and_page_only_when_asked(
    platform, api: httpx.AsyncClient, admin_headers, harness
) -> None:
    account = await platform.register(api)
    movie_id = await api.post("/api/movies", headers=admin_headers, json=harness.new_movie())
    movie_id = movie_id.json()["data"]["id"]
    for n in range(25):
        resp = await api.post(
            "/api/comments", headers=account.auth, json={"movieId": movie_id, "text": f"#{n}"}
        )
        assert resp.status_code == 201, resp.text

    whole = await api.get(f"/api/comments/{movie_id}")
    assert len(whole.json()) == 25 and whole.headers["X-Total-Count"] == "25"
    assert "Link" not in whole.headers

    paged = await api.get(f"/api/comments/{movie_id}", params={"page": 2, "limit": 10})
    assert [c["text"] for c in paged.json()] == [f"#{n}" for n in range(14, 4, -1)]
    assert paged.headers["X-Total-Count"] == "25"
    links = httpx.Response(200, headers={"Link": paged.headers["Link"]}).links
    base = f"{platform.gateway}/api/comments/{movie_id}"
    assert links["next"]["url"] == f"{base}?page=3&limit=10"
    assert links["prev"]["url"] == f"{base}?page=1&limit=10"

    await api.post("/api/favorites", headers=account.auth, json={"movieId": movie_id})
    await api.post("/api/ratings", headers=account.auth, json={"movieId": movie_id, "rating": 5})
    for path in ("/api/favorites", f"/api/ratings/{account.id}"):
        resp = await api.get(path, headers=account.auth)
        assert len(resp.json()) == 1 and resp.headers["X-Total-Count"] == "1", path
    favorite = (await api.get("/api/favorites", headers=account.auth)).json()[0]
    assert favorite["userId"] == account.id and favorite["note"] == ""
    assert favorite["updatedAt"] and favorite["id"] == favorite["_id"]

    assert (await api.get("/api/movies")).json()["limit"] == 100


async def test_media_urls_are_absolute_and_a_movie_sent_back_unchanged_is_accepted(
    platform, api: httpx.AsyncClient, admin_headers, harness, sample_video
) -> None:
    # No title: it defaults to the file's name, as the monolith's did.
    resp = await api.post(
        "/api/movies/upload",
        headers=admin_headers,
        files={"video": ("My movie.mp4", sample_video.read_bytes(), "video/mp4")},
    )
    assert resp.status_code == 201, resp.text
    movie = resp.json()["data"]
    assert movie["title"] == "My movie"
    assert movie["videoUrl"] == f"{platform.gateway}/api/movies/{movie['id']}/stream"
    assert movie["coverImage"].startswith(platform.gateway + "/api/movies/media/")
    poster = await api.get(movie["coverImage"])
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHola\n"
    resp = await api.post(
        f"/api/movies/{movie['id']}/subtitles",
        headers=admin_headers,
        data={"language": "es"},
        files={"subtitle": ("es.vtt", vtt, "text/vtt")},
    )
    assert resp.status_code == 200, resp.text
    url = resp.json()["data"][0]["url"]
    assert url.startswith(platform.gateway + "/") and (await api.get(url)).content == vtt

    shown = (await api.get(f"/api/movies/{movie['id']}")).json()["data"]
    resp = await api.put(f"/api/movies/{movie['id']}", headers=admin_headers, json=shown)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["videoUrl"] == shown["videoUrl"]
    assert resp.json()["data"]["coverImage"] == shown["coverImage"]

    account = await platform.register(api)
    resp = await api.post("/api/favorites", headers=account.auth, json={"movieId": movie["id"]})
    assert resp.status_code == 201, resp.text
    assert resp.json()["videoUrl"] == shown["videoUrl"]
    assert resp.json()["poster"] == shown["coverImage"]


async def test_explore_category_is_a_literal_folded_substring_and_filters_echo_what_was_given(
    api: httpx.AsyncClient, admin_headers, harness
) -> None:
    marker = uuid.uuid4().hex[:8]
    for category in (f"Ciencia Ficción {marker}", f"Acción {marker}", f"A.ción {marker}x"):
        resp = await api.post(
            "/api/movies", headers=admin_headers, json=harness.new_movie(category=category)
        )
        assert resp.status_code == 201, resp.text

    resp = await api.get("/api/movies/explore", params={"category": f"FICCION {marker}"})
    body = resp.json()
    assert [m["category"] for m in body["data"]] == [f"Ciencia Ficción {marker}"]
    assert body["total"] == 1 and body["filters"] == {"category": f"FICCION {marker}"}
    # "." is a character, not a regex wildcard: it does not match "Acción".
    resp = await api.get("/api/movies/explore", params={"category": f".ción {marker}"})
    assert [m["category"] for m in resp.json()["data"]] == [f"A.ción {marker}x"]
    assert (await api.get("/api/movies/explore")).json()["filters"] == {}


async def test_the_monolith_media_store_status_route_answers_for_the_active_store(
    api: httpx.AsyncClient,
) -> None:
    for path in ("/api/cloudinary/status", "/api/cloudinary/status/"):
        resp = await api.get(path)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["status"] == "ok" and body["configured"] is True and body["message"]
