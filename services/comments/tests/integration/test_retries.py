"""Retrying a write safely: an `Idempotency-Key` makes a retry return the first answer
instead of posting twice, and a request whose deadline has passed does nothing."""

from __future__ import annotations

import asyncio
import uuid

from streamia_kit.deadlines import DEADLINE_HEADER
from streamia_kit.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER


async def _post(client, user, movie_id: str, text: str, key: str | None = None, **headers):
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    return await client.post(
        "/api/comments",
        json={"movieId": movie_id, "text": text},
        headers={**user.headers, **headers},
    )


async def _comments(client, movie_id: str) -> list[dict]:
    return (await client.get(f"/api/comments/{movie_id}")).json()


async def test_a_retry_with_the_same_key_returns_the_first_answer_and_posts_once(
    client, caller, movie
):
    film, user, key = await movie(), caller(), uuid.uuid4().hex
    first = await _post(client, user, film.movie_id, "once", key)
    assert first.status_code == 201, first.text
    assert REPLAYED_HEADER not in first.headers
    again = await _post(client, user, film.movie_id, "once", key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert [c["id"] for c in await _comments(client, film.movie_id)] == [first.json()["id"]]


async def test_the_same_key_with_another_body_is_a_422_and_posts_nothing(
    client, caller, movie, assert_error
):
    film, user, key = await movie(), caller(), uuid.uuid4().hex
    assert (await _post(client, user, film.movie_id, "first", key)).status_code == 201
    other = await _post(client, user, film.movie_id, "second", key)
    assert assert_error(other, 422)["code"] == "idempotency_key_reused"
    assert [c["text"] for c in await _comments(client, film.movie_id)] == ["first"]


async def test_a_key_belongs_to_its_user(client, caller, movie):
    film, key = await movie(), uuid.uuid4().hex
    mine = await _post(client, caller(), film.movie_id, "same words", key)
    theirs = await _post(client, caller(), film.movie_id, "same words", key)
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED_HEADER not in theirs.headers
    assert len(await _comments(client, film.movie_id)) == 2


async def test_without_a_key_each_request_posts(client, caller, movie):
    film, user = await movie(), caller()
    answers = await asyncio.gather(*(_post(client, user, film.movie_id, "x") for _ in range(2)))
    assert [a.status_code for a in answers] == [201, 201]
    assert len(await _comments(client, film.movie_id)) == 2


async def test_a_malformed_key_is_a_400_and_posts_nothing(client, caller, movie, assert_error):
    film, user = await movie(), caller()
    for key in ("k" * 256, "ключ", "with space", ""):
        resp = await client.post(
            "/api/comments",
            content=f'{{"movieId": "{film.movie_id}", "text": "x"}}'.encode(),
            headers={
                **user.headers,
                "content-type": "application/json",
                IDEMPOTENCY_HEADER.encode(): key.encode(),
            },
        )
        assert assert_error(resp, 400)["code"] == "invalid_idempotency_key"
    assert await _comments(client, film.movie_id) == []


async def test_a_write_whose_deadline_has_passed_is_refused_and_posts_nothing(
    client, caller, movie, assert_error
):
    film, user = await movie(), caller()
    resp = await _post(client, user, film.movie_id, "late", **{DEADLINE_HEADER: "0"})
    assert assert_error(resp, 504)["code"] == "deadline_exceeded"
    assert await _comments(client, film.movie_id) == []


async def test_a_key_whose_request_missed_its_deadline_is_free_for_the_retry(
    client, caller, movie, assert_error
):
    film, user, key = await movie(), caller(), uuid.uuid4().hex
    late = await _post(client, user, film.movie_id, "retry me", key, **{DEADLINE_HEADER: "0"})
    assert assert_error(late, 504)["code"] == "deadline_exceeded"
    retry = await _post(client, user, film.movie_id, "retry me", key)
    assert retry.status_code == 201 and REPLAYED_HEADER not in retry.headers
    assert [c["text"] for c in await _comments(client, film.movie_id)] == ["retry me"]
