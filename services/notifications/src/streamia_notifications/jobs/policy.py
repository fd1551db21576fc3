"""The retry rules both job runners share: transient failures back off, permanent ones stop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from streamia_kit.telemetry import Tracing
from streamia_notifications.config import NotificationsSettings
from streamia_notifications.emails.schemas import EmailJob
from streamia_notifications.emails.service import Mailer
from streamia_notifications.metrics import emails
from streamia_notifications.senders.base import PermanentSendError

log = structlog.get_logger("streamia.notifications")


@dataclass(frozen=True, slots=True)
class Decision:
    retry_in: float | None = None  # None: the job is finished
    error: str | None = None  # redacted: safe for a log line or a database column


class DeliveryPolicy:
    def __init__(
        self, settings: NotificationsSettings, mailer: Mailer, tracing: Tracing | None = None
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        self.tracing = tracing or Tracing.disabled()

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        s = self.settings
        return min(s.email_retry_base_seconds * 2 ** (attempt - 1), s.email_retry_max_seconds)

    async def attempt(self, job: EmailJob, attempt: int) -> Decision:
        """Try to deliver once and decide: finished (sent, skipped, failed for good) or retry."""
        with self.tracing.span_after(
            job.traceparent,
            f"send email {job.kind}",
            trace.SpanKind.CLIENT,
            {"email.kind": job.kind, "email.attempt": attempt, "email.event_id": job.event_id},
        ) as span:
            decision = await self._attempt(job, attempt)
            if decision.error is not None and span.is_recording():
                span.set_status(Status(StatusCode.ERROR, decision.error))
            return decision

    async def _attempt(self, job: EmailJob, attempt: int) -> Decision:
        fields = dict(event_id=job.event_id, kind=job.kind, to=job.masked_to, attempt=attempt)
        try:
            async with asyncio.timeout(self.settings.email_job_timeout_seconds):
                outcome = await self.mailer.deliver(job)
        except PermanentSendError as exc:
            error = job.redact(str(exc))[:500]
            emails(job.kind, "failed").inc()
            log.error("email_failed_permanently", **fields, error=error)
            return Decision(error=error)
        except Exception as exc:  # transient send errors, timeouts, and anything unexpected
            error = job.redact(f"{type(exc).__name__}: {exc}")[:500]
            if attempt >= self.settings.email_max_attempts:
                emails(job.kind, "gave_up").inc()
                log.error("email_gave_up", **fields, error=error)
                return Decision(error=error)
            delay = self.backoff(attempt)
            emails(job.kind, "retried").inc()
            log.warning("email_retry_scheduled", **fields, retry_in=delay, error=error)
            return Decision(retry_in=delay, error=error)
        emails(job.kind, outcome).inc()
        log.info(f"email_{outcome}", **fields, sender=self.mailer.sender.name)
        return Decision()
