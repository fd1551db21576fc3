"""The email-queue port: the consumer enqueues (idempotently, by event id); a runner delivers."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.faults import TransientError, is_transient
from streamia_notifications.emails.schemas import EmailJob


class EnqueueFailed(Exception):
    """The job could not be queued; the event is redelivered later. Carries no payload."""

    @classmethod
    def from_error(cls, exc: Exception, event_id: str) -> EnqueueFailed:
        """Name the cause without quoting it (a driver's message may hold the reset token)."""
        kind = EnqueueUnavailable if is_transient(exc) else cls
        return kind(f"{type(exc).__name__} queueing {event_id}")


class EnqueueUnavailable(EnqueueFailed, TransientError):
    """The queue's store is unreachable: the consumer waits for it, spending no attempt."""


class EmailQueue(Protocol):
    async def enqueue(self, session: AsyncSession, job: EmailJob) -> bool:
        """Queue the job unless one with its event id exists; True if it was new."""
        ...

    async def start(self) -> None:
        """Start running jobs (resuming those left from an earlier run)."""
        ...

    async def stop(self) -> None: ...

    async def ping(self) -> bool: ...
