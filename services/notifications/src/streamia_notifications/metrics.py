"""Prometheus metrics of the notification service (served by the kit's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

# outcome: sent | duplicate (already sent for this event) | expired (reset link already dead)
#          | retried (transient failure, tried again later) | failed (permanent) | gave_up
EMAILS = Counter(
    "streamia_emails", "Email delivery attempts by kind and outcome.", ["kind", "outcome"]
)
