"""Logged-out and pre-password-change tokens stay dead across a restart of the service."""

from __future__ import annotations

from streamia_kit.testing import Stack, serve_app
from streamia_users.app import create_app
from streamia_users.config import UsersSettings

PASSWORD = "Str0ng!Passw0rd"


async def test_revoked_tokens_stay_refused_after_a_restart(stack: Stack, new_user, auth):
    bearer = auth
    settings = UsersSettings(**stack.overrides())
    async with serve_app(create_app(settings)) as client:
        body, registered = await new_user(client)
        first = registered["token"]
        login = await client.post(
            "/api/users/login", json={"email": body["email"], "password": PASSWORD}
        )
        second = login.json()["token"]
        assert (await client.post("/api/users/logout", headers=bearer(first))).status_code == 200
        changed = await client.put(
            "/api/users/change-password",
            headers=bearer(second),
            json={
                "currentPassword": PASSWORD,
                "newPassword": "N3w!Password",
                "confirmPassword": "N3w!Password",
            },
        )
        assert changed.status_code == 200, changed.text
        third = changed.json()["token"]

    async with serve_app(create_app(settings)) as client:
        for old in (first, second):
            assert (await client.get("/api/users/me", headers=bearer(old))).status_code == 401
        assert (await client.get("/api/users/me", headers=bearer(third))).status_code == 200
