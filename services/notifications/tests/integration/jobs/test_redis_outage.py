"""Issue 12, point 2: the arq email worker (distributed mode) lives through Redis outages — it
is restarted, not left dead, and what was queued meanwhile is sent once Redis is back, with no
restart of the service."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlparse

import pytest

from streamia_kit.db import new_id
from streamia_kit.events import UserRegistered
from streamia_kit.testing import REDIS, TcpProxy, serve_app, wait_for
from streamia_notifications.app import create_app

SENT_AFTER_RECOVERY = 5.0


def _registered(email: str) -> UserRegistered:
    return UserRegistered(user_id=new_id(), email=email, first_name="Ana", last_name="García")


@pytest.mark.parametrize("outage", [1, 5])
async def test_an_email_queued_while_redis_is_cut_is_sent_soon_after_it_returns(
    stack, settings_factory, mail, publish, new_address, outage
):
    if not stack.distributed:
        pytest.skip("embedded mode keeps its email jobs in the service's own database")
    target = urlparse(REDIS)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    app = create_app(settings_factory(redis_url=f"redis://127.0.0.1:{proxy.port}{target.path}"))
    try:
        async with serve_app(app) as client:

            async def ready() -> int:
                return (await client.get("/ready")).status_code

            before = await publish(app, _registered(new_address()))
            await wait_for(lambda: mail.find(event_id=before.id), message="the first email")

            await proxy.cut()
            cut_at = time.monotonic()
            during = await publish(app, _registered(new_address()))
            await wait_for(lambda: _is(ready, 503), message="/ready 503 during the outage")
            await asyncio.sleep(max(0.0, outage - (time.monotonic() - cut_at)))
            await proxy.restore()
            restored_at = time.monotonic()

            await _sent_soon_after(mail, during.id, restored_at, "the email queued meanwhile")
            await wait_for(lambda: _is(ready, 200), message="/ready 200 after the outage")
            assert time.monotonic() - restored_at < SENT_AFTER_RECOVERY
            after = await publish(app, _registered(new_address()))
            await wait_for(lambda: mail.find(event_id=after.id), message="an email after it")
            assert len(mail.find(event_id=during.id)) == 1
    finally:
        await proxy.close()


async def _sent_soon_after(mail, event_id: str, restored_at: float, what: str) -> None:
    """The email of `event_id` is sent within SENT_AFTER_RECOVERY of Redis's return."""
    await wait_for(lambda: mail.find(event_id=event_id), timeout=SENT_AFTER_RECOVERY, message=what)
    assert time.monotonic() - restored_at < SENT_AFTER_RECOVERY


async def _is(status, expected: int) -> bool:
    return await status() == expected


async def test_a_job_whose_run_redis_cut_short_runs_once_redis_is_back(
    stack, settings_factory, mail, publish, new_address
):
    """arq marks a job in progress, then reads its arguments: when Redis goes between the two,
    the mark stays (for the job timeout plus 10 s, two minutes here) and every worker skips the
    job as running elsewhere. Its email must still come within seconds of Redis's return."""
    if not stack.distributed:
        pytest.skip("embedded mode keeps its email jobs in the service's own database")
    from arq.constants import in_progress_key_prefix
    from redis.asyncio import Redis

    target = urlparse(REDIS)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    direct = Redis.from_url(REDIS)
    app = create_app(settings_factory(redis_url=f"redis://127.0.0.1:{proxy.port}{target.path}"))
    try:
        async with serve_app(app):
            queue = app.state.email_queue
            worker = queue._worker
            worker.allow_pick_jobs = False  # the job waits in the queue for the staged run
            event = await publish(app, _registered(new_address()))
            job_id = queue.job_id(event.id)
            await wait_for(
                lambda: _queued(direct, queue.queue_name, job_id), message="the job queued"
            )
            score = await direct.zscore(queue.queue_name, job_id)
            # What arq's start_jobs does: the in-progress mark, then the run in a task of its
            # own, which the next poll looks at. Redis goes between the two.
            await direct.psetex(
                in_progress_key_prefix + job_id, int(worker.in_progress_timeout_s * 1000), b"1"
            )
            assert worker.in_progress_timeout_s > SENT_AFTER_RECOVERY * 4
            await proxy.cut()
            await worker.sem.acquire()
            worker.job_counter += 1
            run = asyncio.create_task(worker.run_job(job_id, int(score)))
            run.add_done_callback(lambda _: worker._release_sem_dec_counter_on_complete())
            worker.tasks[job_id] = run
            with pytest.raises(Exception):  # noqa: B017 - whichever error redis-py raises
                await run
            worker.allow_pick_jobs = True
            await proxy.restore()
            restored_at = time.monotonic()
            await _sent_soon_after(mail, event.id, restored_at, "the job Redis cut short")
            assert len(mail.find(event_id=event.id)) == 1
    finally:
        await direct.aclose()
        await proxy.close()


async def _queued(redis, queue_name: str, job_id: str) -> bool:
    return await redis.zscore(queue_name, job_id) is not None
