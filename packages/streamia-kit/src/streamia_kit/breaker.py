"""A circuit breaker per upstream with opossum's semantics: error percentage over a rolling window.

Hand-written because the maintained asyncio breakers (pybreaker, aiobreaker, purgatory)
trip on consecutive failures, not on an error percentage with a minimum volume.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class State(enum.IntEnum):
    """Breaker states; the values are what the Prometheus gauge reports."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


@dataclass(slots=True)
class _Bucket:
    start: float
    successes: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call the upstream; `probe` is the one half-open trial call."""

    probe: bool
    generation: int


class CircuitBreaker:
    """Opens at >= threshold % failures once `volume_threshold` calls fell in the window."""

    def __init__(
        self,
        name: str,
        *,
        error_threshold_percent: float = 50.0,
        window_seconds: float = 10.0,
        buckets: int = 10,
        volume_threshold: int = 10,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitBreaker, State], None] | None = None,
    ) -> None:
        if buckets < 1 or window_seconds <= 0:
            raise ValueError("the rolling window needs at least one bucket and a positive length")
        self.name = name
        self.threshold = error_threshold_percent
        self.window = window_seconds
        self.bucket_width = window_seconds / buckets
        self.volume_threshold = volume_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._on_change = on_change
        self._buckets: deque[_Bucket] = deque()
        self._state = State.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False
        # Bumped on every transition, so a call that began before one cannot steer the next.
        self._generation = 0

    @classmethod
    def on_first_failure(cls, name: str, retry_seconds: float) -> CircuitBreaker:
        """For a best-effort dependency every request touches (a cache, the revocation
        store): open on one failure, refuse for `retry_seconds`, then let one call probe."""
        return cls(
            name,
            volume_threshold=1,
            window_seconds=retry_seconds,
            buckets=1,
            reset_seconds=retry_seconds,
        )

    @property
    def state(self) -> State:
        """The current state; an open breaker whose reset time has passed reads half-open."""
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.reset_seconds:
            return State.HALF_OPEN
        return self._state

    def retry_after(self) -> float:
        """Seconds until the breaker lets a probe through (0 when it would now)."""
        if self._state is State.OPEN:
            return max(0.0, self._opened_at + self.reset_seconds - self._clock())
        return 0.0

    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after())))

    def acquire(self) -> Permit | None:
        """A permit to call the upstream, or None while the circuit refuses calls."""
        if self._state is State.CLOSED:
            return Permit(False, self._generation)
        if self._state is State.OPEN:
            if self._clock() - self._opened_at < self.reset_seconds:
                return None
            self._transition(State.HALF_OPEN)
        if self._probe_in_flight:
            return None
        self._probe_in_flight = True
        return Permit(True, self._generation)

    def record(self, permit: Permit, ok: bool) -> None:
        """Report how the call made under `permit` went."""
        if permit.generation != self._generation:
            return  # began under an earlier state: its outcome is stale
        if permit.probe:
            self._probe_in_flight = False
            if ok:
                self._buckets.clear()
                self._transition(State.CLOSED)
            else:
                self._open()
            return
        bucket = self._current_bucket()
        if ok:
            bucket.successes += 1
            return
        bucket.failures += 1
        failures = sum(b.failures for b in self._buckets)
        total = failures + sum(b.successes for b in self._buckets)
        if total >= self.volume_threshold and failures * 100.0 >= self.threshold * total:
            self._open()

    async def attempt(
        self,
        call: Callable[[], Awaitable[Any]],
        on_failure: Callable[[Exception], None] | None = None,
    ) -> tuple[bool, Any]:
        """Run `call` under a permit: (True, its result), or (False, None) when the circuit
        refuses or `call` raises (a failure, told to `on_failure`): for a best-effort
        dependency whose absence the caller works around."""
        permit = self.acquire()
        if permit is None:
            return False, None
        try:
            result = await call()
        except Exception as exc:
            self.record(permit, ok=False)
            if on_failure is not None:
                on_failure(exc)
            return False, None
        except BaseException:
            self.release(permit)
            raise
        self.record(permit, ok=True)
        return True, result

    def probe_now(self) -> None:
        """Let the next call through as the half-open probe now, not at the end of the reset
        time: the upstream says it is ready again (its `/ready`). No-op unless open."""
        if self._state is State.OPEN:
            self._opened_at = min(self._opened_at, self._clock() - self.reset_seconds)

    def release(self, permit: Permit) -> None:
        """Give a permit back without an outcome (the client went away mid-call)."""
        if permit.probe and permit.generation == self._generation:
            self._probe_in_flight = False

    def counts(self) -> tuple[int, int]:
        """(successes, failures) currently in the rolling window."""
        self._roll(self._clock())
        return (sum(b.successes for b in self._buckets), sum(b.failures for b in self._buckets))

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._buckets.clear()
        self._transition(State.OPEN)

    def _transition(self, state: State) -> None:
        self._state = state
        self._generation += 1
        self._probe_in_flight = False
        if self._on_change is not None:
            self._on_change(self, state)

    def _roll(self, now: float) -> None:
        while self._buckets and now - self._buckets[0].start >= self.window:
            self._buckets.popleft()

    def _current_bucket(self) -> _Bucket:
        now = self._clock()
        self._roll(now)
        if self._buckets and now - self._buckets[-1].start < self.bucket_width:
            return self._buckets[-1]
        bucket = _Bucket(start=now - (now % self.bucket_width))
        self._buckets.append(bucket)
        return bucket
