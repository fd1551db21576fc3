"""Email jobs in the service's own database, run by an asyncio runner in this process.

The embedded mode's queue: the job row is written in the consumer's inbox transaction, so an
event and its email job are committed together, and a restart resumes whatever is pending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.db import Database, on_commit, utcnow
from streamia_kit.faults import Supervisor, is_transient
from streamia_notifications.config import NotificationsSettings
from streamia_notifications.emails.schemas import EmailJob
from streamia_notifications.jobs.policy import DeliveryPolicy
from streamia_notifications.jobs.queue import EnqueueFailed
from streamia_notifications.jobs.repository import QueuedEmailsRepository

log = structlog.get_logger("streamia.notifications.jobs")

# aiosqlite's DEBUG lines quote every statement's parameters, and a job's payload holds the
# reset token: never let them through, whatever the root level.
logging.getLogger("aiosqlite").setLevel(logging.INFO)


class DatabaseEmailQueue:
    def __init__(
        self, db: Database, policy: DeliveryPolicy, settings: NotificationsSettings
    ) -> None:
        self.db = db
        self.policy = policy
        self.settings = settings
        self._wakeup = asyncio.Event()
        self._supervisor = Supervisor("email-jobs", self._run, service="notifications")
        self._running: set[asyncio.Task[None]] = set()

    async def enqueue(self, session: AsyncSession, job: EmailJob) -> bool:
        try:
            added = await QueuedEmailsRepository(session).enqueue(job)
        except Exception as exc:
            # The driver's message would quote the statement's parameters: the reset token.
            raise EnqueueFailed.from_error(exc, job.event_id) from None
        # Wake the runner once the consumer's transaction has committed the row.
        on_commit(session, self.wake)
        log.info(
            "email_queued" if added else "email_already_queued",
            event_id=job.event_id,
            kind=job.kind,
            to=job.masked_to,
        )
        return added

    async def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        if self.db.is_sqlite:
            # One process owns a SQLite file: jobs locked at a crash can run again at once.
            async with self.db.transaction() as session:
                await QueuedEmailsRepository(session).release_all()
        self._supervisor.start()

    async def stop(self) -> None:
        await self._supervisor.stop()
        # Let emails in flight finish, so none is sent without being recorded.
        if self._running:
            await asyncio.wait(self._running, timeout=self.settings.email_job_timeout_seconds)
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def ping(self) -> bool:
        return self._supervisor.alive

    async def _run(self) -> None:
        """Claim due jobs and run them; waits out an unavailable database, and anything else
        ends the loop for its `Supervisor` to start it again."""
        poll = self.settings.email_poll_seconds
        while True:
            timeout = poll
            try:
                free = self.settings.email_concurrency - len(self._running)
                if free > 0:
                    claimed, next_due = await self._claim(free)
                    for event_id, payload, attempt in claimed:
                        task = asyncio.create_task(self._process(event_id, payload, attempt))
                        self._running.add(task)
                        task.add_done_callback(self._done)
                    if claimed:
                        continue
                    if next_due is not None:
                        timeout = max(0.0, min(poll, (next_due - utcnow()).total_seconds()))
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # The database is briefly unavailable: try again shortly.
                log.warning("email_jobs_poll_failed", error=f"{type(exc).__name__}: {exc}")
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()  # a slot is free

    async def _claim(self, limit: int) -> tuple[list[tuple[str, str, int]], datetime | None]:
        now = utcnow()
        # A job whose runner died becomes due again once its lease lapses.
        lease = now + timedelta(seconds=self.settings.email_job_timeout_seconds * 2)
        async with self.db.transaction() as session:
            repo = QueuedEmailsRepository(session)
            claimed = await repo.claim(now, lease, limit)
            next_due = None if claimed else await repo.next_due()
        return claimed, next_due

    async def _process(self, event_id: str, payload: str, attempt: int) -> None:
        job = EmailJob.model_validate_json(payload)
        decision = await self.policy.attempt(job, attempt)
        for pause in (0.1, 0.5, 2.0, None):
            try:
                async with self.db.transaction() as session:
                    repo = QueuedEmailsRepository(session)
                    if decision.retry_in is None:
                        await repo.finish(event_id)
                    else:
                        at = utcnow() + timedelta(seconds=decision.retry_in)
                        await repo.reschedule(event_id, at, decision.error)
                return
            except Exception as exc:
                if pause is None:  # the lease lapses and the job runs again; sent_emails guards
                    log.error(
                        "email_job_settle_failed",
                        event_id=event_id,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    return
                await asyncio.sleep(pause)
