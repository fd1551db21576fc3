"""The SMTP sender against a real aiosmtpd server: STARTTLS or implicit TLS, with auth."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streamia_kit.testing import free_port
from streamia_notifications.senders.base import PermanentSendError, TransientSendError
from streamia_notifications.senders.smtp import SmtpSender

USER, PASSWORD = "apikey", "SG.relay-secret"


def _server_tls(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USER, PASSWORD)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: reply 535


@pytest.fixture(params=["starttls", "tls"])
async def secure_server(request, tmp_path):
    inbox, port = Inbox(), free_port()
    context = _server_tls(tmp_path)
    if request.param == "starttls":
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            authenticator=inbox.authenticate,
            auth_require_tls=True,
        )
    else:  # implicit TLS: aiosmtpd only knows STARTTLS sessions as encrypted, so no auth check
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context,
            authenticator=inbox.authenticate,
            auth_require_tls=False,
        )
    await asyncio.to_thread(controller.start)
    yield request.param, port, inbox
    await asyncio.to_thread(controller.stop)


def _sender(unit_settings, security: str, port: int, password: str = PASSWORD) -> SmtpSender:
    return SmtpSender(
        unit_settings(
            email_sender="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security=security,
            smtp_username=USER,
            smtp_password=password,
            smtp_validate_certs=False,
            smtp_timeout_seconds=5,
        )
    )


async def test_the_sender_encrypts_and_logs_in_before_sending(
    unit_settings, secure_server, renderer, welcome_job
):
    security, port, inbox = secure_server
    await _sender(unit_settings, security, port).send(renderer.message(welcome_job))
    assert inbox.logins == [USER]
    [message] = inbox.messages
    assert message["X-Streamia-Event-Id"] == welcome_job.event_id


async def test_a_wrong_password_is_a_permanent_failure(
    unit_settings, secure_server, renderer, welcome_job
):
    security, port, inbox = secure_server
    with pytest.raises(PermanentSendError, match="535"):
        await _sender(unit_settings, security, port, "wrong").send(renderer.message(welcome_job))
    assert inbox.messages == []


async def test_a_server_that_is_not_listening_is_a_transient_failure(
    unit_settings, renderer, welcome_job
):
    with pytest.raises(TransientSendError):
        await _sender(unit_settings, "none", free_port()).send(renderer.message(welcome_job))
