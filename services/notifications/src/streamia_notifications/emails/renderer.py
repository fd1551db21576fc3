"""Jinja2 templates to a MIME message with a plain-text and an HTML part."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from streamia_notifications.config import Language, NotificationsSettings
from streamia_notifications.emails.schemas import EmailJob

TEMPLATES = Path(__file__).parent / "templates"
PLATFORM_NAME = "Streamia"
LANGUAGES: tuple[Language, ...] = ("es", "en")


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class EmailRenderer:
    """Renders `<lang>/<kind>.{subject.txt,txt,html}`; HTML is autoescaped, text is not."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings
        loader = FileSystemLoader(TEMPLATES)
        self._html = Environment(loader=loader, autoescape=True, undefined=StrictUndefined)
        self._text = Environment(
            loader=loader, autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True
        )

    def context(self, job: EmailJob, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        home = self.settings.frontend_url.rstrip("/")
        values: dict[str, Any] = {
            "platform_name": PLATFORM_NAME,
            "first_name": job.first_name,
            "last_name": job.last_name,
            "home_url": home + "/",
            "login_url": f"{home}/login",
            "register_url": f"{home}/register",
            "forgot_url": f"{home}/forgot-password",
            "year": now.year,
        }
        if job.kind == "password-reset":
            assert job.token is not None and job.expires_at is not None
            values["reset_url"] = f"{home}/reset-password/{quote(job.token, safe='')}"
            values["expires_minutes"] = max(1, round((job.expires_at - now).total_seconds() / 60))
            values["expires_at"] = job.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if job.kind == "comment-hidden":
            values["movie_title"] = job.movie_title
            values["comment_text"] = job.comment_text
            values["by_admin"] = job.reason == "admin"
        return values

    def render(
        self, job: EmailJob, language: Language | None = None, now: datetime | None = None
    ) -> RenderedEmail:
        lang = language or self.settings.default_language
        ctx = {**self.context(job, now), "lang": lang}
        subject = self._text.get_template(f"{lang}/{job.kind}.subject.txt").render(ctx)
        return RenderedEmail(
            subject=re.sub(r"\s+", " ", subject).strip(),
            text=self._text.get_template(f"{lang}/{job.kind}.txt").render(ctx),
            html=self._html.get_template(f"{lang}/{job.kind}.html").render(ctx),
        )

    def message(
        self, job: EmailJob, language: Language | None = None, now: datetime | None = None
    ) -> EmailMessage:
        """The MIME message; its Message-ID derives from the event id, so a resend is visible."""
        now = now or datetime.now(UTC)
        rendered = self.render(job, language, now)
        sender = self.settings.email_from_address
        domain = sender.rpartition("@")[2] or "streamia.local"
        msg = EmailMessage()
        msg["Subject"] = rendered.subject
        msg["From"] = formataddr((self.settings.email_from_name, sender))
        msg["To"] = Address(addr_spec=job.to)
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = f"<{job.event_id}.{job.kind}@{domain}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Streamia-Event-Id"] = job.event_id
        msg["X-Streamia-Email-Kind"] = job.kind
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        # After the body: setting content clears every Content-* header.
        msg["Content-Language"] = language or self.settings.default_language
        return msg
