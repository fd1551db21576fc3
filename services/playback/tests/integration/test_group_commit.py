"""Group commit: concurrent hot-path reports share one UPDATE and one commit, and still obey
last-write-wins and the slow path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from streamia_kit.db import Database
from streamia_playback.progress.group_commit import GroupCommit


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
