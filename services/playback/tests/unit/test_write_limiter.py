"""The in-process moving window of progress writes (embedded mode)."""

from __future__ import annotations

import asyncio

import pytest
from limits import parse

from streamia_kit.errors import StreamiaError
from streamia_kit.testing import wait_for
from streamia_playback.ratelimit import InProcessWindows, WriteLimiter


async def test_a_window_refuses_past_the_limit_until_its_oldest_hit_leaves() -> None:
    windows = InProcessWindows(parse("2/2 seconds"))
    assert await windows.judge("ann") is None
    await asyncio.sleep(1.0)  # the second hit a second after the first
    assert await windows.judge("ann") is None
    wait = await windows.judge("ann")
    assert wait is not None and 0 < wait <= 1.0  # the first leaves a second from now
    assert await windows.judge("bob") is None  # another user has a window of their own

    async def room() -> bool:
        return await windows.judge("ann") is None  # a refused hit takes no slot

    await wait_for(room, timeout=3, message="ann's oldest hit leaving the window")
    # Moving: only the first hit has left (the second stays a second more); its slot is
    # taken again and the window is full once more.
    assert await windows.judge("ann") is not None


async def test_the_limiter_answers_429_with_retry_after_and_the_limit() -> None:
    limiter = WriteLimiter("2/10 seconds", None, "")
    await limiter.hit("ann")
    await limiter.hit("ann")
    with pytest.raises(StreamiaError) as refused:
        await limiter.hit("ann")
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    headers = refused.value.headers or {}
    assert headers["Retry-After"] in ("9", "10") and headers["RateLimit-Limit"] == "2"
    assert headers["RateLimit-Remaining"] == "0"
    assert headers["RateLimit-Reset"] == headers["Retry-After"]
