"""Email jobs in Redis with arq; the worker runs inside the service process.

The arq job id is derived from the event id, so arq refuses a second job for an event while
the first is queued; `sent_emails` covers the time after it ran. Jobs are JSON, not pickle."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import orjson
import structlog
from arq import Retry, Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
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


class _EmailWorker(Worker):
    """arq's worker, minus one wait: a job whose run was cut short by a Redis error (its
    in-progress key set, then the read of its arguments lost with the connection) would be
    skipped as "running elsewhere" until that key expired, the job timeout plus 10 s later:
    its email would come most of a minute after a blip of seconds. The next start of the main loop
    (the supervisor restarts it once Redis answers) frees those keys, so the job runs at once.
    A key older than its timeout is left alone: it has expired, and another worker may
    already hold a new one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stranded: dict[str, float] = {}  # job id -> when its run failed (monotonic)

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except Exception:
            # arq handles what the job itself raises: what reaches here is Redis failing
            # around it, with the in-progress key maybe still set.
            self._stranded[job_id] = time.monotonic()
            raise

    async def main(self) -> None:
        if self._stranded:
            now = time.monotonic()
            keys = [
                in_progress_key_prefix + job_id
                for job_id, failed_at in self._stranded.items()
                if now - failed_at < self.in_progress_timeout_s
            ]
            if keys:
                await self.pool.delete(*keys)  # Redis still away: raises, tried next start
            log.info("email_jobs_released", jobs=len(keys))
            self._stranded.clear()
        await super().main()


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
        self._worker: _EmailWorker | None = None
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
        self._worker = _EmailWorker(
            functions=[func(self._run_job, name=FUNCTION, max_tries=s.email_max_attempts + 1)],
            queue_name=self.queue_name,
            redis_settings=self.redis,
            handle_signals=False,
            max_jobs=s.email_concurrency,
            # The policy times out the delivery itself; this only catches a stuck job. arq
            # marks a job in progress for this + 10 s: a mark that Redis stranded (see
            # _EmailWorker) and nobody frees holds the job back that long, so it stays short.
            job_timeout=s.email_job_timeout_seconds + 5,
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
