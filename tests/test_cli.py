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


def _poison(user_id: str) -> Envelope:
    return Envelope.wrap(
        UserDeleted(user_id=user_id, email="a@b.io", first_name="A", last_name="B"),
        "streamia/test",
    )


async def test_dlq_list_show_replay_filter_and_purge(stack, monkeypatch):
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
    poison, other = _poison("u-1"), _poison("u-2")
    try:
        await infra.bus.publish([poison, other])

        async def dead(count: int) -> bool:
            return (await infra.bus.dead_letter_counts([QUEUE]))[QUEUE] == count

        await wait_for(lambda: dead(2), message="dead letters")
        runner = CliRunner()

        async def cli(*args: str, input: str | None = None):
            return await asyncio.to_thread(runner.invoke, app, ["dlq", *args], input=input)

        listed = await cli("list")
        assert listed.exit_code == 0, listed.output
        assert any(line.split() == [f"{QUEUE}.dlq", "2"] for line in listed.output.splitlines())

        shown = await cli("show", QUEUE, "--filter", "message.data.user_id=u-1")
        assert shown.exit_code == 0, shown.output
        [letter] = [json.loads(line) for line in shown.output.splitlines()]
        assert letter["id"] == poison.id and letter["type"] == "user.deleted"
        assert letter["attempts"] == settings.max_delivery_attempts
        assert "favorites database down" in letter["error"]

        broken = False
        replayed = await cli("replay", QUEUE, "--filter", "message.data.user_id=u-1")
        assert replayed.exit_code == 0 and "replayed 1" in replayed.output, replayed.output
        await wait_for(lambda: delivered == [poison.id], timeout=15, message="replayed delivery")
        assert await dead(1)

        kept = await cli("purge", QUEUE, input="n\n")
        assert kept.exit_code == 1 and "Delete 1 dead letter(s)" in kept.output, kept.output
        assert await dead(1)
        purged = await cli("purge", QUEUE, "--filter", "error~database down", "--yes")
        assert purged.exit_code == 0 and "purged 1" in purged.output, purged.output
        assert await dead(0)
        assert delivered == [poison.id]  # the purged one never ran
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


async def test_dlq_commands_on_an_unknown_queue_say_so_exit_1_and_create_nothing(
    stack, monkeypatch
):
    for key, value in _env(stack).items():
        monkeypatch.setenv(key, value)
    infra = Infrastructure.from_settings(ServiceSettings(**stack.overrides()))
    infra.bus.subscribe("favorites", "user.deleted", _never)
    await infra.start()  # the platform's queues exist; users consumes no user.deleted
    runner = CliRunner()
    try:
        for command in (
            ["show", "favorites.user.deletd"],
            ["replay", "nope.dlq"],
            ["show", "users.user.deleted"],  # a well-formed name the broker does not have
            ["replay", "users.user.deleted.dlq"],
            ["purge", "users.user.deleted", "--yes"],
        ):
            result = await asyncio.to_thread(runner.invoke, app, ["dlq", *command])
            assert result.exit_code == 1, result.output
            assert "unknown queue" in result.output
        counts = await infra.bus.dead_letter_counts(["users.user.deleted", QUEUE])
        assert counts == {"users.user.deleted": None, QUEUE: 0}  # still not there
    finally:
        await infra.close()


async def _never(envelope) -> None:
    raise AssertionError("nothing is published here")


def test_dlq_bad_arguments_get_a_clear_message_and_a_non_zero_exit():
    runner = CliRunner()
    for command, says in (
        (["replay", QUEUE, "--filter", "user_id"], "PATH=VALUE or PATH~TEXT"),
        (["purge", QUEUE, "--filter", "data.user_id=1", "--yes"], "PATH starts with one of"),
        (["show", QUEUE, "--limit", "many"], "Invalid value for '--limit'"),
        (["show", QUEUE, "--limit", "0"], "Invalid value for '--limit'"),
    ):
        result = runner.invoke(app, ["dlq", *command])
        assert result.exit_code != 0 and says in result.output, result.output
