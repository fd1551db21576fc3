"""Email jobs in Redis with arq; the worker runs inside the service process.

The arq job id is derived from the event id, so arq refuses a second job for an event while
the first is queued; `sent_emails` covers the time after it ran. Jobs are JSON, not pickle."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import orjson
import structlog
from arq import Retry, Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import func
from sqlalchemy.ext.asyncio import AsyncSession

from streamia_kit.faults import Supervisor
from streamia_notifications.config import NotificationsSettings
from streamia_notifications.emails.schemas import EmailJob
from streamia_notifications.jobs.policy import DeliveryPolicy
from streamia_notifications.jobs.queue import EnqueueFailed, EnqueueUnavailable

log = structlog.get_logger("streamia.notifications.jobs")

FUNCTION = "send_email"
_TAG = "__email_job__"

# arq logs each job's arguments at INFO; EmailJob's repr hides the token, and we log our own
# structured lines anyway.
logging.getLogger("arq").setLevel(logging.WARNING)


def _encode(value: Any) -> Any:
    if isinstance(value, EmailJob):
        return {_TAG: value.model_dump(mode="json")}
    if isinstance(value, BaseException):
        return type(value).__name__
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_encode)


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _TAG in obj:
        return EmailJob.model_validate(obj[_TAG])
    return obj


def loads(raw: bytes) -> Any:
    return json.loads(raw, object_hook=_decode)


class ArqEmailQueue:
    def __init__(self, settings: NotificationsSettings, policy: DeliveryPolicy) -> None:
        assert settings.redis_url, "the arq queue needs STREAMIA_REDIS_URL"
        self.settings = settings
        self.policy = policy
        self.redis = RedisSettings.from_dsn(settings.redis_url)
        prefix = f"{settings.namespace}:" if settings.namespace else ""
        self.prefix = f"{prefix}streamia:notifications"
        self.queue_name = f"{self.prefix}:emails"
        self._pool: ArqRedis | None = None
        self._worker: Worker | None = None
        self._supervisor: Supervisor | None = None

    def job_id(self, event_id: str) -> str:
        return f"{self.prefix}:email:{event_id}"

    async def _connect(self) -> ArqRedis:
        return await create_pool(
            self.redis,
            default_queue_name=self.queue_name,
            job_serializer=dumps,
            job_deserializer=loads,
        )

    async def enqueue(self, session: AsyncSession, job: EmailJob) -> bool:
        if self._pool is None:
            raise EnqueueUnavailable("email queue is not running")
        try:
            queued = await self._pool.enqueue_job(FUNCTION, job, _job_id=self.job_id(job.event_id))
        except Exception as exc:
            raise EnqueueFailed.from_error(exc, job.event_id) from None
        log.info(
            "email_queued" if queued else "email_already_queued",
            event_id=job.event_id,
            kind=job.kind,
            to=job.masked_to,
        )
        return queued is not None

    async def _run_job(self, ctx: dict[str, Any], job: EmailJob) -> None:
        decision = await self.policy.attempt(job, int(ctx["job_try"]))
        if decision.retry_in is not None:
            raise Retry(defer=decision.retry_in)

    async def start(self) -> None:
        s = self.settings
        self._pool = await self._connect()
        self._worker = Worker(
            functions=[func(self._run_job, name=FUNCTION, max_tries=s.email_max_attempts + 1)],
            queue_name=self.queue_name,
            redis_settings=self.redis,
            handle_signals=False,
            max_jobs=s.email_concurrency,
            # The policy times out the delivery itself; this only catches a stuck job.
            job_timeout=s.email_job_timeout_seconds * 2,
            keep_result=0,  # results would keep the job's arguments (the token) in Redis
            poll_delay=s.email_poll_seconds,
            health_check_key=f"{self.queue_name}:health-check",
            job_serializer=dumps,
            job_deserializer=loads,
            log_results=False,
        )
        # arq's main loop ends at the first Redis error: start it again (same worker, so jobs in
        # flight are kept) for as long as it takes.
        self._supervisor = Supervisor("email-worker", self._worker.main, service="notifications")
        self._supervisor.start()

    async def stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            # Stop taking jobs, let those in flight finish (none sent without a record).
            worker.allow_pick_jobs = False
            running = [t for t in worker.tasks.values() if not t.done()]
            if running:
                await asyncio.wait(running, timeout=self.settings.email_job_timeout_seconds)
        if self._supervisor is not None:
            await self._supervisor.stop()
            self._supervisor = None
        if worker is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await worker.close()
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def ping(self) -> bool:
        if self._pool is None or self._supervisor is None or not self._supervisor.alive:
            return False
        try:
            return bool(await self._pool.ping())
        except Exception:
            return False
