from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from streamia_kit.testing import Stack, serve_app
from streamia_users.app import create_app
from streamia_users.config import UsersSettings

PASSWORD = "Str0ng!Passw0rd"


def registration(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "firstName": "Ana",
        "lastName": "García",
        "age": 31,
        "email": f"ana-{uuid.uuid4().hex[:10]}@example.com",
        "password": PASSWORD,
        "confirmPassword": PASSWORD,
    }
    body.update(overrides)
    return body


@pytest.fixture
def users_app(stack: Stack):
    return create_app(UsersSettings(**stack.overrides()))


@pytest.fixture
async def client(users_app) -> AsyncIterator:
    async with serve_app(users_app) as c:
        yield c


@pytest.fixture
def new_user():
    """Register a fresh account; returns (body sent, response json)."""

    async def make(client, headers=None, **overrides):
        body = registration(**overrides)
        resp = await client.post("/api/users/register", json=body, headers=headers)
        assert resp.status_code == 201, resp.text
        return body, resp.json()

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth():
    return bearer
