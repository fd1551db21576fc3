"""The `streamia dlq` commands on both stacks: list, show and replay dead letters."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from streamia.cli import app
from streamia_kit.config import ServiceSettings
from streamia_kit.events import Envelope, UserDeleted
from streamia_kit.infra import Infrastructure
from streamia_kit.testing import wait_for

QUEUE = "favorites.user.deleted"


def _env(stack) -> dict[str, str]:
    env = {}
    for key, value in stack.overrides().items():
        if key in ServiceSettings.model_fields and value is not None:
            env[f"STREAMIA_{key.upper()}"] = str(value)
    return env


async def test_dlq_list_show_and_replay(stack, monkeypatch):
    for key, value in _env(stack).items():
        monkeypatch.setenv(key, value)
    settings = ServiceSettings(**stack.overrides())
    infra = Infrastructure.from_settings(settings)
    delivered: list[str] = []
    broken = True

    async def handler(envelope):
        if broken:
            raise RuntimeError("favorites database down")
        delivered.append(envelope.id)

    infra.bus.subscribe("favorites", "user.deleted", handler)
    await infra.start()
    poison = Envelope.wrap(
        UserDeleted(user_id="u-1", email="a@b.io", first_name="A", last_name="B"), "streamia/test"
    )
    try:
        await infra.bus.publish([poison])

        async def dead() -> bool:
            return (await infra.bus.dead_letter_counts([QUEUE]))[QUEUE] == 1

        await wait_for(dead, message="dead letter")
        runner = CliRunner()

        listed = await asyncio.to_thread(runner.invoke, app, ["dlq", "list"])
        assert listed.exit_code == 0, listed.output
        assert any(line.split() == [f"{QUEUE}.dlq", "1"] for line in listed.output.splitlines())

        shown = await asyncio.to_thread(runner.invoke, app, ["dlq", "show", QUEUE])
        assert shown.exit_code == 0, shown.output
        letter = json.loads(shown.output.splitlines()[0])
        assert letter["id"] == poison.id and letter["type"] == "user.deleted"
        assert letter["attempts"] == settings.max_delivery_attempts
        assert "favorites database down" in letter["error"]

        broken = False
        replayed = await asyncio.to_thread(runner.invoke, app, ["dlq", "replay", QUEUE])
        assert replayed.exit_code == 0 and "replayed 1" in replayed.output
        await wait_for(lambda: delivered == [poison.id], timeout=15, message="replayed delivery")
        assert not await dead()
    finally:
        await infra.close()


def test_users_create_admin_and_promote(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMIA_DATA_DIR", str(tmp_path))
    for key in ("STREAMIA_DATABASE_URL", "STREAMIA_AMQP_URL", "STREAMIA_REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    created = runner.invoke(
        app, ["users", "create-admin", "boss@example.com", "--password", "Adm1n!Secret"]
    )
    assert created.exit_code == 0, created.output
    assert "boss@example.com is an admin" in created.output
    weak = runner.invoke(app, ["users", "create-admin", "weak@example.com", "--password", "weak"])
    assert weak.exit_code != 0 and "Password must contain" in weak.output
    missing = runner.invoke(app, ["users", "promote", "nobody@example.com"])
    assert missing.exit_code != 0 and "No account with email" in missing.output
    promoted = runner.invoke(app, ["users", "promote", "boss@example.com"])
    assert promoted.exit_code == 0 and "is an admin" in promoted.output


def test_dlq_show_and_replay_on_an_unknown_queue_say_so_and_exit_1():
    runner = CliRunner()
    for command in (["dlq", "show", "favorites.user.deletd"], ["dlq", "replay", "nope.dlq"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        assert "unknown queue" in result.output
