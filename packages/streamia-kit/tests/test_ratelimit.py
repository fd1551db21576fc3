"""The in-process rate-limit storage: expiry without a sweep per request."""

from __future__ import annotations

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from streamia_kit.ratelimit import SweptMemoryStorage
from streamia_kit.testing import wait_for


async def test_hits_from_many_clients_start_one_sweep_per_period() -> None:
    storage = SweptMemoryStorage()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("300/minute")
    await limiter.hit(item, "global", "10.0.0.0")
    first = storage.timer
    assert first is not None
    await first  # the sweep has ended: limits' own storage would start another on the next hit
    for client in range(1, 2000):
        await limiter.hit(item, "global", f"10.0.{client // 250}.{client % 250}")
    assert storage.timer is first


async def test_a_window_still_ends_between_sweeps() -> None:
    storage = SweptMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("2/second")
    assert await limiter.hit(item, "login", "10.0.0.1")
    assert await limiter.hit(item, "login", "10.0.0.1")
    assert not await limiter.hit(item, "login", "10.0.0.1")
    await wait_for(lambda: limiter.test(item, "login", "10.0.0.1"), timeout=3, message="window end")
    assert await limiter.hit(item, "login", "10.0.0.1")
