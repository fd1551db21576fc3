"""What each /metrics page serves, and the backlog gauges sampled in the background.

Every Streamia series carries a `service` label. A service alone in its process serves the
whole process registry. In embedded mode seven apps share one process and one registry: each
serves only the series labelled with its name, and the gateway the process-wide rest
(`process_*`, `python_*`, the shared cache's errors), so no series is scraped twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select

from streamia_kit.bus import EventBus
from streamia_kit.db import Database
from streamia_kit.faults import Supervisor

OUTBOX_BACKLOG = Gauge(
    "streamia_outbox_backlog",
    "Events committed to the outbox and not yet published",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "streamia_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox event (0 when the outbox is empty)",
    ["service"],
)
QUEUE_DEPTH = Gauge(
    "streamia_queue_depth",
    "Events waiting in a consumer's queue, not yet delivered to it (RabbitMQ: ready)",
    ["service", "queue"],
)
DEAD_LETTER_DEPTH = Gauge(
    "streamia_dead_letter_depth",
    "Events parked in a consumer's dead-letter queue",
    ["service", "queue"],
)

# How often the backlog gauges are measured: a count per queue and one outbox query, cheap
# next to the work they describe; fresh enough for a 15 s scrape.
SAMPLE_SECONDS = 5.0


class _Series(Collector):
    """The samples of the process registry whose labels pass `keep`."""

    def __init__(self, keep: Callable[[dict[str, str]], bool]) -> None:
        self._keep = keep

    def collect(self) -> Iterable[Metric]:
        for family in REGISTRY.collect():
            samples = [sample for sample in family.samples if self._keep(sample.labels)]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


def service_registry(service: str) -> CollectorRegistry:
    """One service's series of the shared process registry (embedded mode)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Series(lambda labels: labels.get("service") == service))
    return registry


def process_series() -> Collector:
    """The series of the process registry that belong to no service: `process_*`,
    `python_*` and the adapters the services share."""
    return _Series(lambda labels: "service" not in labels)


class BacklogSampler:
    """Measures, every few seconds, a service's outbox backlog and the depth of its queues
    and dead-letter queues, as gauges (the same numbers in both modes)."""

    def __init__(self, service: str, db: Database, outbox: Table, bus: EventBus) -> None:
        self.service = service
        self.db = db
        self.outbox = outbox
        self.bus = bus
        self._task = Supervisor("backlog-metrics", self._run, service=service, first_delay=1.0)

    def _queues(self) -> Sequence[str]:
        return [q for q, sub in self.bus.subscriptions.items() if sub.consumer == self.service]

    async def sample(self) -> None:
        """Measure once: outbox rows and age, then each own queue's depth and dead letters."""
        async with self.db.sessions() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(self.outbox.c.created_at)).select_from(
                        self.outbox
                    )
                )
            ).one()
        OUTBOX_BACKLOG.labels(self.service).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        OUTBOX_OLDEST_AGE.labels(self.service).set(max(age, 0.0))
        queues = self._queues()
        if queues:
            for queue, depth in (await self.bus.queue_depths(queues)).items():
                QUEUE_DEPTH.labels(self.service, queue).set(depth)
            for queue, dead in (await self.bus.dead_letter_counts(queues)).items():
                if dead is not None:  # None: not declared yet
                    DEAD_LETTER_DEPTH.labels(self.service, queue).set(dead)

    async def _run(self) -> None:
        # A failure (database or broker away) ends the run; the supervisor starts it again
        # with backoff, and the gauges keep their last measured values meanwhile.
        while True:
            started = time.monotonic()
            await self.sample()
            await asyncio.sleep(max(SAMPLE_SECONDS - (time.monotonic() - started), 0.1))

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
