"""Reset tokens: 32 random bytes, stored hashed, valid 1 h, single use; sessions revoked."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from sqlalchemy import select, update

from streamia_kit.db import utcnow
from streamia_kit.testing import serve_app, wait_for
from streamia_users.app import create_app
from streamia_users.config import UsersSettings
from streamia_users.users.models import PasswordResetToken

PASSWORD = "Str0ng!Passw0rd"
NEW = "Fresh!Passw0rd9"


async def test_a_reset_token_resets_once_and_revokes_earlier_sessions(stack, new_user, auth):
    app = create_app(UsersSettings(**stack.overrides()))
    tokens: list[str] = []

    async def probe(envelope):
        tokens.append(envelope.data["token"])

    app.state.service.infra.bus.subscribe("probe", "password.reset.requested", probe)
    async with serve_app(app) as client:
        body, data = await new_user(client)
        assert (
            await client.post("/api/users/forgot-password", json={"email": body["email"]})
        ).status_code == 200
        await wait_for(lambda: tokens, message="reset token event")
        raw = tokens[0]

        async with app.state.service.db.sessions() as session:
            stored = (await session.scalars(select(PasswordResetToken))).all()
        assert [t.token_hash for t in stored] == [hashlib.sha256(raw.encode()).hexdigest()]
        assert all(raw not in t.token_hash for t in stored)

        reset = {"token": raw, "newPassword": NEW, "confirmPassword": NEW}
        ok = await client.post("/api/users/reset-password", json=reset)
        assert ok.status_code == 200, ok.text
        again = await client.post("/api/users/reset-password", json=reset)
        assert again.status_code == 400
        assert again.json()["message"] == "Expired or invalid token"
        assert (await client.get("/api/users/me", headers=auth(data["token"]))).status_code == 401
        login = await client.post(
            "/api/users/login", json={"email": body["email"], "password": NEW}
        )
        assert login.status_code == 200


async def test_an_expired_or_unknown_reset_token_is_refused(stack, new_user):
    app = create_app(UsersSettings(**stack.overrides()))
    tokens: list[str] = []

    async def probe(envelope):
        tokens.append(envelope.data["token"])

    app.state.service.infra.bus.subscribe("probe", "password.reset.requested", probe)
    async with serve_app(app) as client:
        body, _ = await new_user(client)
        await client.post("/api/users/forgot-password", json={"email": body["email"]})
        await wait_for(lambda: tokens, message="reset token event")
        async with app.state.service.db.transaction() as session:
            await session.execute(
                update(PasswordResetToken).values(expires_at=utcnow() - timedelta(seconds=1))
            )
        for token in (tokens[0], "not-a-real-token"):
            resp = await client.post(
                "/api/users/reset-password",
                json={"token": token, "newPassword": NEW, "confirmPassword": NEW},
            )
            assert resp.status_code == 400
            assert resp.json()["message"] == "Expired or invalid token"
        weak = await client.post(
            "/api/users/reset-password",
            json={"token": tokens[0], "newPassword": "weak", "confirmPassword": "weak"},
        )
        assert weak.status_code == 400 and "newPassword" in weak.json()["details"]["fieldErrors"]


async def test_a_flood_of_reset_requests_sends_one_email_with_identical_answers(stack, new_user):
    app = create_app(UsersSettings(**stack.overrides()))
    async with serve_app(app) as client:
        body, _ = await new_user(client)
        answers = await asyncio.gather(
            *(
                client.post("/api/users/forgot-password", json={"email": body["email"]})
                for _ in range(20)
            )
        )
        unknown = await client.post(
            "/api/users/forgot-password", json={"email": "nobody-at-all@example.com"}
        )
        # The answers went out before the work; the test client returns once it is done.
        async with app.state.service.db.sessions() as session:
            issued = (await session.scalars(select(PasswordResetToken))).all()
    assert {(a.status_code, a.text) for a in answers} == {(200, unknown.text)}
    assert len(issued) == 1
