"""Prometheus metrics of the notification service (served by the kit's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

# outcome: sent | duplicate (already sent for this event) | expired (reset link already dead)
#          | retried (transient failure, tried again later) | failed (permanent) | gave_up
# `service` (always "notifications"): every Streamia series names its service, which is how
# the embedded platform's /metrics pages share one registry (streamia_kit.metrics).
_EMAILS = Counter(
    "streamia_emails",
    "Email delivery attempts by kind and outcome.",
    ["service", "kind", "outcome"],
)


def emails(kind: str, outcome: str) -> Counter:
    """The email counter of one kind and outcome."""
    return _EMAILS.labels("notifications", kind, outcome)
