"""Overload answers: a reader that gives up never breaks the answers of the readers it was
loading for, and a pool with no free connection is a 503 in the API.md shape with
Retry-After (movie, catalogue and stream alike), never a 500."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from streamia_kit.testing import serve_app, wait_for
from streamia_movies.media.storage import LocalMediaStore

pytestmark = pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)

POOL = 1  # one pooled connection and as many again at peaks: two held exhaust it


@contextlib.asynccontextmanager
async def every_connection_taken(app) -> AsyncIterator[None]:
    engine = app.state.service.db.engine
    async with contextlib.AsyncExitStack() as held:
        for _ in range(2 * POOL):
            await held.enter_async_context(engine.connect())
        yield


async def test_a_reader_past_its_deadline_leaves_the_readers_it_loaded_for_an_answer(
    app_factory, new_movie, check_error
):
    app = app_factory(database_pool_size=POOL, database_pool_timeout_seconds=5.0)
    async with serve_app(app) as client:
        movie = await new_movie(client, title="Nosferatu")  # never read: not cached
        cache = app.state.movies.cache
        url = f"/api/movies/{movie['id']}"
        async with every_connection_taken(app):
            # The first reader loads the movie for everyone and waits for a connection past
            # its deadline (1.25 s less the 0.25 s margin); the second joins its load.
            first = asyncio.create_task(client.get(url, headers={"X-Streamia-Deadline-Ms": "1250"}))
            await wait_for(lambda: cache._flight.loading(cache.key(movie["id"])))
            second = asyncio.create_task(client.get(url))
            check_error(await first, 504, code="deadline_exceeded")
        # The first reader's cancellation was its own (it reached the second as a bare
        # CancelledError: uvicorn's text/plain 500): the second loads the movie itself.
        resp = await second
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["title"] == "Nosferatu"


async def test_with_no_free_connection_movie_reads_and_streams_answer_503_json_with_retry_after(
    app_factory, upload, new_movie, check_error
):
    app = app_factory(database_pool_size=POOL, database_pool_timeout_seconds=0.3)
    async with serve_app(app) as client:
        uploaded = (await upload(client)).json()["data"]
        listed = await new_movie(client)
        async with every_connection_taken(app):
            for url in (
                f"/api/movies/{listed['id']}",
                f"/api/movies/{uploaded['id']}/stream",
                "/api/movies",
            ):
                resp = await client.get(url, headers={"Range": "bytes=0-1023"})
                check_error(resp, 503, code="database_unavailable")
                assert resp.headers["content-type"] == "application/json"
                assert int(resp.headers["retry-after"]) >= 1
        resp = await client.get(f"/api/movies/{uploaded['id']}/stream")
        assert resp.status_code == 200


class WatchedStore(LocalMediaStore):
    """The local store, noting whether the task opening a file holds a pooled connection."""

    held: dict[int, asyncio.Task[Any] | None]  # connection record id -> the task holding it
    holding_at_open: list[bool]

    async def open(self, key):
        me = asyncio.current_task()
        self.holding_at_open.append(any(task is me for task in self.held.values()))
        return await super().open(key)


async def test_a_stream_gives_its_connection_back_before_it_touches_the_disk(
    app_factory, upload, tmp_path
):
    store = WatchedStore(tmp_path / "watched-media")
    store.held, store.holding_at_open = {}, []
    app = app_factory(store=store)
    engine = app.state.service.db.engine.sync_engine
    event.listen(engine, "checkout", lambda _c, rec, _p: store.held.__setitem__(id(rec), _task()))
    event.listen(engine, "checkin", lambda _c, rec: store.held.pop(id(rec), None))
    async with serve_app(app) as client:
        movie = (await upload(client)).json()["data"]
        resp = await client.get(f"/api/movies/{movie['id']}/stream", headers={"Range": "bytes=0-9"})
        assert resp.status_code == 206
    assert store.holding_at_open == [False]


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: not a request's connection
        return None
