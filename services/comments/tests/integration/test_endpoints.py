"""API.md Comments: posting, public lists, owner edits, deletes, reports and moderation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from streamia_kit.events import Envelope, UserRegistered, UserUpdated
from streamia_kit.testing import wait_for

FIELDS = {"id", "_id", "movieId", "text", "status", "userId", "user", "createdAt", "updatedAt"}


async def post(client, user, movie_id: str, text: object):
    return await client.post(
        "/api/comments", json={"movieId": movie_id, "text": text}, headers=user.headers
    )


async def test_a_comment_carries_the_authors_name_but_never_the_email(
    client, caller, movie, publish, processed
):
    user = caller()
    named = await publish(
        UserRegistered(
            user_id=user.id, email="secret@example.com", first_name="Ana", last_name="García"
        )
    )
    await wait_for(lambda: processed(named), message="author projected")
    film = await movie()
    resp = await post(client, user, film.movie_id, "  <b>Great</b> film  ")
    assert resp.status_code == 201, resp.text
    comment = resp.json()
    assert set(comment) == FIELDS and comment["id"] == comment["_id"]
    assert comment["text"] == "<b>Great</b> film" and comment["status"] == "visible"
    author = {"_id": user.id, "id": user.id, "firstName": "Ana", "lastName": "García"}
    assert comment["userId"] == author and comment["user"] == author
    listed = await client.get(f"/api/comments/{film.movie_id}")
    assert listed.json() == [comment]
    assert "secret@example.com" not in listed.text and "email" not in listed.text


async def test_the_newest_display_name_wins(client, caller, movie, publish, processed):
    user = caller()
    film = await movie()
    comment = (await post(client, user, film.movie_id, "hello")).json()
    assert comment["user"]["firstName"] == ""
    newer = UserUpdated(user_id=user.id, email="e@example.com", first_name="New", last_name="N")
    older = UserRegistered(user_id=user.id, email="e@example.com", first_name="Old", last_name="O")

    old_env = Envelope.wrap(older, "streamia/users")
    new_env = Envelope.wrap(newer, "streamia/users")
    await publish(new_env)
    await publish(old_env)
    await wait_for(lambda: _both(processed, old_env, new_env), message="names consumed")
    listed = (await client.get(f"/api/comments/movie/{film.movie_id}")).json()
    assert listed[0]["user"]["firstName"] == "New"


async def _both(processed, *envelopes) -> bool:
    return all([await processed(e) for e in envelopes])


async def test_public_lists_are_newest_first_paged_and_served_on_both_paths(
    client, caller, movie, assert_error
):
    film = await movie()
    user = caller()
    for i in range(3):
        await post(client, user, film.movie_id, f"comment {i}")
    for path in (f"/api/comments/{film.movie_id}", f"/api/comments/movie/{film.movie_id}"):
        listed = (await client.get(path)).json()
        assert [c["text"] for c in listed] == ["comment 2", "comment 1", "comment 0"]
        paged = (await client.get(path + "?page=2&limit=2")).json()
        assert [c["text"] for c in paged] == ["comment 0"]
        assert_error(await client.get(path + "?limit=0"), 400, "Validation error")
        assert_error(await client.get(path + "?page=x"), 400, "Validation error")
    assert (await client.get(f"/api/comments/{uuid.uuid4().hex}")).json() == []
    assert (await client.get("/api/comments/%00")).json() == []


async def test_text_is_trimmed_and_must_be_1_to_500_characters(client, caller, movie, assert_error):
    film = await movie()
    user = caller()
    for bad in ("", "   ", "x" * 501, 42, None, "nul\u0000"):
        body = assert_error(await post(client, user, film.movie_id, bad), 400, "Validation error")
        assert "text" in body["details"]["fieldErrors"], bad
    padded = await post(client, user, film.movie_id, "  " + "y" * 500 + "  ")
    assert padded.status_code == 201 and len(padded.json()["text"]) == 500
    assert (
        "movieId"
        in assert_error(
            await client.post("/api/comments", json={"text": "hi"}, headers=user.headers), 400
        )["details"]["fieldErrors"]
    )
    assert_error(await post(client, user, uuid.uuid4().hex, "hi"), 404, "Movie not found")


async def test_writes_need_a_bearer_token(client, movie, assert_error):
    film = await movie()
    cid = uuid.uuid4().hex
    calls = [
        ("POST", "/api/comments", {"movieId": film.movie_id, "text": "x"}),
        ("PUT", f"/api/comments/{cid}", {"text": "x"}),
        ("DELETE", f"/api/comments/{cid}", None),
        ("POST", f"/api/comments/{cid}/report", None),
        ("GET", "/api/comments/moderation", None),
        ("PATCH", f"/api/comments/{cid}", {"status": "hidden"}),
    ]
    for method, path, body in calls:
        assert_error(await client.request(method, path, json=body), 401, "No token provided")


async def test_only_the_owner_edits_and_owner_or_admin_deletes(client, caller, movie, assert_error):
    owner, other, admin = caller(), caller(), caller("admin")
    film = await movie()
    comment = (await post(client, owner, film.movie_id, "first draft")).json()
    path = f"/api/comments/{comment['id']}"
    for intruder in (other, admin):
        assert_error(await client.put(path, json={"text": "hacked"}, headers=intruder.headers), 403)
    assert_error(await client.delete(path, headers=other.headers), 403)
    assert_error(await client.put(path, json={"text": " "}, headers=owner.headers), 400)
    edited = await client.put(path, json={"text": "final"}, headers=owner.headers)
    assert edited.status_code == 200 and edited.json()["text"] == "final"
    assert set(edited.json()) == FIELDS
    deleted = await client.delete(path, headers=owner.headers)
    assert deleted.status_code == 200 and deleted.json()["message"]
    assert_error(await client.delete(path, headers=owner.headers), 404, "Comment not found")
    assert_error(await client.put(path, json={"text": "x"}, headers=owner.headers), 404)
    second = (await post(client, owner, film.movie_id, "second")).json()
    by_admin = await client.delete(f"/api/comments/{second['id']}", headers=admin.headers)
    assert by_admin.status_code == 200
    assert (await client.get(f"/api/comments/{film.movie_id}")).json() == []


async def test_blocked_words_flag_a_comment_whatever_the_case_or_accents(client, caller, movie):
    film = await movie()
    user = caller()
    cases = {
        "Eres un CABRÓN": "flagged",
        "what a pile of SHIT": "flagged",
        "hijo   de  puta": "flagged",
        "Shitake mushrooms": "visible",
        "Computadora": "visible",
        "un cono de helado": "visible",
    }
    for text, status in cases.items():
        assert (await post(client, user, film.movie_id, text)).json()["status"] == status, text
    public = (await client.get(f"/api/comments/{film.movie_id}")).json()
    assert {c["text"] for c in public} == {t for t, s in cases.items() if s == "visible"}


async def test_the_word_list_is_configurable(make_app, caller, movie_for):
    from streamia_kit.testing import serve_app

    app = make_app(blocked_words=["spoiler"])
    async with serve_app(app) as client:
        film = await movie_for(app)
        user = caller()
        assert (await post(client, user, film.movie_id, "SPOILER: he dies")).json()[
            "status"
        ] == "flagged"
        assert (await post(client, user, film.movie_id, "mierda")).json()["status"] == "visible"


async def test_editing_reruns_the_filter(client, caller, movie):
    user = caller()
    film = await movie()
    comment = (await post(client, user, film.movie_id, "fuck this")).json()
    assert comment["status"] == "flagged"
    path = f"/api/comments/{comment['id']}"
    clean = (await client.put(path, json={"text": "I take it back"}, headers=user.headers)).json()
    assert clean["status"] == "visible"
    dirty = (await client.put(path, json={"text": "mierda"}, headers=user.headers)).json()
    assert dirty["status"] == "flagged"


async def test_an_admins_report_hides_a_comment_at_once(client, caller, movie):
    author, admin = caller(), caller("admin")
    film = await movie()
    comment = (await post(client, author, film.movie_id, "spam spam spam")).json()
    resp = await client.post(f"/api/comments/{comment['id']}/report", headers=admin.headers)
    assert resp.status_code == 200
    assert (await client.get(f"/api/comments/{film.movie_id}")).json() == []
    queue = (await client.get("/api/comments/moderation", headers=admin.headers)).json()
    assert [c["status"] for c in queue if c["id"] == comment["id"]] == ["hidden"]


async def _registered(publish, processed, user, days_ago: float) -> None:
    """Project `user` as an account made `days_ago` days ago (user.registered's time)."""
    event = UserRegistered(
        user_id=user.id, email=f"{user.id}@example.com", first_name="R", last_name="R"
    )
    envelope = Envelope.wrap(event, "streamia/users")
    envelope = envelope.model_copy(update={"time": datetime.now(UTC) - timedelta(days=days_ago)})
    await publish(envelope)
    await wait_for(lambda: processed(envelope), message="reporter projected")


async def test_reporting_flags_a_comment_for_the_moderation_queue(
    client, caller, movie, assert_error, publish, processed
):
    author, admin = caller(), caller("admin")
    reporters = [caller() for _ in range(3)]
    for reporter in reporters:
        await _registered(publish, processed, reporter, days_ago=2)
    reporter = reporters[0]
    film = await movie()
    comment = (await post(client, author, film.movie_id, "controversial take")).json()
    path = f"/api/comments/{comment['id']}"
    reported = await client.post(f"{path}/report", headers=reporter.headers)
    assert reported.status_code == 200 and reported.json()["message"]
    again = await client.post(f"{path}/report", headers=reporter.headers)
    assert again.status_code == 200
    # One account (reporting twice counts once) cannot hide it; admins see it coming.
    assert [c["id"] for c in (await client.get(f"/api/comments/{film.movie_id}")).json()] == [
        comment["id"]
    ]
    queue = (await client.get("/api/comments/moderation", headers=admin.headers)).json()
    mine = [c for c in queue if c["id"] == comment["id"]]
    assert mine and mine[0]["status"] == "visible" and mine[0]["reports"] == 1
    for other in reporters[1:]:  # the third distinct reporter hides it until a moderator decides
        assert (await client.post(f"{path}/report", headers=other.headers)).status_code == 200
    assert (await client.get(f"/api/comments/{film.movie_id}")).json() == []
    queue = (await client.get("/api/comments/moderation", headers=admin.headers)).json()
    mine = [c for c in queue if c["id"] == comment["id"]]
    assert mine and mine[0]["status"] == "flagged" and mine[0]["reports"] == 3
    assert_error(await client.get("/api/comments/moderation", headers=reporter.headers), 403)
    assert_error(
        await client.post(f"/api/comments/{uuid.uuid4().hex}/report", headers=reporter.headers),
        404,
        "Comment not found",
    )


async def test_a_reader_with_a_token_sees_which_comments_they_reported(client, caller, movie):
    """The web app shows "Reported" after a reload too (it showed "Report" again)."""
    author, reporter, other = caller(), caller(), caller()
    film = await movie()
    first = (await post(client, author, film.movie_id, "first take")).json()
    second = (await post(client, author, film.movie_id, "second take")).json()
    path = f"/api/comments/movie/{film.movie_id}"
    assert (
        await client.post(f"/api/comments/{first['id']}/report", headers=reporter.headers)
    ).status_code == 200

    mine = {
        c["id"]: c["reportedByMe"]
        for c in (await client.get(path, headers=reporter.headers)).json()
    }
    assert mine == {first["id"]: True, second["id"]: False}
    theirs = (await client.get(path, headers=other.headers)).json()
    assert [c["reportedByMe"] for c in theirs] == [False, False]
    # Anonymous readers get the monolith's shape, unchanged.
    assert all("reportedByMe" not in c for c in (await client.get(path)).json())


async def test_reports_from_accounts_younger_than_a_day_do_not_hide_a_comment(
    client, caller, movie, publish, processed
):
    author, admin = caller(), caller("admin")
    young = [caller() for _ in range(3)]
    for user in young[:2]:
        await _registered(publish, processed, user, days_ago=0.9)
    unknown = young[2]  # its user.registered has not arrived: as new as it gets
    old = [caller() for _ in range(2)]
    for user in old:
        await _registered(publish, processed, user, days_ago=1.1)
    film = await movie()
    comment = (await post(client, author, film.movie_id, "an unpopular opinion")).json()
    path = f"/api/comments/{comment['id']}"
    for user in [*young, *old]:
        assert (await client.post(f"{path}/report", headers=user.headers)).status_code == 200
    # Five reporters, two of them old enough: still shown to everybody.
    assert [c["id"] for c in (await client.get(f"/api/comments/{film.movie_id}")).json()] == [
        comment["id"]
    ]
    queue = (await client.get("/api/comments/moderation", headers=admin.headers)).json()
    mine = [c for c in queue if c["id"] == comment["id"]]
    assert mine and mine[0]["status"] == "visible" and mine[0]["reports"] == 5
    # The unknown account turns out to be old: its report counts at the next one.
    await _registered(publish, processed, unknown, days_ago=400)
    assert (await client.post(f"{path}/report", headers=young[0].headers)).status_code == 200
    assert (await client.get(f"/api/comments/{film.movie_id}")).json() == []


async def test_an_admin_hides_and_restores_a_comment(client, caller, movie, assert_error):
    author, admin = caller(), caller("admin")
    film = await movie()
    comment = (await post(client, author, film.movie_id, "borderline")).json()
    path = f"/api/comments/{comment['id']}"
    assert_error(await client.patch(path, json={"status": "hidden"}, headers=author.headers), 403)
    assert_error(
        await client.patch(path, json={"status": "flagged"}, headers=admin.headers),
        400,
        "Validation error",
    )
    assert_error(await client.patch(path, json={}, headers=admin.headers), 400)
    hidden = await client.patch(path, json={"status": "hidden"}, headers=admin.headers)
    assert hidden.status_code == 200 and hidden.json()["status"] == "hidden"
    assert (await client.get(f"/api/comments/movie/{film.movie_id}")).json() == []
    queue = (await client.get("/api/comments/moderation", headers=admin.headers)).json()
    assert comment["id"] in {c["id"] for c in queue}
    # The author's edit does not unhide it; a report of a hidden comment finds nothing.
    await client.put(path, json={"text": "edited"}, headers=author.headers)
    assert (await client.get(f"/api/comments/{film.movie_id}")).json() == []
    assert_error(await client.post(f"{path}/report", headers=caller().headers), 404)
    shown = await client.patch(path, json={"status": "visible"}, headers=admin.headers)
    assert shown.json()["status"] == "visible"
    assert [c["id"] for c in (await client.get(f"/api/comments/{film.movie_id}")).json()] == [
        comment["id"]
    ]
    assert_error(
        await client.patch(
            f"/api/comments/{uuid.uuid4().hex}", json={"status": "hidden"}, headers=admin.headers
        ),
        404,
    )


async def test_posting_and_deleting_publish_comment_events(probe, client, caller, movie):
    user = caller()
    film = await movie()
    comment = (await post(client, user, film.movie_id, "hi")).json()
    await client.delete(f"/api/comments/{comment['id']}", headers=user.headers)
    await wait_for(lambda: len(probe) == 2, message="two comment events")
    assert [e.type for e in probe] == ["comment.created", "comment.deleted"]
    assert all(
        e.data == {"comment_id": comment["id"], "user_id": user.id, "movie_id": film.movie_id}
        for e in probe
    )


async def test_the_author_is_told_when_reports_or_an_admin_hide_a_comment(
    probe, client, caller, movie, publish, processed
):
    author, admin = caller(), caller("admin")
    reporters = [caller() for _ in range(3)]
    for reporter in reporters:
        await _registered(publish, processed, reporter, days_ago=2)
    film = await movie()
    by_reports = (await post(client, author, film.movie_id, "first take")).json()
    by_report = (await post(client, author, film.movie_id, "second take")).json()
    by_patch = (await post(client, author, film.movie_id, "third take")).json()
    answers = [
        await client.post(f"/api/comments/{by_reports['id']}/report", headers=reporter.headers)
        for reporter in reporters
    ]
    answers.append(
        await client.post(f"/api/comments/{by_report['id']}/report", headers=admin.headers)
    )
    path = f"/api/comments/{by_patch['id']}"
    for _ in range(2):  # told once
        answers.append(await client.patch(path, json={"status": "hidden"}, headers=admin.headers))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]

    def hidden() -> list:
        return [e for e in probe if e.type == "comment.hidden"]

    await wait_for(lambda: len(hidden()) == 3, message="three comment.hidden")
    told = {e.data["comment_id"]: e.data for e in hidden()}
    assert told[by_reports["id"]] == {
        "comment_id": by_reports["id"],
        "user_id": author.id,
        "movie_id": film.movie_id,
        "movie_title": film.title,
        "text": "first take",
        "reason": "reports",
    }
    assert told[by_report["id"]]["reason"] == told[by_patch["id"]]["reason"] == "admin"
