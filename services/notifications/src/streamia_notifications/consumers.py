"""Thin consumers: turn each event into an email job, queued once per event id."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.events import Envelope, PasswordResetRequested, UserDeleted, UserRegistered
from streamia_kit.service import Service
from streamia_notifications.emails.schemas import EmailJob
from streamia_notifications.jobs.queue import EmailQueue


def register(service: Service, queue: EmailQueue) -> None:
    async def on_user_registered(
        session: AsyncSession, event: UserRegistered, envelope: Envelope
    ) -> None:
        await queue.enqueue(session, EmailJob.welcome(event, envelope))

    async def on_password_reset_requested(
        session: AsyncSession, event: PasswordResetRequested, envelope: Envelope
    ) -> None:
        await queue.enqueue(session, EmailJob.password_reset(event, envelope))

    async def on_user_deleted(
        session: AsyncSession, event: UserDeleted, envelope: Envelope
    ) -> None:
        await queue.enqueue(session, EmailJob.farewell(event, envelope))

    service.consume(UserRegistered, on_user_registered)
    service.consume(PasswordResetRequested, on_password_reset_requested)
    service.consume(UserDeleted, on_user_deleted)
