"""Group commit: concurrent hot-path reports share one UPDATE and one commit, and still obey
last-write-wins and the slow path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from streamia_kit.db import Database
from streamia_kit.testing import wait_for
from streamia_playback.progress import group_commit
from streamia_playback.progress.group_commit import BatchFailed, GroupCommit
from streamia_playback.progress.repository import Write


@pytest.fixture
def app(make_app):
    # Bursts of one user's reports are the point here, not the per-user limit.
    return make_app(progress_rate_limit="1000/second")


def batches() -> float:
    labels = {"service": "playback"}
    return REGISTRY.get_sample_value("streamia_playback_progress_batch_size_count", labels) or 0.0


async def test_concurrent_reports_of_many_viewers_share_batches(client, caller, movie, watch):
    viewers = [caller() for _ in range(40)]
    film = await movie()
    for viewer in viewers:  # first reports: the slow path, one at a time
        assert (await watch(viewer, film.movie_id, 10.0)).status_code == 200
    before = batches()
    answers = await asyncio.gather(
        *(watch(viewer, film.movie_id, 100.0 + i) for i, viewer in enumerate(viewers))
    )
    assert [a.status_code for a in answers] == [200] * len(viewers)
    assert [a.json()["position"] for a in answers] == [100.0 + i for i in range(len(viewers))]
    assert 0 < batches() - before < len(viewers)  # written, and together
    for i, viewer in enumerate(viewers):
        got = await client.get(f"/api/playback/progress/{film.movie_id}", headers=viewer.headers)
        assert got.json()["position"] == 100.0 + i


@pytest.mark.parametrize("newer_first", [True, False])
async def test_two_tabs_reporting_at_once_leave_the_newest_client_time(
    client, caller, movie, watch, newer_first
):
    user = caller()
    film = await movie()
    now = datetime.now(UTC)
    first = await watch(user, film.movie_id, 10.0, at=(now - timedelta(minutes=1)).isoformat())
    assert first.status_code == 200
    newer = watch(user, film.movie_id, 900.0, at=now.isoformat())
    older = watch(user, film.movie_id, 120.0, at=(now - timedelta(seconds=30)).isoformat())
    answers = await asyncio.gather(*((newer, older) if newer_first else (older, newer)))
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.json()["position"] in (120.0, 900.0) for a in answers)
    got = await client.get(f"/api/playback/progress/{film.movie_id}", headers=user.headers)
    assert got.json()["position"] == 900.0


async def test_a_report_whose_batch_fails_is_written_by_its_own_request(
    app, client, caller, movie, watch, tmp_path
):
    user = caller()
    film = await movie()
    assert (await watch(user, film.movie_id, 10.0)).status_code == 200
    broken = Database(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/playback.db")
    app.state.playback.hot_path = GroupCommit(broken)
    try:
        resp = await watch(user, film.movie_id, 20.0)
    finally:
        await broken.dispose()
    assert resp.status_code == 200 and resp.json()["position"] == 20.0
    got = await client.get(f"/api/playback/progress/{film.movie_id}", headers=user.headers)
    assert got.json()["position"] == 20.0


@pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)
async def test_a_connection_lost_between_batches_fails_only_the_next_batch(
    app, client, caller, movie, watch, monkeypatch
):
    """PostgreSQL: the writer keeps its connection while reports keep coming; when that
    connection dies, the batch on it fails (its requests write alone) and the next batch
    takes a fresh one."""
    user = caller()
    film = await movie()
    assert (await watch(user, film.movie_id, 10.0)).status_code == 200
    db = app.state.service.db
    real = group_commit.advance_many
    calls = 0

    async def then_lose_the_connection(connection, writes):
        nonlocal calls
        calls += 1
        stored = await real(connection, writes)
        if calls == 1:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
            async with db.engine.connect() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return stored

    monkeypatch.setattr(group_commit, "advance_many", then_lose_the_connection)
    hot_path = app.state.playback.hot_path
    now = datetime.now(UTC)

    def report(position: float, seconds: int) -> Write:
        at = now + timedelta(seconds=seconds)
        return Write(user.id, film.movie_id, position, 5640.0, False, at, at)

    # Two reports of one pair never share a batch: the second waits for the next one, on the
    # same held connection, which the first batch's end has killed.
    first, second = await asyncio.gather(
        hot_path.advance(report(20.0, 1)), hot_path.advance(report(30.0, 2)), return_exceptions=True
    )
    assert first is not None and first.position == 20.0
    assert isinstance(second, BatchFailed)
    third = await hot_path.advance(report(40.0, 3))  # a fresh connection
    assert third is not None and third.position == 40.0
    assert calls == 3
    got = await client.get(f"/api/playback/progress/{film.movie_id}", headers=user.headers)
    assert got.json()["position"] == 40.0


@pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)
async def test_the_writer_keeps_its_connection_for_a_moment_between_bursts(
    app, client, caller, movie, watch, monkeypatch
):
    user = caller()
    film = await movie()
    hot_path = app.state.playback.hot_path
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 30.0)
    assert (await watch(user, film.movie_id, 10.0)).status_code == 200
    kept = hot_path._connection
    assert kept is not None
    assert (await watch(user, film.movie_id, 20.0)).status_code == 200
    assert hot_path._connection is kept  # the next burst skipped the pool's checkout
    monkeypatch.setattr(group_commit, "LINGER_SECONDS", 0.2)
    assert (await watch(user, film.movie_id, 30.0)).status_code == 200
    await wait_for(lambda: hot_path._connection is None, message="the connection given back")
    assert kept.closed
    assert (await watch(user, film.movie_id, 40.0)).json()["position"] == 40.0
