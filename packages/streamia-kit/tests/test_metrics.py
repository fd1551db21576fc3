"""Each /metrics page serves its own series once; backlog gauges measure the outbox, the
consumer's queue and its dead letters, on both stacks."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from streamia_kit.bus import MalformedMessage
from streamia_kit.events import Envelope, UserDeleted
from streamia_kit.metrics import BacklogSampler, process_series, service_registry
from streamia_kit.middleware import HTTP_REQUESTS
from streamia_kit.testing import wait_for


def _event(n: int) -> UserDeleted:
    return UserDeleted(user_id=f"user-{n}", email="gone@x.io", first_name="G", last_name="O")


def test_in_a_shared_process_each_service_serves_only_its_own_series() -> None:
    mine, theirs = f"svc-{uuid.uuid4().hex[:8]}", f"svc-{uuid.uuid4().hex[:8]}"
    HTTP_REQUESTS.labels(mine, "GET", "/a", "200").inc()
    HTTP_REQUESTS.labels(theirs, "GET", "/b", "200").inc()

    page = generate_latest(service_registry(mine)).decode()
    assert f'service="{mine}"' in page
    assert theirs not in page
    assert "process_cpu_seconds_total" not in page  # the process is not one service's

    gateway = CollectorRegistry(auto_describe=False)
    gateway.register(process_series())
    rest = generate_latest(gateway).decode()
    assert "process_cpu_seconds_total" in rest and "python_gc_objects_collected_total" in rest
    assert 'service="' not in rest


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_backlog_gauges_measure_the_outbox_the_waiting_events_and_the_dead_letters(harness):
    service = f"lag{uuid.uuid4().hex[:8]}"
    release = asyncio.Event()

    async def slow(_: Envelope) -> None:
        await release.wait()

    async def refuses(_: Envelope) -> None:
        raise MalformedMessage("never valid")

    bus = harness.infra.bus
    bus.subscribe(service, "user.deleted", slow)
    bus.subscribe(service, "user.registered", refuses)
    await harness.infra.start()
    sampler = BacklogSampler(service, harness.db, harness.outbox.table, bus)
    waiting, dead = f"{service}.user.deleted", f"{service}.user.registered"
    try:
        # The relay is not running: two committed events wait in the outbox.
        async with harness.db.transaction() as session:
            await harness.outbox.add_many(session, [_event(1), _event(2)])
        await sampler.sample()
        assert _gauge("streamia_outbox_backlog", service=service) == 2
        assert (_gauge("streamia_outbox_oldest_age_seconds", service=service) or -1) >= 0

        # 400 events for a stuck consumer: beyond what it has taken (a batch of 32 embedded,
        # RabbitMQ's prefetch of 256), they wait in its queue.
        await bus.publish([Envelope.wrap(_event(n), "streamia/test") for n in range(400)])
        registered = Envelope.model_validate(
            {**Envelope.wrap(_event(0), "streamia/test").model_dump(), "type": "user.registered"}
        )
        await bus.publish([registered])

        async def measured() -> bool:
            await sampler.sample()
            depth = _gauge("streamia_queue_depth", service=service, queue=waiting) or 0
            parked = _gauge("streamia_dead_letter_depth", service=service, queue=dead) or 0
            return depth >= 100 and parked == 1

        await wait_for(measured, timeout=10, message="queue depth and dead letters measured")

        release.set()

        async def drained() -> bool:
            await sampler.sample()
            return _gauge("streamia_queue_depth", service=service, queue=waiting) == 0

        await wait_for(drained, timeout=15, message="the queue drained")
    finally:
        release.set()
