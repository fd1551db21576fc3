"""create_app: the only place the users service's adapters are wired."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from streamia_kit.auth import SigningKey, StaticKeys
from streamia_kit.infra import Infrastructure
from streamia_kit.service import Service
from streamia_users.config import UsersSettings
from streamia_users.users.endpoints import keys_router, router
from streamia_users.users.models import Base
from streamia_users.users.service import Passwords, UsersService

MIGRATIONS = Path(__file__).parent / "migrations"


def signing_key(settings: UsersSettings) -> SigningKey:
    if settings.jwt_private_key:
        return SigningKey.from_pem(settings.jwt_private_key.encode())
    if settings.jwt_private_key_file:
        return SigningKey.from_pem(settings.jwt_private_key_file.read_bytes())
    return SigningKey.load_or_create(settings.generated_key_path)


def create_app(
    settings: UsersSettings | None = None,
    infra: Infrastructure | None = None,
    manage_lifecycle: bool = True,
) -> FastAPI:
    settings = settings or UsersSettings()
    key = signing_key(settings)
    service = Service(settings, Base.metadata, MIGRATIONS, infra=infra, keys=StaticKeys(key))
    app = service.create_app(
        "Streamia users",
        [router, keys_router],
        description="Accounts, sessions, password reset and the JWKS.",
        manage_lifecycle=manage_lifecycle,
    )
    app.state.users = UsersService(
        settings, key, Passwords(settings), service.infra.revocations, service.outbox
    )
    return app
