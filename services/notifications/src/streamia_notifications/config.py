"""Notification service settings: which sender, its credentials, languages and job retries."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import SecretStr

from streamia_kit.config import ServiceSettings

SenderKind = Literal["file", "smtp", "sendgrid"]
Language = Literal["es", "en"]


class NotificationsSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifications"

    # Unset => "file" in embedded mode (no broker configured), "smtp" in distributed mode.
    email_sender: SenderKind | None = None
    email_from_address: str = "no-reply@streamia.local"
    email_from_name: str = "Streamia"
    default_language: Language = "es"
    # The .eml outbox of the file sender; default <data_dir>/outbox.
    outbox_dir: Path | None = None

    # SMTP (also SendGrid's relay: host smtp.sendgrid.net, username "apikey", password the key).
    smtp_host: str = "localhost"
    smtp_port: int | None = None  # default by security: none 25, starttls 587, tls 465
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_validate_certs: bool = True
    smtp_timeout_seconds: float = 15.0

    # SendGrid v3 Web API.
    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_url: str = "https://api.sendgrid.com"
    sendgrid_timeout_seconds: float = 15.0

    # Email jobs: attempt n waits base * 2^(n-1) seconds (capped) before attempt n + 1.
    email_max_attempts: int = 12
    email_retry_base_seconds: float = 2.0
    email_retry_max_seconds: float = 300.0
    # One attempt's bound (two sender timeouts); arq's in-progress mark lasts it + 15 s.
    email_job_timeout_seconds: float = 30.0
    email_poll_seconds: float = 0.5
    email_concurrency: int = 8

    @property
    def sender_kind(self) -> SenderKind:
        if self.email_sender is not None:
            return self.email_sender
        return "file" if self.embedded else "smtp"

    @property
    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def resolved_smtp_port(self) -> int:
        if self.smtp_port:
            return self.smtp_port
        return {"none": 25, "starttls": 587, "tls": 465}[self.smtp_security]

    def insecure_defaults(self) -> list[str]:
        bad = super().insecure_defaults()
        if self.sender_kind == "smtp" and self.smtp_password is None:
            bad.append("STREAMIA_SMTP_PASSWORD")
        if self.sender_kind == "sendgrid" and self.sendgrid_api_key is None:
            bad.append("STREAMIA_SENDGRID_API_KEY")
        return bad
