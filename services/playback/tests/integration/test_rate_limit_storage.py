"""The per-user write limit in Redis: judged in shared batches, and a Redis that is down or
hangs lets writes through (slowed by at most one timeout) instead of failing them."""

from __future__ import annotations

import asyncio
import time

import pytest

from streamia_kit.errors import StreamiaError
from streamia_kit.testing import wait_for
from streamia_playback.ratelimit import STORAGE_TIMEOUT_SECONDS

pytestmark = pytest.mark.parametrize("stack_name", ["distributed"], indirect=True)


@pytest.fixture
def app(make_app, redis_proxy):
    return make_app(
        redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0", progress_rate_limit="5/minute"
    )


async def test_hits_judged_in_one_batch_keep_the_limit_exactly(app, client, caller) -> None:
    windows = app.state.playback.limiter.windows
    users = [caller() for _ in range(3)]
    # 3 users x 8 hits at once: they share one or two script calls, judged hit by hit.
    verdicts = await asyncio.gather(*(windows.judge(u.id) for _ in range(8) for u in users))
    for i, user in enumerate(users):
        own = verdicts[i::3]
        assert [v is None for v in own] == [True] * 5 + [False] * 3, user
        assert all(55 < v <= 60 for v in own[5:])  # a slot frees a minute after the first


# Through the limiter itself: with Redis away, the token's revocation check answers 503
# before a write reaches it (the kit's rule: fail closed).
async def test_with_redis_cut_writes_go_through_and_are_limited_again_once_it_is_back(
    app, client, redis_proxy
) -> None:
    limiter = app.state.playback.limiter
    await limiter.hit("viewer")
    await redis_proxy.cut()
    for _ in range(8):
        await limiter.hit("viewer")  # unlimited while the limit cannot be counted
    await redis_proxy.restore()

    async def limited() -> bool:
        try:
            await limiter.hit("viewer")
        except StreamiaError as refused:
            return refused.status == 429
        return False

    # Back after the breaker's pause: the hit counted before the cut + those after it.
    await wait_for(limited, timeout=10, message="the limit counted in Redis again")


async def test_a_hung_redis_delays_writes_by_at_most_one_timeout(app, client, redis_proxy) -> None:
    limiter = app.state.playback.limiter
    await limiter.hit("viewer")
    await redis_proxy.black_hole()
    began = time.perf_counter()
    await asyncio.gather(*(limiter.hit("viewer") for _ in range(10)))
    assert time.perf_counter() - began < STORAGE_TIMEOUT_SECONDS + 1.0
    began = time.perf_counter()
    await limiter.hit("viewer")
    assert time.perf_counter() - began < 0.5  # the breaker: no second timeout at once
    await redis_proxy.restore()
