"""The in-process moving window of progress writes (embedded mode)."""

from __future__ import annotations

import pytest

from streamia_kit.errors import StreamiaError
from streamia_playback.ratelimit import InProcessWindows, WriteLimiter


async def test_a_window_refuses_past_the_limit_until_its_oldest_hit_leaves() -> None:
    now = [1000.0]
    windows = InProcessWindows(limit=3, window=10.0, clock=lambda: now[0])
    for _ in range(3):
        assert await windows.judge("ann") is None
        now[0] += 1.0  # hits at 1000, 1001, 1002
    assert await windows.judge("ann") == pytest.approx(7.0)  # 1000 leaves at 1010
    assert await windows.judge("bob") is None  # another user has a window of their own
    now[0] = 1009.9
    assert await windows.judge("ann") == pytest.approx(0.1)
    now[0] = 1010.0
    assert await windows.judge("ann") is None  # moving: one slot freed, not the whole window
    assert await windows.judge("ann") == pytest.approx(1.0)  # next: 1001 leaves at 1011


async def test_users_idle_for_a_window_are_dropped_by_a_sweep_once_per_window() -> None:
    now = [1000.0]
    windows = InProcessWindows(limit=2, window=10.0, clock=lambda: now[0])
    for user in range(100):
        await windows.judge(f"user-{user}")
    assert len(windows._hits) == 100
    now[0] += 5.0
    await windows.judge("late")
    assert len(windows._hits) == 101  # no sweep before a window has passed
    now[0] += 5.0
    await windows.judge("later")  # the first 100 are idle for 10 s now
    assert set(windows._hits) == {"late", "later"}


async def test_the_limiter_answers_429_with_retry_after_and_the_limit() -> None:
    now = [1000.0]
    limiter = WriteLimiter("2/10 seconds", None, "")
    limiter.windows = InProcessWindows(limit=2, window=10.0, clock=lambda: now[0])
    await limiter.hit("ann")
    await limiter.hit("ann")
    now[0] += 2.5
    with pytest.raises(StreamiaError) as refused:
        await limiter.hit("ann")
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    headers = refused.value.headers or {}
    assert headers["Retry-After"] == "8" and headers["RateLimit-Limit"] == "2"
    assert headers["RateLimit-Remaining"] == "0"
