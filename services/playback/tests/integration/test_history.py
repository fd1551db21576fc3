"""Continue watching and history: the caller's own entries with the projected movie,
most recent first, paged, and forgettable."""

from __future__ import annotations

import uuid


async def test_continue_lists_started_unfinished_movies_most_recent_first(
    client, caller, movie, watch
):
    user = caller()
    first, second, done = (
        await movie(title="First"),
        await movie(title="Second"),
        await movie(title="Done"),
    )
    await watch(user, first.movie_id, 60.0)
    await watch(user, done.movie_id, 5600.0)
    await watch(user, second.movie_id, 120.0)
    resp = await client.get("/api/playback/continue", headers=user.headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-total-count"] == "2"
    entries = resp.json()
    assert [e["movie"]["title"] for e in entries] == ["Second", "First"]
    assert entries[0]["position"] == 120.0 and entries[0]["percent"] == 2.1
    assert entries[0]["movie"]["poster"] == second.cover_image
    assert entries[0]["movie"]["duration"] == second.duration
    history = (await client.get("/api/playback/history", headers=user.headers)).json()
    assert [e["movie"]["title"] for e in history] == ["Second", "Done", "First"]
    assert history[1]["finished"] is True


async def test_watching_again_moves_a_movie_to_the_front(client, caller, movie, watch):
    user = caller()
    a, b = await movie(title="A"), await movie(title="B")
    await watch(user, a.movie_id, 10.0)
    await watch(user, b.movie_id, 10.0)
    await watch(user, a.movie_id, 20.0)
    entries = (await client.get("/api/playback/continue", headers=user.headers)).json()
    assert [e["movie"]["title"] for e in entries] == ["A", "B"]


async def test_history_pages_with_total_count_and_link_headers(client, caller, movie, watch):
    user = caller()
    films = [await movie(title=f"Film {i}") for i in range(5)]
    for film in films:
        await watch(user, film.movie_id, 30.0)
    resp = await client.get("/api/playback/history?page=2&limit=2", headers=user.headers)
    assert resp.headers["x-total-count"] == "5"
    assert [e["movie"]["title"] for e in resp.json()] == ["Film 2", "Film 1"]
    assert "page=3" in resp.headers["link"] and 'rel="next"' in resp.headers["link"]
    assert "page=1" in resp.headers["link"] and 'rel="prev"' in resp.headers["link"]
    last = await client.get("/api/playback/history?page=3&limit=2", headers=user.headers)
    assert len(last.json()) == 1 and 'rel="next"' not in last.headers["link"]
    past = await client.get("/api/playback/history?page=9&limit=2", headers=user.headers)
    assert past.json() == [] and past.headers["x-total-count"] == "5"
    await watch(user, films[0].movie_id, 5640.0)  # finished: in the history, not in /continue
    resp = await client.get("/api/playback/continue?limit=2", headers=user.headers)
    assert len(resp.json()) == 2 and resp.headers["x-total-count"] == "4"
    nobody = caller()
    for path in ("/api/playback/history", "/api/playback/continue?page=2&limit=2"):
        resp = await client.get(path, headers=nobody.headers)
        assert resp.json() == [] and resp.headers["x-total-count"] == "0"


async def test_bad_list_parameters_are_400(client, caller, assert_error):
    user = caller()
    for query in ("page=0", "limit=0", "limit=1001", "page=abc"):
        resp = await client.get(f"/api/playback/history?{query}", headers=user.headers)
        assert_error(resp, 400, "Validation error")


async def test_forgetting_one_movie_removes_it_from_history_and_continue(
    client, caller, movie, watch, assert_error
):
    user, other = caller(), caller()
    keep, drop = await movie(title="Keep"), await movie(title="Drop")
    for who in (user, other):
        await watch(who, keep.movie_id, 10.0)
        await watch(who, drop.movie_id, 10.0)
    resp = await client.delete(f"/api/playback/history/{drop.movie_id}", headers=user.headers)
    assert resp.status_code == 200 and resp.json()["movieId"] == drop.movie_id
    history = (await client.get("/api/playback/history", headers=user.headers)).json()
    assert [e["movie"]["title"] for e in history] == ["Keep"]
    assert_error(
        await client.get(f"/api/playback/progress/{drop.movie_id}", headers=user.headers), 404
    )
    # Someone else's entry is untouched, and a second delete finds nothing.
    assert len((await client.get("/api/playback/history", headers=other.headers)).json()) == 2
    again = await client.delete(f"/api/playback/history/{drop.movie_id}", headers=user.headers)
    assert_error(again, 404, "This movie is not in your history")
    for bad in (uuid.uuid4().hex, "%00"):
        assert_error(await client.delete(f"/api/playback/history/{bad}", headers=user.headers), 404)


async def test_clearing_the_history_removes_only_the_callers_entries(client, caller, movie, watch):
    user, other = caller(), caller()
    films = [await movie() for _ in range(3)]
    for film in films:
        await watch(user, film.movie_id, 10.0)
    await watch(other, films[0].movie_id, 10.0)
    resp = await client.delete("/api/playback/history", headers=user.headers)
    assert resp.status_code == 200 and resp.json()["removed"] == 3
    assert (await client.get("/api/playback/history", headers=user.headers)).json() == []
    assert (await client.get("/api/playback/continue", headers=user.headers)).json() == []
    assert len((await client.get("/api/playback/history", headers=other.headers)).json()) == 1


async def test_a_locally_stored_movies_media_urls_are_absolute_like_the_movies_apis(
    app, client, caller, movie, watch
):
    """A movie uploaded to Streamia has relative media paths in its events; every playback
    list answers them on the public base URL, as `/api/movies` does (docs/api.md)."""
    base = app.state.service.settings.public_base
    assert base.startswith("http")
    local = await movie(cover_image="/media/posters/a.jpg", video_url="/media/videos/a.mp4")
    user = caller()
    assert (await watch(user, local.movie_id, 60.0)).status_code == 200
    expected = (f"{base}/media/posters/a.jpg", f"{base}/media/videos/a.mp4")
    for path in ("/api/playback/continue", "/api/playback/history"):
        (entry,) = (await client.get(path, headers=user.headers)).json()
        assert (entry["movie"]["poster"], entry["movie"]["videoUrl"]) == expected, path
    # The charts are shared with every other test on PostgreSQL (this movie may rank below
    # their top 100): every item's URLs are absolute, and this movie's when it is there.
    for path in ("/api/playback/popular", "/api/playback/trending"):
        ranked = (await client.get(path, params={"limit": 100})).json()
        assert ranked or path.endswith("trending"), path  # trending follows the event
        for item in ranked:
            for url in (item["poster"], item["videoUrl"]):
                assert url is None or url.startswith(("http://", "https://")), (path, item)
            if item["movieId"] == local.movie_id:
                assert (item["poster"], item["videoUrl"]) == expected, path
