"""The shared movie projection: newest version wins, tombstones are final, catch-up client."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from sqlalchemy import MetaData, select

from streamia_catalogue_projection import (
    MOVIE,
    USER,
    MovieClient,
    MovieProjection,
    ProjectionSettings,
    Tombstones,
    projection_tables,
    snapshot_from_api,
    valid_id,
)
from streamia_kit.bus import MalformedMessage
from streamia_kit.db import NAMING, Database, ensure_database
from streamia_kit.errors import NotFound, ServiceUnavailable
from streamia_kit.events import MovieDeleted, MovieUpdated
from streamia_kit.telemetry import Tracing
from streamia_kit.testing import Stack, free_port, until_lock_waiters


class ProjectingSettings(ProjectionSettings):
    service_name = "favorites"  # any service that projects movies: it picks the database


@contextlib.asynccontextmanager
async def projection_db(stack: Stack) -> AsyncIterator[tuple[Database, MovieProjection]]:
    settings = ProjectingSettings(**stack.overrides())
    metadata = MetaData(naming_convention=NAMING)
    movies, tombstones = projection_tables(metadata)
    url = settings.resolved_database_url()
    await ensure_database(url)
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    client = MovieClient(f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    try:
        yield database, MovieProjection(movies, Tombstones(tombstones), client)
    finally:
        await client.close()
        await database.dispose()


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[tuple[Database, MovieProjection]]:
    async with projection_db(stack) as found:
        yield found


@pytest.fixture
async def pg_db(distributed_stack: Stack) -> AsyncIterator[tuple[Database, MovieProjection]]:
    async with projection_db(distributed_stack) as found:
        yield found


def snapshot(movie_id: str, title: str, version: float) -> MovieUpdated:
    return MovieUpdated(movie_id=movie_id, title=title, version=version)


async def test_the_newest_version_wins_and_a_deleted_movie_stays_deleted(db):
    database, projection = db
    movie_id = uuid.uuid4().hex
    for title, version in (("v2", 2.0), ("v1", 1.0), ("v3", 3.0)):
        async with database.transaction() as session:
            await projection.apply(session, snapshot(movie_id, title, version))
    async with database.sessions() as session:
        assert (await projection.get(session, movie_id)).title == "v3"
    async with database.transaction() as session:
        await projection.remove(session, MovieDeleted(movie_id=movie_id))
        await projection.apply(session, snapshot(movie_id, "zombie", 99.0))
    async with database.transaction() as session:
        movie = await projection.get(session, movie_id)
        assert movie.deleted and movie.title == "v3"
        assert await projection.tombstones.is_buried(session, MOVIE, movie_id)
        with pytest.raises(NotFound):
            await projection.lookup(session, movie_id)
        with pytest.raises(NotFound):
            await projection.hold(session, movie)


async def test_a_batch_upsert_keeps_each_movies_newest_version_whatever_the_order(db):
    database, projection = db
    a, b, gone, tie = (uuid.uuid4().hex for _ in range(4))
    async with database.transaction() as session:
        await projection.apply(session, snapshot(b, "b5", 5.0))
        await projection.remove(session, MovieDeleted(movie_id=gone, title="Gone"))
    async with database.transaction() as session:
        await projection.apply_many(
            session,
            [
                snapshot(a, "a2", 2.0),
                snapshot(b, "b4", 4.0),  # older than what is stored
                snapshot(a, "a3", 3.0),
                snapshot(gone, "zombie", 9.0),
                snapshot(a, "a1", 1.0),  # older than the one before it in the batch
                snapshot(tie, "first", 7.0),
                snapshot(tie, "second", 7.0),  # not newer: as if applied in order, ignored
            ],
        )
    async with database.sessions() as session:
        found = await projection.get_many(session, [a, b, gone, tie])
    assert (found[a].title, found[a].version) == ("a3", 3.0)
    assert found[tie].title == "first"
    assert found[b].title == "b5"
    assert found[gone].deleted and found[gone].title == "Gone"


async def test_concurrent_batches_over_the_same_movies_in_opposite_orders_never_deadlock(pg_db):
    """Two consumer workers' batches (one statement each) lock the rows they upsert; in
    their own event orders, A-then-B against B-then-A, the second would hold B and wait for
    A while the first held A and waited for B. A third transaction holding A lines them up
    so that this happens whenever the batch writes rows in event order."""
    database, projection = pg_db
    a, b = sorted(uuid.uuid4().hex for _ in range(2))
    async with database.transaction() as session:
        await projection.apply_many(session, [snapshot(a, "a1", 1.0), snapshot(b, "b1", 1.0)])

    async def apply(*events: MovieUpdated) -> None:
        async with database.transaction() as session:
            await projection.apply_many(session, list(events))

    table = projection.table
    async with database.transaction() as blocker:
        await blocker.execute(
            select(table.c.movie_id).where(table.c.movie_id == a).with_for_update()
        )
        first = asyncio.create_task(apply(snapshot(a, "a2", 2.0), snapshot(b, "b2", 2.0)))
        await until_lock_waiters(database, 1, "the first batch waiting for A")
        second = asyncio.create_task(apply(snapshot(b, "b3", 3.0), snapshot(a, "a3", 3.0)))
        await until_lock_waiters(database, 2, "the second batch waiting")
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert results == [None, None]
    async with database.sessions() as session:
        found = await projection.get_many(session, [a, b])
    assert (found[a].title, found[b].title) == ("a3", "b3")


async def test_a_batch_with_an_invalid_movie_id_writes_nothing(db):
    database, projection = db
    good = uuid.uuid4().hex
    with pytest.raises(MalformedMessage):
        async with database.transaction() as session:
            await projection.apply_many(
                session, [snapshot(good, "ok", 1.0), snapshot("../etc", "bad", 1.0)]
            )
    async with database.sessions() as session:
        assert await projection.get(session, good) is None


async def test_a_tombstone_for_an_unknown_movie_refuses_a_caught_up_snapshot(db):
    database, projection = db
    movie_id = uuid.uuid4().hex
    async with database.transaction() as session:
        await projection.remove(session, MovieDeleted(movie_id=movie_id, title="Gone"))
    with pytest.raises(NotFound):
        async with database.transaction() as session:
            await projection.hold(session, snapshot(movie_id, "late", 5.0))


async def test_a_buried_user_fails_the_guard(db):
    database, projection = db
    user_id = uuid.uuid4().hex
    async with database.transaction() as session:
        assert await projection.tombstones.guard(session, USER, user_id)
    async with database.transaction() as session:
        await projection.tombstones.bury(session, USER, user_id)
        await projection.tombstones.bury(session, USER, user_id)  # idempotent
    async with database.transaction() as session:
        assert not await projection.tombstones.guard(session, USER, user_id)


def test_ids_are_checked_before_they_reach_sql_or_urls():
    assert valid_id(uuid.uuid4().hex) and valid_id("64f1a2b3c4d5e6f7a8b9c0d1")
    for bad in ("", "../x", "a b", "x" * 65, "\x00", 5, None):
        assert not valid_id(bad)


def test_an_api_movie_becomes_a_snapshot():
    data = {
        "id": "m1",
        "title": "T",
        "coverImage": "c",
        "videoUrl": "v",
        "duration": 10,
        "hasAudio": False,
        "category": "k",
        "updatedAt": "2025-01-01T00:00:00.000Z",
    }
    snap = snapshot_from_api(data, "m1")
    assert (snap.title, snap.cover_image, snap.video_url, snap.duration, snap.category) == (
        "T",
        "c",
        "v",
        10.0,
        "k",
    )
    assert snap.has_audio is False and snap.version == 1735689600.0
    assert snapshot_from_api({**data, "hasAudio": "yes"}, "m1").has_audio is None
    assert snapshot_from_api({**data, "id": "other"}, "m1") is None
    assert snapshot_from_api(None, "m1") is None


TRACEPARENTS: list[str | None] = []  # what the movie server was sent, newest last


@pytest.fixture
async def movie_server() -> AsyncIterator[tuple[str, list[int]]]:
    statuses: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        TRACEPARENTS.append(request.headers.get("traceparent"))
        status = statuses.pop(0) if statuses else 200
        if status != 200:
            return web.json_response({"error": "x"}, status=status)
        movie_id = request.match_info["id"]
        return web.json_response({"source": "local", "data": {"id": movie_id, "title": "Up"}})

    app = web.Application()
    app.router.add_get("/api/movies/{id}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", statuses
    await runner.cleanup()


async def test_the_client_maps_answers_and_opens_its_breaker_on_failures(movie_server):
    url, statuses = movie_server
    client = MovieClient(url, timeout_seconds=1.0)
    try:
        assert (await client.fetch("m1")).title == "Up"
        statuses.append(404)
        assert await client.fetch("m2") is None
        statuses.extend([500] * 10)
        for _ in range(10):
            try:
                await client.fetch("m3")
            except ServiceUnavailable as exc:
                assert exc.status == 503 and exc.headers["Retry-After"]
                if client.breaker.acquire() is None:
                    break
        assert client.breaker.acquire() is None
        with pytest.raises(ServiceUnavailable):
            await client.fetch("m1")  # refused without a call while open
        assert statuses  # the open breaker left the remaining failures unanswered
    finally:
        await client.close()


async def test_a_lookup_carries_the_callers_trace(movie_server):
    url, _ = movie_server
    tracing = Tracing.disabled()
    client = MovieClient(url, timeout_seconds=1.0)
    try:
        with tracing.span_after(None, "caller") as span:
            await client.fetch("m1")
        trace_id = format(span.get_span_context().trace_id, "032x")
        assert TRACEPARENTS[-1] is not None and TRACEPARENTS[-1].split("-")[1] == trace_id
    finally:
        await client.close()
