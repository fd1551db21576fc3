"""Events in, emails out: once per event, with the right recipient, subject and links."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from streamia_kit.db import new_id, utcnow
from streamia_kit.events import Envelope, PasswordResetRequested, UserRegistered
from streamia_kit.testing import serve_app, wait_for
from streamia_notifications.app import create_app

FRONTEND = "https://streamia.test"
PASSWORD = "Str0ng!Passw0rd"
NEW_PASSWORD = "N3w!Passw0rd-ok"


def _registered(email: str) -> UserRegistered:
    return UserRegistered(user_id=new_id(), email=email, first_name="Ana", last_name="García")


async def test_a_registration_produces_exactly_one_welcome_email(
    mail, settings_factory, publish, new_address, parts
):
    text_of, html_of = parts
    app = create_app(settings_factory())
    async with serve_app(app):
        to = new_address()
        envelope = await publish(app, _registered(to))
        [message] = await wait_for(lambda: mail.find(event_id=envelope.id), message="welcome")
        assert message["To"] == to
        assert message["Subject"] == "Te damos la bienvenida a Streamia, Ana"
        assert message["From"] == "Streamia <no-reply@streamia.local>"
        assert f"{FRONTEND}/" in text_of(message) and f"{FRONTEND}/login" in text_of(message)
        assert f'href="{FRONTEND}/login"' in html_of(message)
        assert "Hola, Ana" in html_of(message)

        # The broker redelivers the same event (e.g. a lost ack); a marker event sent after it
        # shows the redelivery has been consumed by the time its own email arrives.
        await publish(app, None, envelope)
        marker = await publish(app, _registered(new_address("marker")))
        await wait_for(lambda: mail.find(event_id=marker.id), message="marker email")
        await asyncio.sleep(0.5)
        assert len(mail.find(event_id=envelope.id)) == 1
        assert len(mail.find(to=to)) == 1


async def test_emails_go_out_in_the_language_the_event_carries(
    mail, settings_factory, publish, new_address, parts
):
    text_of, _ = parts
    app = create_app(settings_factory())
    async with serve_app(app):
        english, unknown = new_address("en"), new_address("fr")
        sent_en = await publish(
            app, UserRegistered(**{**_registered(english).model_dump(), "language": "en"})
        )
        sent_fr = await publish(
            app, UserRegistered(**{**_registered(unknown).model_dump(), "language": "fr"})
        )
        [message] = await wait_for(lambda: mail.find(event_id=sent_en.id), message="english")
        assert message["Subject"] == "Welcome to Streamia, Ana"
        assert message["Content-Language"] == "en"
        assert text_of(message).startswith("Hi Ana,")
        [fallback] = await wait_for(lambda: mail.find(event_id=sent_fr.id), message="default")
        assert fallback["Content-Language"] == "es"  # a language we have no templates for


async def test_a_job_queued_twice_for_one_event_sends_one_email(
    mail, settings_factory, new_address, counter
):
    """Below the inbox: the job queue and the sent-email record dedupe by event id too."""
    from streamia_notifications.emails.schemas import EmailJob

    app = create_app(settings_factory())
    async with serve_app(app):
        service, queue = app.state.service, app.state.email_queue
        to = new_address()
        envelope = Envelope.wrap(_registered(to), "streamia/users")
        job = EmailJob.welcome(_registered(to), envelope)
        duplicates = counter("welcome", "duplicate")
        async with service.db.transaction() as session:
            assert await queue.enqueue(session, job)
        await wait_for(lambda: mail.find(event_id=envelope.id), message="welcome")
        async with service.db.transaction() as session:
            # Refused while the first job is still being settled; else queued and skipped.
            queued_again = await queue.enqueue(session, job)
        if queued_again:
            await wait_for(
                lambda: counter("welcome", "duplicate") > duplicates,
                message="the second job skipped as a duplicate",
            )
        await asyncio.sleep(0.3)
        assert len(mail.find(event_id=envelope.id)) == 1


async def test_forgot_password_sends_a_link_that_resets_the_password_once(
    mail, platform, new_address, parts
):
    text_of, html_of = parts
    async with platform() as (users, _):
        email = new_address()
        body = {
            "firstName": "Ana",
            "lastName": "García",
            "age": 31,
            "email": email,
            "password": PASSWORD,
            "confirmPassword": PASSWORD,
        }
        assert (await users.post("/api/users/register", json=body)).status_code == 201
        await wait_for(lambda: mail.find(to=email, kind="welcome"), message="welcome email")

        resp = await users.post("/api/users/forgot-password", json={"email": email})
        assert resp.status_code == 200
        [message] = await wait_for(
            lambda: mail.find(to=email, kind="password-reset"), message="reset email"
        )
        assert message["Subject"] == "Restablece tu contraseña de Streamia"
        match = re.search(
            rf"{re.escape(FRONTEND)}/reset-password/([A-Za-z0-9_\-]+)", text_of(message)
        )
        assert match, text_of(message)
        token = match.group(1)
        assert f'href="{FRONTEND}/reset-password/{token}"' in html_of(message)

        reset = {"token": token, "newPassword": NEW_PASSWORD, "confirmPassword": NEW_PASSWORD}
        resp = await users.post("/api/users/reset-password", json=reset)
        assert resp.status_code == 200, resp.text
        login = await users.post(
            "/api/users/login", json={"email": email, "password": NEW_PASSWORD}
        )
        assert login.status_code == 200

        again = await users.post("/api/users/reset-password", json=reset)
        assert again.status_code == 400
        assert again.json()["message"] == "Expired or invalid token"


async def test_deleting_the_account_sends_a_farewell_email(mail, platform, new_address, parts):
    text_of, _ = parts
    async with platform() as (users, _):
        email = new_address()
        body = {
            "firstName": "Luis",
            "lastName": "Pérez",
            "age": 40,
            "email": email,
            "password": PASSWORD,
            "confirmPassword": PASSWORD,
        }
        resp = await users.post("/api/users/register", json=body)
        assert resp.status_code == 201
        token = resp.json()["token"]
        resp = await users.request(
            "DELETE",
            "/api/users/me",
            json={"password": PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 204, resp.text
        [message] = await wait_for(
            lambda: mail.find(to=email, kind="farewell"), message="farewell email"
        )
        assert message["Subject"] == "Tu cuenta de Streamia se ha eliminado"
        assert "Hola, Luis" in text_of(message)
        assert f"{FRONTEND}/register" in text_of(message)
        assert len(mail.find(to=email, kind="welcome")) == 1


async def test_an_expired_reset_request_sends_no_dead_link(
    mail, settings_factory, publish, new_address, counter
):
    app = create_app(settings_factory())
    async with serve_app(app):
        expired = counter("password-reset", "expired")
        to = new_address()
        await publish(
            app,
            PasswordResetRequested(
                user_id=new_id(),
                email=to,
                first_name="Ana",
                token="x" * 43,
                expires_at=utcnow() - timedelta(seconds=1),
            ),
        )
        await wait_for(
            lambda: counter("password-reset", "expired") > expired, message="expired reset skipped"
        )
        assert mail.find(to=to) == []


async def test_the_service_reports_ready_with_its_job_runner(mail, settings_factory):
    app = create_app(settings_factory())
    async with serve_app(app) as client:
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["email_jobs"] is True
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
