"""The email-queue port: the consumer enqueues (idempotently, by event id); a runner delivers."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_notifications.emails.schemas import EmailJob


class EnqueueFailed(Exception):
    """The job could not be queued; the event is redelivered later. Carries no payload."""


class EmailQueue(Protocol):
    async def enqueue(self, session: AsyncSession, job: EmailJob) -> bool:
        """Queue the job unless one with its event id exists; True if it was new."""
        ...

    async def start(self) -> None:
        """Start running jobs (resuming those left from an earlier run)."""
        ...

    async def stop(self) -> None: ...

    async def ping(self) -> bool: ...
