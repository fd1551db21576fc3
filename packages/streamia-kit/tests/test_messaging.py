"""Outbox and inbox: events are never lost while the broker is down, never applied twice."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from streamia_kit.events import Envelope, UserDeleted
from streamia_kit.messaging import idempotent_handler
from streamia_kit.testing import TcpProxy, wait_for


def _event(n: int = 1) -> UserDeleted:
    return UserDeleted(user_id=f"user-{n}", email="gone@x.io", first_name="G", last_name="O")


async def _is_zero(count) -> bool:
    return await count == 0


async def _count(harness, table) -> int:
    async with harness.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(table))


async def test_an_event_committed_with_the_state_change_is_published_by_the_relay(harness):
    received: list[Envelope] = []

    async def probe(env):
        received.append(env)

    harness.infra.bus.subscribe("probe", "user.deleted", probe)
    await harness.infra.start()
    harness.relay.start()
    async with harness.db.transaction() as session:
        envelope = await harness.outbox.add(session, _event())
    await wait_for(lambda: len(received) == 1, message="published event")
    assert received[0].id == envelope.id
    assert received[0].data["user_id"] == "user-1"
    await wait_for(lambda: _is_zero(_count(harness, harness.outbox.table)), message="drained")


async def test_an_event_rolled_back_with_its_transaction_is_never_published(harness):
    received: list[Envelope] = []

    async def probe(env):
        received.append(env)

    harness.infra.bus.subscribe("probe", "user.deleted", probe)
    await harness.infra.start()
    harness.relay.start()
    try:
        async with harness.db.transaction() as session:
            await harness.outbox.add(session, _event(1))
            raise RuntimeError("business rule failed")
    except RuntimeError:
        pass
    async with harness.db.transaction() as session:
        committed = await harness.outbox.add(session, _event(2))
    await wait_for(lambda: len(received) >= 1, message="the committed event")
    assert [e.id for e in received] == [committed.id]


async def test_a_redelivered_event_is_applied_once(harness):
    applied = harness.applied

    async def apply(session, event, envelope):
        await session.execute(insert(applied).values(event_id=envelope.id))

    handler = idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, apply)
    envelope = Envelope.wrap(_event(), "streamia/test")
    await handler(envelope)
    await handler(envelope)  # the broker redelivers: e.g. the ack was lost
    await handler(Envelope.wrap(_event(), "streamia/test"))  # a different event
    assert await _count(harness, applied) == 2


async def test_a_redelivery_through_the_bus_is_applied_once(harness):
    applied = harness.applied

    async def apply(session, event, envelope):
        await session.execute(insert(applied).values(event_id=envelope.id))

    harness.infra.bus.subscribe(
        "probe",
        "user.deleted",
        idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, apply),
    )
    await harness.infra.start()
    envelope = Envelope.wrap(_event(), "streamia/test")
    await harness.infra.bus.publish([envelope, envelope, envelope])
    marker = Envelope.wrap(_event(2), "streamia/test")
    await harness.infra.bus.publish([marker])
    await wait_for(lambda: _count(harness, applied), message="deliveries")

    async def marker_applied() -> bool:
        async with harness.db.sessions() as session:
            return bool(
                await session.scalar(
                    select(func.count()).select_from(applied).where(applied.c.event_id == marker.id)
                )
            )

    await wait_for(marker_applied, message="the marker event")
    assert await _count(harness, applied) == 2


async def test_a_handler_that_fails_leaves_no_inbox_row_so_the_retry_applies_it(harness):
    applied = harness.applied
    calls = 0

    async def apply(session, event, envelope):
        nonlocal calls
        calls += 1
        await session.execute(insert(applied).values(event_id=envelope.id))
        if calls == 1:
            raise RuntimeError("crash after writing")

    handler = idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, apply)
    envelope = Envelope.wrap(_event(), "streamia/test")
    try:
        await handler(envelope)
    except RuntimeError:
        pass
    await handler(envelope)
    assert calls == 2
    assert await _count(harness, applied) == 1


async def test_an_event_written_while_rabbitmq_is_unreachable_is_published_once_it_is_back(
    distributed_stack, harness_factory
):
    make_harness, open_harness = harness_factory
    proxy = await TcpProxy("127.0.0.1", 5672).start()
    harness = make_harness(
        distributed_stack, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    )
    await open_harness(harness)
    received: list[Envelope] = []

    async def probe(env):
        received.append(env)

    try:
        harness.infra.bus.subscribe("probe", "user.deleted", probe)
        await harness.infra.start()
        harness.relay.start()

        await proxy.cut()
        failures = {"service": harness.settings.service_name}
        before = REGISTRY.get_sample_value("streamia_outbox_publish_failures_total", failures)
        async with harness.db.transaction() as session:
            envelope = await harness.outbox.add(session, _event())
        # The relay tries and fails while the broker is away (counted for Prometheus); the
        # row stays in the outbox.
        await wait_for(
            lambda: (
                (REGISTRY.get_sample_value("streamia_outbox_publish_failures_total", failures) or 0)
                > (before or 0)
            ),
            timeout=15,
            message="a failed publish counted",
        )
        async with harness.db.transaction() as session:
            await harness.outbox.add(session, _event(2))
        assert await _count(harness, harness.outbox.table) >= 1

        await proxy.restore()
        await wait_for(
            lambda: {e.id for e in received} >= {envelope.id},
            timeout=30,
            message="event published after the outage",
        )
        await wait_for(lambda: len(received) >= 2, timeout=30, message="second event")
        # The relay deletes a batch just after the broker confirms it.
        await wait_for(
            lambda: _is_zero(_count(harness, harness.outbox.table)), message="outbox drained"
        )
    finally:
        await harness.relay.stop()
        await harness.infra.close()
        await harness.db.dispose()
        await proxy.close()
        await distributed_stack.cleanup(["users"])


async def test_a_batch_with_a_poison_event_applies_the_others_once_and_parks_only_it(harness):
    applied = harness.applied
    poison = Envelope.wrap(_event(99), "streamia/test")

    async def apply(session, event, envelope):
        await session.execute(insert(applied).values(event_id=envelope.id))
        if envelope.id == poison.id:
            raise RuntimeError("poison")

    handler = idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, apply)
    good = [Envelope.wrap(_event(n), "streamia/test") for n in range(5)]
    bus = harness.infra.bus
    bus.max_attempts = 1  # straight to the DLQ
    sub = bus.subscribe("probe", "user.deleted", handler)
    deliveries = [(e.model_dump_json().encode(), 1) for e in [*good[:2], poison, *good[2:]]]
    verdicts = await bus.dispatch_many(sub, [*deliveries, deliveries[0]])
    assert [v.outcome.value for v in verdicts] == [
        "done",
        "done",
        "dead",
        "done",
        "done",
        "done",
        "done",
    ]
    assert await _count(harness, applied) == 5
    # A batch without the poison is one transaction; redeliveries in it are skipped.
    assert all(v.outcome.value == "done" for v in await bus.dispatch_many(sub, deliveries[:2]))
    assert await _count(harness, applied) == 5


async def test_add_many_writes_every_event_for_the_relay(harness):
    async with harness.db.transaction() as session:
        envelopes = await harness.outbox.add_many(session, [_event(n) for n in range(3)])
    assert len({e.id for e in envelopes}) == 3
    assert await _count(harness, harness.outbox.table) == 3


async def test_a_batch_handler_gets_the_fresh_events_together_in_delivery_order(harness):
    applied = harness.applied
    calls: list[list[str]] = []

    async def one(session, event, envelope):
        calls.append([envelope.id])
        await session.execute(insert(applied).values(event_id=envelope.id))

    async def many(session, items):
        calls.append([envelope.id for _, envelope in items])
        assert all(isinstance(event, UserDeleted) for event, _ in items)
        await session.execute(insert(applied), [{"event_id": env.id} for _, env in items])

    handler = idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, one, many)
    seen = Envelope.wrap(_event(0), "streamia/test")
    await handler(seen)  # applied alone, before the batch: the batch skips it
    fresh = [Envelope.wrap(_event(n), "streamia/test") for n in range(1, 4)]
    assert await handler.batch([fresh[0], seen, fresh[1], fresh[1], fresh[2]]) == []
    assert calls == [[seen.id], [e.id for e in fresh]]
    assert await _count(harness, applied) == 4


async def test_a_failing_batch_handler_leaves_nothing_and_the_bus_applies_each_alone(harness):
    applied = harness.applied
    batches = 0

    async def one(session, event, envelope):
        await session.execute(insert(applied).values(event_id=envelope.id))

    async def many(session, items):
        nonlocal batches
        batches += 1
        await session.execute(insert(applied), [{"event_id": env.id} for _, env in items])
        raise RuntimeError("crash after writing")

    handler = idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, one, many)
    sub = harness.infra.bus.subscribe("probe", "user.deleted", handler)
    envelopes = [Envelope.wrap(_event(n), "streamia/test") for n in range(3)]
    verdicts = await harness.infra.bus.dispatch_many(
        sub, [(e.model_dump_json().encode(), 1) for e in envelopes]
    )
    assert [v.outcome.value for v in verdicts] == ["done"] * 3
    assert batches == 1
    assert await _count(harness, applied) == 3  # the batch's writes were rolled back
    assert await _count(harness, harness.inbox.table) == 3


async def test_the_services_units_of_work_commit_while_the_relay_waits_on_the_broker(harness):
    await harness.infra.start()
    bus = harness.infra.bus
    publishing, broker_answers = asyncio.Event(), asyncio.Event()
    publish = bus.publish

    async def slow_publish(envelopes):  # a broker slow to confirm
        publishing.set()
        await broker_answers.wait()
        await publish(envelopes)

    bus.publish = slow_publish
    async with harness.db.transaction() as session:
        await harness.outbox.add(session, _event())
    relaying = asyncio.create_task(harness.relay.drain())
    await publishing.wait()
    async with asyncio.timeout(2), harness.db.transaction() as session:
        await session.execute(insert(harness.applied).values(event_id="meanwhile"))
    broker_answers.set()
    assert await relaying == 1
    assert await _count(harness, harness.outbox.table) == 0
    assert await _count(harness, harness.applied) == 1


async def test_a_burst_is_applied_in_batches_each_event_once_and_counted_per_delivery(harness):
    applied = harness.applied
    batches: list[int] = []

    async def one(session, event, envelope):
        batches.append(1)
        await session.execute(insert(applied).values(event_id=envelope.id))

    async def many(session, items):
        batches.append(len(items))
        await session.execute(insert(applied), [{"event_id": env.id} for _, env in items])

    bus = harness.infra.bus
    sub = bus.subscribe(
        "burst",
        "user.deleted",
        idempotent_handler(harness.db, harness.inbox, "burst", UserDeleted, one, many),
    )

    def consumed() -> float:
        labels = {"service": "burst", "queue": sub.queue, "outcome": "done"}
        return REGISTRY.get_sample_value("streamia_events_consumed_total", labels) or 0.0

    before = consumed()
    await harness.infra.start()
    envelopes = [Envelope.wrap(_event(n), "streamia/test") for n in range(300)]
    # Each event twice, the copy in the same publish: inside a batch or across two, once.
    await bus.publish([*envelopes, *envelopes[:40]])
    await wait_for(lambda: consumed() - before == 340, timeout=60, message="every delivery")
    assert await _count(harness, applied) == 300
    assert max(batches) > 1  # deliveries that waited together shared a transaction
    assert sum(batches) == 300


async def test_a_consumer_lingers_for_a_fuller_batch_only_while_its_queue_is_busy():
    from streamia_kit.rabbitmq_bus import _Deliveries

    loop = asyncio.get_running_loop()
    deliveries = _Deliveries(size=3, linger=30.0)
    deliveries.put("lone")  # type: ignore[arg-type]
    # A quiet queue: a lone event goes at once, whatever the linger.
    assert await asyncio.wait_for(deliveries.batch(), 5) == ["lone"]
    for n in range(4):
        deliveries.put(f"busy-{n}")  # type: ignore[arg-type]
    assert await asyncio.wait_for(deliveries.batch(), 5) == ["busy-0", "busy-1", "busy-2"]
    # Busy now: the next batch waits for deliveries to arrive, and goes once it is full.
    loop.call_later(0.05, deliveries.put, "late-1")
    loop.call_later(0.1, deliveries.put, "late-2")
    assert await asyncio.wait_for(deliveries.batch(), 5) == ["busy-3", "late-1", "late-2"]
    # A linger that ends before the batch fills sends what it has.
    deliveries.linger = 0.05
    deliveries.put("a")  # type: ignore[arg-type]
    assert await asyncio.wait_for(deliveries.batch(), 5) == ["a"]
