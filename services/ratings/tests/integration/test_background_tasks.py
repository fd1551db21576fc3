"""Background tasks run under the kit's Supervisor: one that fails is started again, counted
in `streamia_background_task_restarts_total`, and /ready is green again without a restart."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import text

from streamia_kit.testing import wait_for

RELAY = {"service": "ratings", "task": "outbox-relay"}


def _restarts(labels: dict[str, str]) -> float:
    sample = "streamia_background_task_restarts_total"
    return REGISTRY.get_sample_value(sample, labels) or 0.0


async def _rename(app, old: str, new: str) -> None:
    async with app.state.service.db.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_a_relay_that_fails_is_restarted_and_relays_again_without_a_process_restart(
    app, probe, client, caller, movie
):
    film = await movie()
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["outbox_relay"] is True
    before = _restarts(RELAY)

    # A fault no waiting cures (a missing table is not a dependency that is away): the
    # relay's loop raises, and its supervisor starts it again, with backoff, for as long as
    # it takes.
    await _rename(app, "outbox", "outbox_away")
    app.state.service.relay.wake()
    await wait_for(lambda: _restarts(RELAY) >= before + 2, timeout=10, message="restarts")
    await _rename(app, "outbox_away", "outbox")

    async def ready_again() -> bool:
        response = await client.get("/ready")
        return response.status_code == 200 and response.json()["checks"]["outbox_relay"]

    await wait_for(ready_again, timeout=10, message="/ready green again")
    rated = await client.post(
        "/api/ratings", json={"movieId": film.movie_id, "rating": 5}, headers=caller().headers
    )
    assert rated.status_code == 201, rated.text
    await wait_for(lambda: any(env.type == "rating.created" for env in probe), message="published")
