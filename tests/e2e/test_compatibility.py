"""Issue 9 through the gateway: an unmodified monolith client keeps working (API.md)."""

from __future__ import annotations

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
