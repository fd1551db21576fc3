"""Password hashing runs in a bounded pool: a burst is shed with 503 `busy`, never piled up."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from streamia_kit.testing import Stack, serve_app
from streamia_users.app import create_app
from streamia_users.config import UsersSettings

PASSWORD = "Str0ng!Passw0rd"


def test_the_default_argon2_cost_is_owasps_interactive_login_minimum():
    settings = UsersSettings()
    assert (settings.argon2_memory_kib, settings.argon2_time_cost) == (19456, 2)
    assert settings.argon2_parallelism == 1


async def test_a_login_burst_beyond_the_password_queue_is_shed_at_once_with_503_busy(
    stack: Stack,
):
    # One worker, two waiting, and hashes slow enough that the burst overlaps them.
    settings = UsersSettings(
        **stack.overrides(
            password_workers=1, password_queue_limit=2, argon2_time_cost=8, argon2_memory_kib=8192
        )
    )
    async with serve_app(create_app(settings)) as client:

        async def login() -> httpx.Response:
            email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
            return await client.post(
                "/api/users/login", json={"email": email, "password": PASSWORD}
            )

        responses = await asyncio.gather(*(login() for _ in range(20)))
        statuses = sorted(r.status_code for r in responses)
        shed = [r for r in responses if r.status_code == 503]
        assert set(statuses) == {401, 503}, statuses
        assert all(r.json()["code"] == "busy" and r.headers["Retry-After"] == "1" for r in shed)
        # The pool drains: the next login gets its answer.
        assert (await login()).status_code == 401
