"""The SendGrid v3 sender: the request it makes, and how it reads the answer."""

from __future__ import annotations

import pytest

from streamia_notifications.senders.base import PermanentSendError, TransientSendError
from streamia_notifications.senders.sendgrid import SendGridSender


@pytest.fixture
def sender(unit_settings, sendgrid):
    return SendGridSender(
        unit_settings(
            email_sender="sendgrid",
            sendgrid_api_url=sendgrid.url,
            sendgrid_api_key=sendgrid.API_KEY,
        )
    )


async def test_a_message_is_posted_to_mail_send_with_the_bearer_key_and_both_parts(
    sender, sendgrid, renderer, reset_job
):
    provider_id = await sender.send(renderer.message(reset_job))
    await sender.close()
    assert provider_id == "sg-1"
    [body] = sendgrid.requests
    assert body["personalizations"] == [{"to": [{"email": "ana@example.com"}]}]
    assert body["from"] == {"email": "no-reply@streamia.local", "name": "Streamia"}
    assert body["subject"] == "Restablece tu contraseña de Streamia"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    link = f"https://streamia.test/reset-password/{reset_job.token}"
    assert link in body["content"][0]["value"] and link in body["content"][1]["value"]
    assert body["custom_args"] == {"event_id": reset_job.event_id}


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_rate_limits_are_transient(
    sender, sendgrid, renderer, welcome_job, status
):
    sendgrid.script["ana@example.com"] = [status]
    with pytest.raises(TransientSendError, match=str(status)):
        await sender.send(renderer.message(welcome_job))
    await sender.close()


@pytest.mark.parametrize("status", [400, 403, 413])
async def test_other_client_errors_are_permanent(sender, sendgrid, renderer, welcome_job, status):
    sendgrid.script["ana@example.com"] = [status]
    with pytest.raises(PermanentSendError, match=str(status)):
        await sender.send(renderer.message(welcome_job))
    await sender.close()


async def test_a_wrong_key_is_a_permanent_failure(unit_settings, sendgrid, renderer, welcome_job):
    sender = SendGridSender(
        unit_settings(sendgrid_api_url=sendgrid.url, sendgrid_api_key="SG.wrong")
    )
    with pytest.raises(PermanentSendError, match="401"):
        await sender.send(renderer.message(welcome_job))
    await sender.close()


async def test_an_unreachable_api_is_transient(unit_settings, renderer, welcome_job):
    from streamia_kit.testing import free_port

    sender = SendGridSender(
        unit_settings(sendgrid_api_url=f"http://127.0.0.1:{free_port()}", sendgrid_api_key="SG.k")
    )
    with pytest.raises(TransientSendError):
        await sender.send(renderer.message(welcome_job))
    await sender.close()
