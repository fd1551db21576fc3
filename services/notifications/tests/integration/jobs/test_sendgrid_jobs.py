"""Through the job queue with the SendGrid sender: 5xx/429 retried, 400 given up at once."""

from __future__ import annotations

import asyncio

from streamia_kit.db import new_id
from streamia_kit.events import UserRegistered
from streamia_kit.testing import serve_app, wait_for
from streamia_notifications.app import create_app


def _registered(email: str) -> UserRegistered:
    return UserRegistered(user_id=new_id(), email=email, first_name="Ana", last_name="García")


def _app(settings_factory, sendgrid):
    return create_app(
        settings_factory(
            email_sender="sendgrid",
            sendgrid_api_url=sendgrid.url,
            sendgrid_api_key=sendgrid.API_KEY,
        )
    )


async def test_sendgrid_server_errors_and_rate_limits_are_retried_until_accepted(
    settings_factory, sendgrid, publish, new_address, counter
):
    app = _app(settings_factory, sendgrid)
    async with serve_app(app):
        retried = counter("welcome", "retried")
        to = new_address()
        sendgrid.script[to] = [503, 429, 500]
        await publish(app, _registered(to))
        await wait_for(lambda: len(sendgrid.to(to)) == 4, message="three failures, one 202")
        await asyncio.sleep(0.5)
        assert len(sendgrid.to(to)) == 4
        assert counter("welcome", "retried") - retried == 3


async def test_a_sendgrid_bad_request_is_not_retried(
    settings_factory, sendgrid, publish, new_address, counter
):
    app = _app(settings_factory, sendgrid)
    async with serve_app(app):
        failed = counter("welcome", "failed")
        to = new_address()
        sendgrid.script[to] = [400, 400]
        await publish(app, _registered(to))
        await wait_for(lambda: counter("welcome", "failed") > failed, message="failed counted")
        await asyncio.sleep(0.5)  # many backoff periods
        assert len(sendgrid.to(to)) == 1
