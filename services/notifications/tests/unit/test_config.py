"""Settings: the sender follows the mode; production refuses a sender without its secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streamia_notifications.config import NotificationsSettings

PRODUCTION = {"environment": "production", "internal_secret": "s3cret-for-production"}


def test_embedded_mode_writes_emails_to_the_outbox_folder(tmp_path):
    settings = NotificationsSettings(data_dir=tmp_path)
    assert settings.sender_kind == "file"
    assert settings.resolved_outbox_dir == tmp_path / "outbox"
    assert settings.default_language == "es"
    assert settings.bind_port == 3006


def test_distributed_mode_sends_over_smtp_by_default():
    settings = NotificationsSettings(amqp_url="amqp://guest:guest@127.0.0.1/", smtp_password="x")
    assert settings.sender_kind == "smtp"
    assert settings.resolved_smtp_port == 587


def test_production_refuses_smtp_without_a_password():
    with pytest.raises(ValidationError, match="STREAMIA_SMTP_PASSWORD"):
        NotificationsSettings(**PRODUCTION, email_sender="smtp")
    NotificationsSettings(**PRODUCTION, email_sender="smtp", smtp_password="pw")


def test_production_refuses_sendgrid_without_an_api_key():
    with pytest.raises(ValidationError, match="STREAMIA_SENDGRID_API_KEY"):
        NotificationsSettings(**PRODUCTION, email_sender="sendgrid")
    NotificationsSettings(**PRODUCTION, email_sender="sendgrid", sendgrid_api_key="SG.key")


def test_secrets_do_not_show_in_the_settings_repr():
    settings = NotificationsSettings(smtp_password="hunter2", sendgrid_api_key="SG.secret")
    assert "hunter2" not in repr(settings) and "SG.secret" not in repr(settings)
