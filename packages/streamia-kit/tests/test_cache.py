"""The Redis cache under faults: a call cancelled at any moment (its request's deadline
passed, its client left) ends at once, whatever redis-py was doing."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from streamia_kit.cache import RedisCache, SingleFlight, cache_aside
from streamia_kit.testing import Stack, TcpProxy, cancel_at_each_step, stray_tasks, wait_for

CALLS = {
    "get": lambda cache: cache.get("movie:1"),
    "set": lambda cache: cache.set("movie:1", {"title": "Up"}, 60),
    "cache_aside": lambda cache: cache_aside(
        cache, SingleFlight(), "movie:2", 60, _load_from_database
    ),
}


async def _load_from_database() -> dict[str, Any]:
    return {"title": "Loaded"}


@pytest.mark.parametrize("fault", ["slow", "black_hole"])
@pytest.mark.parametrize("call", list(CALLS))
async def test_a_cache_call_cancelled_at_any_moment_ends_at_once(
    distributed_stack: Stack, redis_proxy: TcpProxy, fault: str, call: str
) -> None:
    redis = Redis.from_url(
        f"redis://127.0.0.1:{redis_proxy.port}/0", socket_connect_timeout=1.0, socket_timeout=2.0
    )
    before = stray_tasks()
    try:
        await redis.ping()  # a pooled connection from before the fault
        await (redis_proxy.slow(0.3) if fault == "slow" else redis_proxy.black_hole())
        # A new cache each run: its breaker has not opened on an earlier run's failure.
        await cancel_at_each_step(
            lambda: CALLS[call](RedisCache(redis, prefix=f"{distributed_stack.namespace}:"))
        )
        # The calls' own tasks end too (one that swallowed its cancel, with its timeout).
        await wait_for(lambda: not stray_tasks() - before, timeout=5.0, message="no task left")
    finally:
        await redis_proxy.restore()
        await redis.aclose()
