"""The rolling-window circuit breaker, on a fake clock."""

from __future__ import annotations

import pytest

from streamia_kit.breaker import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, **kwargs: float) -> CircuitBreaker:
    options = {
        "error_threshold_percent": 50.0,
        "window_seconds": 10.0,
        "buckets": 10,
        "volume_threshold": 10,
        "reset_seconds": 30.0,
        **kwargs,
    }
    return CircuitBreaker("users", clock=clock, **options)  # type: ignore[arg-type]


def call(breaker: CircuitBreaker, ok: bool) -> bool:
    """One call through the breaker; False when it refused the call."""
    permit = breaker.acquire()
    if permit is None:
        return False
    breaker.record(permit, ok)
    return True


def test_it_stays_closed_below_the_minimum_volume(clock: Clock) -> None:
    breaker = make(clock)
    for _ in range(9):
        assert call(breaker, False)
    assert breaker.state is State.CLOSED


def test_it_opens_once_half_the_calls_in_the_window_failed(clock: Clock) -> None:
    breaker = make(clock)
    for _ in range(5):
        call(breaker, True)
    for _ in range(4):
        call(breaker, False)
    assert breaker.state is State.CLOSED  # 4 of 9: under volume and under 50 %
    call(breaker, False)
    assert breaker.state is State.OPEN  # 5 of 10
    assert breaker.acquire() is None


def test_it_stays_closed_under_the_threshold(clock: Clock) -> None:
    breaker = make(clock)
    for _ in range(100):
        call(breaker, True)
        call(breaker, True)
        call(breaker, False)
    assert breaker.state is State.CLOSED


def test_failures_older_than_the_window_are_forgotten(clock: Clock) -> None:
    breaker = make(clock)
    for _ in range(9):
        call(breaker, False)
    clock.now += 10.5
    assert breaker.counts() == (0, 0)
    call(breaker, False)
    assert breaker.state is State.CLOSED


def test_the_window_rolls_bucket_by_bucket(clock: Clock) -> None:
    breaker = make(clock)
    for _ in range(6):
        call(breaker, False)
    clock.now += 5
    for _ in range(3):
        call(breaker, True)
    clock.now += 5.5  # the 6 failures have left the window; the 3 successes remain
    assert breaker.counts() == (3, 0)


def test_retry_after_counts_down_to_the_half_open_probe(clock: Clock) -> None:
    breaker = make(clock, volume_threshold=1)
    call(breaker, False)
    assert breaker.retry_after_header() == "30"
    clock.now += 12.2
    assert breaker.retry_after_header() == "18"
    clock.now += 17.8
    assert breaker.state is State.HALF_OPEN


def test_half_open_lets_exactly_one_probe_through(clock: Clock) -> None:
    breaker = make(clock, volume_threshold=1)
    call(breaker, False)
    clock.now += 30
    probe = breaker.acquire()
    assert probe is not None and probe.probe
    assert breaker.acquire() is None
    breaker.record(probe, True)
    assert breaker.state is State.CLOSED
    assert breaker.counts() == (0, 0)


def test_a_failed_probe_opens_it_again_for_the_full_reset_time(clock: Clock) -> None:
    breaker = make(clock, volume_threshold=1)
    call(breaker, False)
    clock.now += 30
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, False)
    assert breaker.state is State.OPEN
    clock.now += 29
    assert breaker.acquire() is None
    clock.now += 1
    assert breaker.acquire() is not None


def test_a_released_probe_lets_the_next_call_probe(clock: Clock) -> None:
    breaker = make(clock, volume_threshold=1)
    call(breaker, False)
    clock.now += 30
    probe = breaker.acquire()
    assert probe is not None
    breaker.release(probe)
    assert breaker.acquire() is not None


def test_a_call_begun_before_the_breaker_opened_cannot_close_it(clock: Clock) -> None:
    breaker = make(clock, volume_threshold=2)
    slow = breaker.acquire()
    assert slow is not None
    call(breaker, False)
    call(breaker, False)
    assert breaker.state is State.OPEN
    breaker.record(slow, True)
    assert breaker.state is State.OPEN


def test_state_changes_are_reported(clock: Clock) -> None:
    seen: list[State] = []
    breaker = make(clock, volume_threshold=1)
    breaker._on_change = lambda _b, state: seen.append(state)
    call(breaker, False)
    clock.now += 30
    call(breaker, True)
    assert seen == [State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_probe_now_lets_the_next_call_probe_before_the_reset_time(clock: Clock) -> None:
    breaker = make(clock, volume_threshold=2)
    breaker.probe_now()  # closed: nothing to do
    assert breaker.state is State.CLOSED
    assert [call(breaker, False), call(breaker, False)] == [True, True]
    assert breaker.state is State.OPEN
    clock.now += 1
    assert call(breaker, True) is False
    breaker.probe_now()
    assert breaker.state is State.HALF_OPEN
    assert call(breaker, True) is True  # the probe succeeds: closed
    assert breaker.state is State.CLOSED
