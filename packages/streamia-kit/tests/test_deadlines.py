"""Request deadlines (X-Streamia-Deadline-Ms): work the caller has given up on is refused
before it starts, cancelled while it runs, and never committed after the deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, insert, select

from streamia_kit.deadlines import DEADLINE_HEADER, DeadlineMiddleware
from streamia_kit.dependencies import WriteSession
from streamia_kit.errors import install_error_handlers
from streamia_kit.testing import serve_app


def _compute_for(seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


def _app(harness: Any, started: list[str]) -> FastAPI:
    app = FastAPI()
    app.state.service = SimpleNamespace(db=harness.db)
    install_error_handlers(app)
    app.add_middleware(DeadlineMiddleware, service="test", margin_seconds=0.0)
    applied = harness.applied
    never = asyncio.Event()

    @app.post("/write/{event_id}")
    async def write(event_id: str, session: WriteSession, then: str = "") -> Any:
        started.append(event_id)
        await session.execute(insert(applied).values(event_id=event_id))
        if then == "hang":  # a dependency that never answers
            await never.wait()
        elif then == "block":  # CPU work (a password hash) past the deadline, no await
            _compute_for(0.4)
        elif then == "swallow":  # a library that catches the deadline's cancellation
            with contextlib.suppress(asyncio.CancelledError):
                await never.wait()
        return {"written": event_id}

    @app.get("/read")
    async def read() -> Any:
        with contextlib.suppress(asyncio.CancelledError):
            await never.wait()
        return {"read": True}

    return app


async def _count(harness: Any, event_id: str) -> int:
    applied = harness.applied
    async with harness.db.sessions() as session:
        query = select(func.count()).select_from(applied).where(applied.c.event_id == event_id)
        return int(await session.scalar(query) or 0)


async def test_a_request_whose_deadline_has_passed_is_refused_before_it_starts(harness):
    started: list[str] = []
    event_id = uuid.uuid4().hex
    async with serve_app(_app(harness, started)) as client:
        resp = await client.post(f"/write/{event_id}", headers={DEADLINE_HEADER: "0"})
    assert resp.status_code == 504
    assert resp.json()["code"] == "deadline_exceeded"
    assert resp.json()["error"] == resp.json()["message"]
    assert started == [] and await _count(harness, event_id) == 0


async def test_work_still_running_at_the_deadline_is_cancelled_and_rolled_back(harness):
    started: list[str] = []
    event_id = uuid.uuid4().hex
    async with serve_app(_app(harness, started)) as client:
        began = time.monotonic()
        resp = await client.post(
            f"/write/{event_id}", params={"then": "hang"}, headers={DEADLINE_HEADER: "300"}
        )
        took = time.monotonic() - began
    assert resp.status_code == 504 and resp.json()["code"] == "deadline_exceeded"
    assert 0.3 <= took < 2.0
    assert started == [event_id] and await _count(harness, event_id) == 0


async def test_an_answer_made_after_a_swallowed_deadline_cancellation_is_sent_not_a_500(harness):
    # Under load, code below the middleware sometimes catches the deadline's cancellation
    # and answers anyway; the middleware then failed to reschedule its expired timeout and
    # turned the answer into a 500.
    async with serve_app(_app(harness, [])) as client:
        read = await client.get("/read", headers={DEADLINE_HEADER: "200"})
        event_id = uuid.uuid4().hex
        write = await client.post(
            f"/write/{event_id}", params={"then": "swallow"}, headers={DEADLINE_HEADER: "200"}
        )
    assert read.status_code == 200 and read.json() == {"read": True}
    # The write's commit begins past the deadline: refused, and its 504 says so.
    assert write.status_code == 504 and write.json()["code"] == "deadline_exceeded"
    assert await _count(harness, event_id) == 0


async def test_no_commit_begins_after_the_deadline(harness):
    started: list[str] = []
    event_id = uuid.uuid4().hex
    async with serve_app(_app(harness, started)) as client:
        resp = await client.post(
            f"/write/{event_id}", params={"then": "block"}, headers={DEADLINE_HEADER: "200"}
        )
    assert resp.status_code == 504 and resp.json()["code"] == "deadline_exceeded"
    assert started == [event_id] and await _count(harness, event_id) == 0


async def test_work_within_its_deadline_is_committed(harness):
    started: list[str] = []
    event_id = uuid.uuid4().hex
    async with serve_app(_app(harness, started)) as client:
        resp = await client.post(f"/write/{event_id}", headers={DEADLINE_HEADER: "3000"})
    assert resp.status_code == 200, resp.text
    assert await _count(harness, event_id) == 1


async def test_a_malformed_deadline_is_a_400(harness):
    started: list[str] = []
    async with serve_app(_app(harness, started)) as client:
        for value in ("soon", "1.5", "99999999999999"):
            resp = await client.post("/write/x", headers={DEADLINE_HEADER: value})
            assert resp.status_code == 400, value
            assert resp.json()["code"] == "invalid_deadline_header"
    assert started == []
