"""Embedded mode with no mail settings: emails land in <data_dir>/outbox as .eml files."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesParser

from streamia_kit.db import new_id, utcnow
from streamia_kit.events import PasswordResetRequested
from streamia_kit.testing import Stack, serve_app, wait_for
from streamia_notifications.app import create_app
from streamia_notifications.config import NotificationsSettings


async def test_embedded_mode_writes_the_reset_email_to_the_outbox_folder(
    tmp_path, publish, new_address
):
    stack = Stack("embedded", tmp_path)
    settings = NotificationsSettings(**stack.overrides(frontend_url="http://localhost:8080"))
    assert settings.sender_kind == "file"
    app = create_app(settings)
    async with serve_app(app):
        to = new_address()
        await publish(
            app,
            PasswordResetRequested(
                user_id=new_id(),
                email=to,
                first_name="Ana",
                token="tok-123_abc",
                expires_at=utcnow() + timedelta(hours=1),
            ),
        )
        outbox = tmp_path / "outbox"
        [path] = await wait_for(
            lambda: list(outbox.glob(f"*-password-reset-{to}.eml")), message="the .eml file"
        )
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "http://localhost:8080/reset-password/tok-123_abc" in text
