"""WriteSession and ReadSession: the request's unit of work commits before the response is
sent, runs its `on_commit` callbacks then, and leaves nothing behind when the endpoint fails."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, insert, select

from streamia_kit.db import on_commit, on_rollback
from streamia_kit.dependencies import ReadSession, WriteSession
from streamia_kit.errors import Conflict, install_error_handlers
from streamia_kit.testing import serve_app


def _app(harness: Any, events: list[str]) -> FastAPI:
    app = FastAPI()
    app.state.service = SimpleNamespace(db=harness.db)
    install_error_handlers(app)
    applied = harness.applied

    async def note(what: str) -> None:
        events.append(what)

    @app.post("/write/{event_id}")
    async def write(event_id: str, session: WriteSession, fail: bool = False) -> Any:
        await session.execute(insert(applied).values(event_id=event_id))
        on_commit(session, lambda: note(f"committed {event_id}"))
        on_rollback(session, lambda: note(f"rolled back {event_id}"))
        if fail:
            raise Conflict("refused", code="refused")
        return {"written": event_id}

    @app.get("/count/{event_id}")
    async def count(event_id: str, session: ReadSession) -> Any:
        found = await session.scalar(
            select(func.count()).select_from(applied).where(applied.c.event_id == event_id)
        )
        return {"count": found}

    return app


async def test_a_write_is_committed_and_its_callbacks_run_before_the_response(harness):
    events: list[str] = []
    event_id = uuid.uuid4().hex
    async with serve_app(_app(harness, events)) as client:
        resp = await client.post(f"/write/{event_id}")
        assert resp.status_code == 200, resp.text
        assert events == [f"committed {event_id}"]
        assert (await client.get(f"/count/{event_id}")).json() == {"count": 1}


async def test_a_failing_write_leaves_nothing_and_runs_its_rollback_callbacks(harness):
    events: list[str] = []
    event_id = uuid.uuid4().hex
    async with serve_app(_app(harness, events)) as client:
        resp = await client.post(f"/write/{event_id}", params={"fail": "true"})
        assert resp.status_code == 409 and resp.json()["code"] == "refused"
        assert events == [f"rolled back {event_id}"]
        assert (await client.get(f"/count/{event_id}")).json() == {"count": 0}
