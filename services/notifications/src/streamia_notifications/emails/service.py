"""Deliver one email at most once per event id: check the record, send, record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Literal

import structlog

from streamia_kit.db import Database
from streamia_notifications.emails.renderer import EmailRenderer
from streamia_notifications.emails.repository import SentEmailsRepository
from streamia_notifications.emails.schemas import EmailJob
from streamia_notifications.senders.base import EmailSender

log = structlog.get_logger("streamia.notifications")

Delivered = Literal["sent", "duplicate", "expired"]


class Mailer:
    """Renders and sends; raises the sender's Transient/PermanentSendError for the job layer."""

    def __init__(self, db: Database, renderer: EmailRenderer, sender: EmailSender) -> None:
        self.db = db
        self.renderer = renderer
        self.sender = sender

    async def deliver(self, job: EmailJob) -> Delivered:
        async with self.db.sessions() as session:
            if await SentEmailsRepository(session).was_sent(job.event_id):
                return "duplicate"
        now = datetime.now(UTC)
        if job.expires_at is not None and job.expires_at <= now:
            return "expired"  # the link could only fail; the user asks again
        message = self.renderer.message(job, job.language, now=now)
        provider_id = await self.sender.send(message)
        await self._record(job, provider_id)
        return "sent"

    async def _record(self, job: EmailJob, provider_id: str | None) -> None:
        # The email is out: retrying the job now would send it twice, so keep trying to
        # record it here instead, and accept at-most-once if the database stays away.
        for attempt in range(1, 6):
            try:
                async with self.db.transaction() as session:
                    await SentEmailsRepository(session).record(
                        job.event_id, job.kind, job.masked_to, self.sender.name, provider_id
                    )
                return
            except Exception as exc:
                if attempt == 5:
                    log.error(
                        "email_sent_not_recorded",
                        event_id=job.event_id,
                        kind=job.kind,
                        to=job.masked_to,
                        error=job.redact(f"{type(exc).__name__}: {exc}"),
                    )
                    return
                await asyncio.sleep(0.2 * 2**attempt)
