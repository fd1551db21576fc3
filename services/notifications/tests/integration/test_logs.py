"""A reset token never reaches a log line — not ours, not the bus's, not the job library's."""

from __future__ import annotations

import secrets
from datetime import timedelta

from streamia_kit.db import new_id, utcnow
from streamia_kit.events import PasswordResetRequested
from streamia_kit.testing import serve_app, wait_for
from streamia_notifications.app import create_app
from streamia_notifications.emails.schemas import mask_email


async def test_the_reset_token_never_appears_in_any_log_line_even_on_retries(
    mail, settings_factory, publish, new_address, captured_logs
):
    app = create_app(settings_factory())
    async with serve_app(app):
        mail.fail_data = 2  # two transient failures: their error lines are logged too
        to = new_address()
        token = secrets.token_urlsafe(32)
        envelope = await publish(
            app,
            PasswordResetRequested(
                user_id=new_id(),
                email=to,
                first_name="Ana",
                token=token,
                expires_at=utcnow() + timedelta(hours=1),
            ),
        )
        [message] = await wait_for(lambda: mail.find(event_id=envelope.id), message="reset")
        assert token in message.get_body(preferencelist=("plain",)).get_content()
        await wait_for(
            lambda: any("email_sent" in line for line in captured_logs.lines),
            message="the sent line",
        )

    lines = captured_logs.lines
    assert not [line for line in lines if token in line]
    assert not [line for line in lines if to in line]
    mine = [line for line in lines if envelope.id in line]
    assert any("email_retry_scheduled" in line for line in mine)
    assert any("email_sent" in line and mask_email(to) in line for line in mine)
