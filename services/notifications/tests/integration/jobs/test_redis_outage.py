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

            await wait_for(
                lambda: mail.find(event_id=during.id),
                timeout=SENT_AFTER_RECOVERY,
                message="the email queued during the outage",
            )
            await wait_for(lambda: _is(ready, 200), message="/ready 200 after the outage")
            assert time.monotonic() - restored_at < SENT_AFTER_RECOVERY
            after = await publish(app, _registered(new_address()))
            await wait_for(lambda: mail.find(event_id=after.id), message="an email after it")
            assert len(mail.find(event_id=during.id)) == 1
    finally:
        await proxy.close()


async def _is(status, expected: int) -> bool:
    return await status() == expected
