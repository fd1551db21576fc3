"""Prometheus metrics of the playback service (served by the kit's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# outcome: advanced (the one-UPDATE hot path) | started (first report of a user and movie)
#          | stored (a state change or a row re-created) | stale (an older client timestamp
#          lost to a newer one) | rate_limited
# `service` (always "playback"): every Streamia series names its service, which is how the
# embedded platform's /metrics pages share one registry (streamia_kit.metrics).
_PROGRESS_WRITES = Counter(
    "streamia_playback_progress_writes", "Progress reports by outcome.", ["service", "outcome"]
)
PROGRESS_UPSERT_SECONDS = Histogram(
    "streamia_playback_progress_upsert_seconds",
    "Time to store one progress report, database transaction included.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
).labels("playback")
PROGRESS_BATCH_SIZE = Histogram(
    "streamia_playback_progress_batch_size",
    "Reports written by one group-commit transaction of the hot path.",
    ["service"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
).labels("playback")


def progress_writes(outcome: str) -> Counter:
    """The progress-report counter of one outcome."""
    return _PROGRESS_WRITES.labels("playback", outcome)
