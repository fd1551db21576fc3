"""Transient failures are retried with backoff, permanent ones are not, nothing is sent twice
— through a mail-server outage and across a restart of the service."""

from __future__ import annotations

import asyncio
import time

from streamia_kit.db import new_id
from streamia_kit.events import UserRegistered
from streamia_kit.testing import serve_app, wait_for
from streamia_notifications.app import create_app

OUTAGE_SECONDS = 30


def _registered(email: str) -> UserRegistered:
    return UserRegistered(user_id=new_id(), email=email, first_name="Ana", last_name="García")


async def test_an_email_queued_while_the_mail_server_is_down_30s_is_delivered_once_after(
    mail, settings_factory, publish, new_address, counter
):
    # Small backoff (0.5 s doubling to 4 s) so the outage spans several real retries.
    app = create_app(
        settings_factory(
            email_retry_base_seconds=0.5, email_retry_max_seconds=4, email_max_attempts=50
        )
    )
    async with serve_app(app):
        retried = counter("welcome", "retried")
        await mail.stop()
        down_at = time.monotonic()
        to = new_address()
        envelope = await publish(app, _registered(to))
        await wait_for(
            lambda: counter("welcome", "retried") >= retried + 3,
            timeout=20,
            message="three retries during the outage",
        )
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        retries_during_outage = counter("welcome", "retried") - retried
        assert retries_during_outage >= 5

        await mail.start()
        await wait_for(
            lambda: mail.find(event_id=envelope.id),
            timeout=15,
            message="the email after the outage",
        )
        marker = await publish(app, _registered(new_address("marker")))
        await wait_for(lambda: mail.find(event_id=marker.id), message="marker email")
        await asyncio.sleep(1.0)
        assert len(mail.find(event_id=envelope.id)) == 1


async def test_a_temporary_smtp_refusal_is_retried(
    mail, settings_factory, publish, new_address, counter
):
    app = create_app(settings_factory())
    async with serve_app(app):
        retried = counter("welcome", "retried")
        mail.fail_data = 2  # "451 try again later", twice
        envelope = await publish(app, _registered(new_address()))
        await wait_for(lambda: mail.find(event_id=envelope.id), message="email after 451s")
        assert counter("welcome", "retried") - retried >= 2
        assert len(mail.find(event_id=envelope.id)) == 1


async def test_a_rejected_address_is_not_retried_and_is_counted(
    mail, settings_factory, publish, new_address, counter
):
    app = create_app(settings_factory())
    async with serve_app(app):
        failed = counter("welcome", "failed")
        to = new_address("nobody")
        mail.refuse[to] = "550 5.1.1 No such user here"
        await publish(app, _registered(to))
        await wait_for(lambda: counter("welcome", "failed") > failed, message="failed counted")
        marker = await publish(app, _registered(new_address("marker")))
        await wait_for(lambda: mail.find(event_id=marker.id), message="marker email")
        await asyncio.sleep(0.5)  # several backoff periods: a retry would have happened
        assert mail.rcpt_attempts[to] == 1
        assert mail.find(to=to) == []


async def test_a_restarted_service_resumes_pending_emails_and_never_resends_sent_ones(
    mail, settings_factory, publish, new_address, counter
):
    settings = settings_factory()
    first = create_app(settings)
    to_pending, to_sent = new_address("pending"), new_address("sent")
    async with serve_app(first):
        sent = await publish(first, _registered(to_sent))
        await wait_for(lambda: mail.find(event_id=sent.id), message="first email")
        await mail.stop()
        retried = counter("welcome", "retried")
        pending = await publish(first, _registered(to_pending))
        await wait_for(lambda: counter("welcome", "retried") > retried, message="a retry")
    # The service is down; the mail server comes back before it does.
    await mail.start()
    second = create_app(settings)
    async with serve_app(second):
        await wait_for(lambda: mail.find(event_id=pending.id), message="resumed email")
        # The same event again, below the inbox: the sent-email record stops it.
        from streamia_notifications.emails.schemas import EmailJob

        duplicates = counter("welcome", "duplicate")
        job = EmailJob.welcome(_registered(to_sent), sent)
        async with second.state.service.db.transaction() as session:
            assert await second.state.email_queue.enqueue(session, job)
        await wait_for(
            lambda: counter("welcome", "duplicate") > duplicates, message="the resent job skipped"
        )
    assert len(mail.find(event_id=sent.id)) == 1
    assert len(mail.find(event_id=pending.id)) == 1
