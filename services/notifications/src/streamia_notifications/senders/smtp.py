"""SMTP via aiosmtplib: plain, STARTTLS or implicit TLS, with optional auth.

SendGrid's SMTP relay works through this sender too (smtp.sendgrid.net, port 587, STARTTLS,
username `apikey`, password the API key)."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from streamia_notifications.config import NotificationsSettings
from streamia_notifications.senders.base import PermanentSendError, TransientSendError


def classify(exc: Exception) -> TransientSendError | PermanentSendError:
    """SMTP replies 5xx are permanent; 4xx, timeouts and broken connections are transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        error = f"recipients refused: {', '.join(f'{r.code} {r.message}' for r in exc.recipients)}"
        if codes and all(500 <= c < 600 for c in codes):
            return PermanentSendError(error)
        return TransientSendError(error)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        error = f"SMTP {exc.code} {exc.message}"
        return PermanentSendError(error) if 500 <= exc.code < 600 else TransientSendError(error)
    return TransientSendError(f"{type(exc).__name__}: {exc}")


class SmtpSender:
    name = "smtp"

    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> str | None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.resolved_smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_security == "tls",
                start_tls=s.smtp_security == "starttls",
                validate_certs=s.smtp_validate_certs,
                timeout=s.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise classify(exc) from exc
        return None

    async def close(self) -> None:
        return None
