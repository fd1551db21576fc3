"""Roles: `streamia users create-admin` creates or promotes; old tokens carry the old role."""

from __future__ import annotations

import jwt

PASSWORD = "Str0ng!Passw0rd"


async def test_create_admin_creates_an_admin_and_promotes_existing_accounts(
    client, users_app, new_user, auth
):
    users = users_app.state.users
    db = users_app.state.service.db
    async with db.transaction() as session:
        admin = await users.create_admin(session, "boss@example.com", "Adm1n!Secret", "Bo", "Ss")
    assert admin.role == "admin"
    login = await client.post(
        "/api/users/login", json={"email": "boss@example.com", "password": "Adm1n!Secret"}
    )
    assert jwt.decode(login.json()["token"], options={"verify_signature": False})["role"] == "admin"

    body, data = await new_user(client)
    async with db.transaction() as session:
        promoted = await users.create_admin(session, body["email"], "", "", "")
    assert promoted.id == data["user"]["id"] and promoted.role == "admin"
    # The old token said role=user; it is revoked so no stale role lingers.
    assert (await client.get("/api/users/me", headers=auth(data["token"]))).status_code == 401
    fresh = await client.post(
        "/api/users/login", json={"email": body["email"], "password": PASSWORD}
    )
    assert fresh.json()["user"]["role"] == "admin"
