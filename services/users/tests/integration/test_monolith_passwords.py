"""Accounts imported from the monolith keep their bcrypt hashes until their first login."""

from __future__ import annotations

import uuid

import bcrypt

from streamia_users.users.models import User
from streamia_users.users.repository import UsersRepository

OLD_PASSWORD = "old-monolith-pass"


async def monolith_account(users_app) -> str:
    email = f"old-{uuid.uuid4().hex[:10]}@example.com"
    hashed = bcrypt.hashpw(OLD_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    async with users_app.state.service.db.transaction() as session:
        await UsersRepository(session).add(
            User(first_name="Old", last_name="Timer", age=40, email=email, password_hash=hashed)
        )
    return email


async def stored_hash(users_app, email: str) -> str:
    async with users_app.state.service.db.sessions() as session:
        user = await UsersRepository(session).get_by_email(email)
    assert user is not None
    return user.password_hash


async def test_a_bcrypt_account_logs_in_and_its_hash_becomes_argon2(client, users_app):
    email = await monolith_account(users_app)
    assert (await stored_hash(users_app, email)).startswith("$2b$")
    resp = await client.post("/api/users/login", json={"email": email, "password": OLD_PASSWORD})
    assert resp.status_code == 200, resp.text
    assert (await stored_hash(users_app, email)).startswith("$argon2id$")
    again = await client.post("/api/users/login", json={"email": email, "password": OLD_PASSWORD})
    assert again.status_code == 200, again.text


async def test_a_wrong_password_on_a_bcrypt_account_is_refused_and_the_hash_kept(client, users_app):
    email = await monolith_account(users_app)
    resp = await client.post("/api/users/login", json={"email": email, "password": "nope-nope"})
    assert resp.status_code == 401
    assert (await stored_hash(users_app, email)).startswith("$2b$")
