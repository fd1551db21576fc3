"""The in-process global limit: a sliding window counter across window edges."""

from __future__ import annotations

from limits import parse

from streamia_gateway.ratelimit import MemorySlidingWindow

WINDOW_START = 60.0 * 1_000_000  # a minute's start, as time.time() counts


def test_the_previous_windows_hits_weigh_by_the_part_of_it_still_covered() -> None:
    limit = MemorySlidingWindow(parse("10/minute"))
    for _ in range(10):
        assert limit.hit_now("a", WINDOW_START + 30).allowed
    assert not limit.hit_now("a", WINDOW_START + 59).allowed
    # 45 s into the next window a quarter of the previous one still counts: floor(2.5) = 2.
    late = WINDOW_START + 60 + 45
    verdicts = [limit.hit_now("a", late) for _ in range(9)]
    assert [v.allowed for v in verdicts] == [True] * 8 + [False]
    assert dict(verdicts[-1].headers)[b"ratelimit-remaining"] == b"0"
    assert limit.hit_now("b", late).allowed  # each identifier counts alone


def test_a_window_with_no_hits_between_forgets_everything() -> None:
    limit = MemorySlidingWindow(parse("2/minute"))
    for _ in range(2):
        assert limit.hit_now("a", WINDOW_START + 1).allowed
    assert not limit.hit_now("a", WINDOW_START + 2).allowed
    verdict = limit.hit_now("a", WINDOW_START + 121)  # two windows on
    assert verdict.allowed
    assert dict(verdict.headers)[b"ratelimit-remaining"] == b"1"


def test_refused_hits_are_not_counted() -> None:
    limit = MemorySlidingWindow(parse("1/minute"))
    assert limit.hit_now("a", WINDOW_START + 1).allowed
    for _ in range(5):
        assert not limit.hit_now("a", WINDOW_START + 2).allowed
    # The next window: only the one allowed hit weighs, 59 s in floor(1 * 1/60) = 0.
    assert limit.hit_now("a", WINDOW_START + 60 + 59).allowed
