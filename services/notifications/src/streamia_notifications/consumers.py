"""Thin consumers: turn each event into an email job, queued once per event id; user.*
events also keep the recipients projection that comment.hidden is addressed from."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.events import (
    CommentHidden,
    Envelope,
    PasswordResetRequested,
    UserDeleted,
    UserRegistered,
    UserUpdated,
)
from streamia_kit.service import Service
from streamia_notifications.emails.schemas import EmailJob
from streamia_notifications.jobs.queue import EmailQueue
from streamia_notifications.recipients.repository import RecipientsRepository

log = structlog.get_logger("streamia.notifications")


def register(service: Service, queue: EmailQueue) -> None:
    async def remember(
        session: AsyncSession, event: UserRegistered | UserUpdated, envelope: Envelope
    ) -> None:
        await RecipientsRepository(session).upsert(
            event.user_id,
            event.email,
            event.first_name,
            event.last_name,
            event.language,
            envelope.time.timestamp(),
        )

    async def on_user_registered(
        session: AsyncSession, event: UserRegistered, envelope: Envelope
    ) -> None:
        await remember(session, event, envelope)
        await queue.enqueue(session, EmailJob.welcome(event, envelope))

    async def on_password_reset_requested(
        session: AsyncSession, event: PasswordResetRequested, envelope: Envelope
    ) -> None:
        await queue.enqueue(session, EmailJob.password_reset(event, envelope))

    async def on_user_deleted(
        session: AsyncSession, event: UserDeleted, envelope: Envelope
    ) -> None:
        await RecipientsRepository(session).remove(event.user_id)
        await queue.enqueue(session, EmailJob.farewell(event, envelope))

    async def on_comment_hidden(
        session: AsyncSession, event: CommentHidden, envelope: Envelope
    ) -> None:
        recipient = await RecipientsRepository(session).get(event.user_id)
        if recipient is None:  # a deleted account (or one from before this projection)
            log.info("comment_hidden_author_unknown", event_id=envelope.id)
            return
        await queue.enqueue(session, EmailJob.comment_hidden(event, envelope, recipient))

    service.consume(UserRegistered, on_user_registered)
    service.consume(UserUpdated, remember)
    service.consume(PasswordResetRequested, on_password_reset_requested)
    service.consume(UserDeleted, on_user_deleted)
    service.consume(CommentHidden, on_comment_hidden)
