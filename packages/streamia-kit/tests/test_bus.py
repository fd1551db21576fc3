"""The bus port behaves the same on RabbitMQ and in process: routing, retries, DLQ, replay."""

from __future__ import annotations

from streamia_kit.bus import MalformedMessage
from streamia_kit.events import Envelope, MovieDeleted, UserDeleted, UserRegistered
from streamia_kit.testing import wait_for


def user_deleted(n: int = 0) -> Envelope:
    return Envelope.wrap(
        UserDeleted(user_id=f"u{n}", email=f"u{n}@x.io", first_name="A", last_name="B"),
        "streamia/test",
    )


async def test_an_event_reaches_only_the_queues_bound_to_its_type(harness):
    bus = harness.infra.bus
    deleted, registered = [], []

    async def on_deleted(env):
        deleted.append(env.id)

    async def on_registered(env):
        registered.append(env.id)

    bus.subscribe("probe", "user.deleted", on_deleted)
    bus.subscribe("probe", "user.registered", on_registered)
    await harness.infra.start()
    env = user_deleted()
    await bus.publish([env])
    await wait_for(lambda: deleted == [env.id], message="delivery")
    other = Envelope.wrap(
        UserRegistered(user_id="u", email="e@x.io", first_name="A", last_name="B"), "t"
    )
    await bus.publish([other])
    await wait_for(lambda: registered == [other.id], message="second delivery")
    assert deleted == [env.id]


async def test_a_failing_handler_is_retried_until_it_succeeds(harness):
    bus = harness.infra.bus
    attempts: list[str] = []

    async def flaky(env):
        attempts.append(env.id)
        if len(attempts) < 3:
            raise RuntimeError("database hiccup")

    bus.subscribe("flaky", "user.deleted", flaky)
    await harness.infra.start()
    await bus.publish([user_deleted()])
    await wait_for(lambda: len(attempts) == 3, message="three attempts")
    assert await bus.dead_letter_counts(["flaky.user.deleted"]) == {"flaky.user.deleted": 0}


async def test_a_handler_that_keeps_failing_lands_in_the_dlq_and_replay_brings_it_back(harness):
    bus = harness.infra.bus
    attempts: list[str] = []
    healthy = False

    async def handler(env):
        attempts.append(env.id)
        if not healthy:
            raise RuntimeError("always down")

    bus.subscribe("flaky", "user.deleted", handler)
    await harness.infra.start()
    env = user_deleted()
    await bus.publish([env])

    async def dead() -> bool:
        return (await bus.dead_letter_counts(["flaky.user.deleted"]))["flaky.user.deleted"] == 1

    await wait_for(dead, message="dead letter")
    assert len(attempts) == harness.settings.max_delivery_attempts
    [letter] = await bus.dead_letters("flaky.user.deleted")
    assert letter.message_id == env.id
    assert letter.attempts == harness.settings.max_delivery_attempts
    assert "always down" in (letter.error or "")

    healthy = True
    assert await bus.replay("flaky.user.deleted") == 1
    await wait_for(
        lambda: len(attempts) == harness.settings.max_delivery_attempts + 1,
        message="replayed delivery",
    )
    await wait_for(lambda: _not(dead()), message="dlq emptied")


async def test_a_malformed_message_goes_to_the_dlq_at_once(harness):
    bus = harness.infra.bus
    calls = 0

    async def picky(env):
        nonlocal calls
        calls += 1
        raise MalformedMessage("payload missing fields")

    bus.subscribe("picky", "movie.deleted", picky)
    await harness.infra.start()
    await bus.publish([Envelope.wrap(MovieDeleted(movie_id="m1"), "t")])

    async def dead() -> bool:
        return (await bus.dead_letter_counts(["picky.movie.deleted"]))["picky.movie.deleted"] == 1

    await wait_for(dead, message="dead letter")
    assert calls == 1


async def test_a_poison_message_does_not_block_the_messages_behind_it(harness):
    bus = harness.infra.bus
    done: list[str] = []
    poison = user_deleted(666)

    async def handler(env):
        if env.id == poison.id:
            raise RuntimeError("poison")
        done.append(env.id)

    bus.subscribe("steady", "user.deleted", handler)
    await harness.infra.start()
    healthy = [user_deleted(i) for i in range(20)]
    await bus.publish([poison, *healthy])
    # All healthy messages finish long before the poison message exhausts its retries.
    await wait_for(lambda: len(done) == 20, timeout=5, message="healthy messages")
    assert sorted(done) == sorted(e.id for e in healthy)

    async def dead() -> bool:
        return (await bus.dead_letter_counts(["steady.user.deleted"]))["steady.user.deleted"] == 1

    await wait_for(dead, message="poison dead-lettered")


async def _not(awaitable):
    return not await awaitable


def test_backoff_grows_exponentially():
    from streamia_kit.inprocess_bus import InProcessBus

    bus = InProcessBus("/nonexistent/bus.sqlite", retry_base_delay=0.5)
    assert [bus.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert bus.backoff(30) == 300.0


async def test_dead_letters_are_counted_for_prometheus(harness):
    from prometheus_client import REGISTRY

    bus = harness.infra.bus

    async def broken(env):
        raise RuntimeError("down")

    bus.subscribe("flaky", "user.deleted", broken)
    await harness.infra.start()
    queue = "flaky.user.deleted"
    before = (
        REGISTRY.get_sample_value(
            "streamia_dead_letters_total", {"service": "flaky", "queue": queue}
        )
        or 0
    )
    await bus.publish([user_deleted()])

    async def counted() -> bool:
        now = (
            REGISTRY.get_sample_value(
                "streamia_dead_letters_total", {"service": "flaky", "queue": queue}
            )
            or 0
        )
        return now == before + 1

    await wait_for(counted, message="dead-letter counter")
    retries = REGISTRY.get_sample_value(
        "streamia_events_consumed_total", {"service": "flaky", "queue": queue, "outcome": "retry"}
    )
    assert retries is not None and retries >= harness.settings.max_delivery_attempts - 1


async def test_the_embedded_bus_applies_at_most_consumer_batch_deliveries_together(tmp_path):
    """`STREAMIA_CONSUMER_BATCH` bounds the embedded bus's batches as it does RabbitMQ's."""
    from streamia_kit.inprocess_bus import InProcessBus

    bus = InProcessBus(tmp_path / "bus.sqlite", batch_size=3, linger=0.003)
    sizes: list[int] = []

    class Batched:
        async def __call__(self, env: Envelope) -> None:
            sizes.append(1)

        async def batch(self, envelopes: list[Envelope]) -> list[int]:
            sizes.append(len(envelopes))
            return []

    bus.subscribe("probe", "user.deleted", Batched())
    await bus.start()
    try:
        await bus.publish([user_deleted(n) for n in range(7)])
        await wait_for(lambda: sum(sizes) == 7, message="every delivery applied")
        assert max(sizes) == 3
    finally:
        await bus.close()
