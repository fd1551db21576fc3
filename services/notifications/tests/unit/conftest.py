from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from streamia_kit.db import utcnow
from streamia_notifications.config import NotificationsSettings
from streamia_notifications.emails.renderer import EmailRenderer
from streamia_notifications.emails.schemas import EmailJob

TOKEN = "Zm9vYmFyLXRva2VuLTMyLWJ5dGVzLXJhbmRvbS1hYmNkZWY"


@pytest.fixture
def unit_settings(tmp_path: Path):
    def make(**extra: object) -> NotificationsSettings:
        values: dict[str, object] = {
            "environment": "test",
            "data_dir": tmp_path,
            "frontend_url": "https://streamia.test",
        }
        values.update(extra)
        return NotificationsSettings(**values)

    return make


@pytest.fixture
def reset_job() -> EmailJob:
    return EmailJob(
        event_id=uuid.uuid4().hex,
        kind="password-reset",
        to="ana@example.com",
        first_name="Ana",
        token=TOKEN,
        expires_at=utcnow() + timedelta(hours=1),
    )


@pytest.fixture
def welcome_job() -> EmailJob:
    return EmailJob(
        event_id=uuid.uuid4().hex,
        kind="welcome",
        to="ana@example.com",
        first_name="Ana",
        last_name="García",
    )


@pytest.fixture
def renderer(unit_settings) -> EmailRenderer:
    return EmailRenderer(unit_settings())
