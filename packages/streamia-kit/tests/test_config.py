"""Production mode refuses to start with development secrets or template placeholders."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from streamia_kit.config import ServiceSettings


def test_production_refuses_the_development_internal_secret():
    with pytest.raises(ValidationError, match="STREAMIA_INTERNAL_SECRET"):
        ServiceSettings(environment="production")


def test_production_refuses_template_placeholders():
    with pytest.raises(ValidationError, match="STREAMIA_DATABASE_URL"):
        ServiceSettings(
            environment="production",
            internal_secret="s3cr3t-from-vault",
            database_url="postgresql+asyncpg://app:REPLACE_ME@db/streamia_{service}",
        )


def test_production_refuses_template_placeholders_in_secret_settings():
    class Mailer(ServiceSettings):
        smtp_password: SecretStr | None = None

    with pytest.raises(ValidationError, match="STREAMIA_SMTP_PASSWORD"):
        Mailer(
            environment="production",
            internal_secret="s3cr3t-from-vault",
            smtp_password=SecretStr("REPLACE_ME-smtp-password"),
        )


def test_production_starts_with_real_secrets_and_development_with_defaults():
    assert ServiceSettings(environment="production", internal_secret="s3cr3t").is_production
    assert not ServiceSettings().is_production


def test_database_url_template_names_the_service_database(tmp_path):
    class Users(ServiceSettings):
        service_name = "users"

    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/streamia_{service}"
    assert Users(database_url=url).resolved_database_url().endswith("/streamia_users")
    assert Users(data_dir=tmp_path).resolved_database_url() == (
        f"sqlite+aiosqlite:///{tmp_path.resolve()}/users.sqlite"
    )
