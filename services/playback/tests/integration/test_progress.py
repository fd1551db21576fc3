"""PUT/GET progress: the stored state, its rules, its events and who may see it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from streamia_kit.testing import wait_for

FIELDS = {"movieId", "position", "duration", "percent", "finished", "updatedAt"}


async def test_a_report_is_stored_and_read_back_as_the_callers_position(
    client, caller, movie, watch
):
    user = caller()
    film = await movie()
    resp = await watch(user, film.movie_id, 408.0, 5640.0)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == FIELDS
    assert body["movieId"] == film.movie_id and body["position"] == 408.0
    assert body["duration"] == 5640.0 and body["percent"] == 7.2 and body["finished"] is False
    assert body["updatedAt"].endswith("Z")
    got = await client.get(f"/api/playback/progress/{film.movie_id}", headers=user.headers)
    assert got.status_code == 200 and got.json() == body


async def test_a_movie_is_finished_at_ninety_percent_or_in_its_last_two_minutes(
    caller, movie, watch
):
    user = caller()
    film, short = await movie(), await movie(duration=600.0)
    assert (await watch(user, film.movie_id, 5000.0)).json()["finished"] is False
    assert (await watch(user, film.movie_id, 5076.0)).json()["finished"] is True  # 90 %
    assert (await watch(user, short.movie_id, 470.0, 600.0)).json()["finished"] is False
    assert (await watch(user, short.movie_id, 481.0, 600.0)).json()["finished"] is True  # tail


async def test_another_users_progress_is_never_visible(client, caller, movie, watch, assert_error):
    owner, other = caller(), caller()
    film = await movie()
    await watch(owner, film.movie_id, 100.0)
    resp = await client.get(f"/api/playback/progress/{film.movie_id}", headers=other.headers)
    assert_error(resp, 404, "No progress for this movie")
    await watch(other, film.movie_id, 7.0)
    mine = await client.get(f"/api/playback/progress/{film.movie_id}", headers=owner.headers)
    assert mine.json()["position"] == 100.0
    for path in ("/api/playback/continue", "/api/playback/history"):
        listed = (await client.get(path, headers=other.headers)).json()
        assert [e["position"] for e in listed] == [7.0]


async def test_the_newest_client_timestamp_wins_so_two_tabs_do_not_fight(caller, movie, watch):
    user = caller()
    film = await movie()
    now = datetime.now(UTC)
    newer = await watch(user, film.movie_id, 900.0, at=now.isoformat())
    assert newer.json()["position"] == 900.0
    older = await watch(user, film.movie_id, 120.0, at=(now - timedelta(seconds=30)).isoformat())
    assert older.status_code == 200 and older.json()["position"] == 900.0
    later = await watch(user, film.movie_id, 910.0, at=(now + timedelta(seconds=1)).isoformat())
    assert later.json()["position"] == 910.0


async def test_a_client_time_without_a_zone_is_utc_and_one_with_a_zone_is_converted(
    caller, movie, watch
):
    user = caller()
    film = await movie()
    now = datetime.now(UTC)
    naive = (now - timedelta(seconds=20)).replace(tzinfo=None).isoformat()
    first = await watch(user, film.movie_id, 100.0, at=naive)
    assert first.status_code == 200, first.text  # was a 500: naive compared with aware
    paris = (now - timedelta(seconds=10)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert (await watch(user, film.movie_id, 200.0, at=paris)).json()["position"] == 200.0
    older = (now - timedelta(seconds=15)).replace(tzinfo=None).isoformat()
    assert (await watch(user, film.movie_id, 150.0, at=older)).json()["position"] == 200.0


async def test_a_client_clock_in_the_future_does_not_freeze_the_position(caller, movie, watch):
    user = caller()
    film = await movie()
    ahead = datetime.now(UTC) + timedelta(days=365)
    await watch(user, film.movie_id, 50.0, at=ahead.isoformat())
    assert (await watch(user, film.movie_id, 60.0)).json()["position"] == 60.0


async def test_the_first_report_publishes_started_and_finishing_publishes_finished_once(
    probe, caller, movie, watch
):
    user = caller()
    film = await movie()
    for position in (10.0, 20.0, 30.0, 5100.0, 5200.0):
        assert (await watch(user, film.movie_id, position)).status_code == 200
    await wait_for(lambda: len(probe) == 2, message="started and finished")
    # Two queues: the broker may deliver them in either order.
    events = {e.type: e.data for e in probe}
    assert events["playback.started"] == {"user_id": user.id, "movie_id": film.movie_id, "plays": 1}
    assert events["playback.finished"] == {"user_id": user.id, "movie_id": film.movie_id}
    # Rewatching from the start and finishing again is a new finish.
    await watch(user, film.movie_id, 0.0)
    await watch(user, film.movie_id, 5300.0)
    await wait_for(lambda: len(probe) == 3, message="second finish")
    assert probe[2].type == "playback.finished"


async def test_plays_counts_distinct_viewers(probe, caller, movie, watch):
    film = await movie()
    first, second = caller(), caller()
    await watch(first, film.movie_id, 1.0)
    await watch(first, film.movie_id, 2.0)
    await watch(second, film.movie_id, 1.0)
    await wait_for(lambda: len(probe) == 2, message="two starts")
    assert [e.data["plays"] for e in probe] == [1, 2]


async def test_an_unknown_movie_is_404_and_nothing_is_stored(
    client, caller, watch, fake_movies, assert_error
):
    user = caller()
    for movie_id in (uuid.uuid4().hex, "not%20an%20id", "x" * 65):
        resp = await watch(user, movie_id, 1.0)
        assert_error(resp, 404, "Movie not found")
    history = await client.get("/api/playback/history", headers=user.headers)
    assert history.json() == [] and history.headers["x-total-count"] == "0"


async def test_a_movie_the_projection_has_not_seen_yet_is_fetched_from_the_movie_service(
    caller, watch, fake_movies
):
    remote = fake_movies.add(title="Caught up")
    resp = await watch(caller(), remote["id"], 12.0)
    assert resp.status_code == 200, resp.text
    assert fake_movies.hits == [remote["id"]]


async def test_bad_positions_and_durations_are_400_with_the_field_named(
    caller, movie, watch, client, assert_error
):
    user = caller()
    film = await movie()
    cases = [
        ({"position": -1, "duration": 100}, "position"),
        ({"position": 1, "duration": -100}, "duration"),
        ({"position": 1, "duration": 0}, "duration"),
        ({"position": 1e12, "duration": 1e12}, "duration"),
        ({"position": 1e308, "duration": 100}, "position"),
        ({"position": 106, "duration": 100}, "position"),
        ({"position": "abc", "duration": 100}, "position"),
        ({"position": True, "duration": 100}, "position"),
        ({"position": None, "duration": 100}, "position"),
        ({"position": [], "duration": 100}, "position"),
        ({"duration": 100}, "position"),
        ({"position": 1}, "duration"),
        ({"position": 1, "duration": 100, "at": "yesterday"}, "at"),
    ]
    for body, field in cases:
        resp = await client.put(
            f"/api/playback/progress/{film.movie_id}", json=body, headers=user.headers
        )
        details = assert_error(resp, 400, "Validation error")["details"]
        assert field in details["fieldErrors"], (body, details)
    for raw in (
        b'{"position": NaN, "duration": 100}',
        b'{"position": Infinity, "duration": 100}',
        b'{"position": 1, "duration": "NaN"}',
        b"{nope",
        b"[]",
        b"",
    ):
        resp = await client.put(
            f"/api/playback/progress/{film.movie_id}",
            content=raw,
            headers={**user.headers, "content-type": "application/json"},
        )
        assert_error(resp, 400)
    assert_error(
        await client.get(f"/api/playback/progress/{film.movie_id}", headers=user.headers), 404
    )


async def test_numeric_strings_and_a_position_just_past_the_end_are_accepted(caller, movie, watch):
    user = caller()
    film = await movie()
    resp = await watch(user, film.movie_id, "95.5", "100")
    assert resp.status_code == 200 and resp.json()["position"] == 95.5
    resp = await watch(user, film.movie_id, 103.0, 100.0)
    assert resp.status_code == 200 and resp.json()["percent"] == 100.0


async def test_every_private_endpoint_needs_a_valid_bearer_token(client, assert_error):
    movie_id = uuid.uuid4().hex
    calls = [
        ("PUT", f"/api/playback/progress/{movie_id}", {"position": 1, "duration": 10}),
        ("GET", f"/api/playback/progress/{movie_id}", None),
        ("GET", "/api/playback/continue", None),
        ("GET", "/api/playback/history", None),
        ("DELETE", f"/api/playback/history/{movie_id}", None),
        ("DELETE", "/api/playback/history", None),
    ]
    for method, path, body in calls:
        assert_error(await client.request(method, path, json=body), 401, "No token provided")
        bad = {"Authorization": "Bearer not.a.token"}
        resp = await client.request(method, path, json=body, headers=bad)
        assert_error(resp, 401, "Invalid or expired token")


async def test_a_burst_of_writes_from_one_user_gets_429_and_leaves_others_alone(
    client, caller, movie, assert_error
):
    import asyncio

    user, neighbour = caller(), caller()
    film = await movie()
    path = f"/api/playback/progress/{film.movie_id}"

    async def put(who, i: int):
        body = {"position": i / 10, "duration": 5640}
        return await client.put(path, json=body, headers=who.headers)

    flood = await asyncio.gather(*(put(user, i) for i in range(30)))
    statuses = sorted(r.status_code for r in flood)
    assert statuses == [200] * 20 + [429] * 10  # the default limit: 20 per 10 s
    refused = next(r for r in flood if r.status_code == 429)
    body = assert_error(refused, 429)
    assert body["code"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "20"
    assert (await put(neighbour, 1)).status_code == 200
