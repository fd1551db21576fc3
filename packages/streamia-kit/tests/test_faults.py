"""The resilience rule in the consumer path: a dependency that is away is waited for, never
dead-lettered; only work that can never succeed goes to the DLQ."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
import pytest
import redis.exceptions
import sqlalchemy.exc
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from streamia_kit.events import EVENT_TYPES, Envelope, UserDeleted
from streamia_kit.faults import TransientError, is_transient, transient_delay
from streamia_kit.messaging import idempotent_handler
from streamia_kit.testing import POSTGRES, TcpProxy, wait_for


def user_deleted(n: int = 0) -> Envelope:
    return Envelope.wrap(
        UserDeleted(user_id=f"u{n}", email=f"u{n}@x.io", first_name="A", last_name="B"),
        "streamia/test",
    )


def _transient_retries(queue: str) -> float:
    sample = "streamia_consumer_transient_retries_total"
    consumer = queue.split(".", 1)[0]  # queues are `<consumer>.<event type>`
    return REGISTRY.get_sample_value(sample, {"service": consumer, "queue": queue}) or 0.0


def _wrapped(orig: Exception, cls: type[sqlalchemy.exc.DBAPIError]) -> Exception:
    try:
        raise cls("INSERT ...", {}, orig)
    except sqlalchemy.exc.DBAPIError as exc:
        return exc


def _sqlite_error(message: str, code: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = code
    return error


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _http_status(status: int) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(None, (), status=status)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        TimeoutError(),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        aiohttp.ClientOSError(111, "Connect call failed"),
        _http_status(503),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ServerTimeoutError("slow"),
        TransientError("email queue is not running"),
        _wrapped(_PgError("08006"), sqlalchemy.exc.OperationalError),
        _wrapped(_PgError("57P01"), sqlalchemy.exc.OperationalError),
        _wrapped(_PgError("40P01"), sqlalchemy.exc.DBAPIError),
        _wrapped(Exception("connection is closed"), sqlalchemy.exc.InterfaceError),
        _wrapped(
            _sqlite_error("database is locked", "SQLITE_BUSY"), sqlalchemy.exc.OperationalError
        ),
    ],
    ids=repr,
)
def test_an_unreachable_or_slow_dependency_is_a_transient_failure(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("a bug"),
        ValueError("bad payload"),
        FileNotFoundError("media/missing.mp4"),
        _http_status(404),
        _wrapped(_PgError("23505"), sqlalchemy.exc.IntegrityError),
        _wrapped(_PgError("22001"), sqlalchemy.exc.DBAPIError),  # value too long
        _wrapped(
            _sqlite_error("no such table: x", "SQLITE_ERROR"), sqlalchemy.exc.OperationalError
        ),
    ],
    ids=repr,
)
def test_an_error_that_can_never_succeed_is_not_transient(error):
    assert not is_transient(error)


def test_an_error_raised_from_a_refused_connection_is_transient():
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as exc:
            raise RuntimeError("could not queue the email") from exc
    except RuntimeError as exc:
        assert is_transient(exc)


def test_the_transient_retry_delay_grows_with_jitter_up_to_two_seconds():
    delays = [transient_delay(n, first=0.1) for n in range(1, 12)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(1.0 <= d <= 2.0 for d in delays[6:])


async def test_a_handler_whose_dependency_is_down_for_many_attempts_is_applied_not_dead_lettered(
    harness,
):
    bus = harness.infra.bus
    calls = 0

    async def needs_redis(env):
        nonlocal calls
        calls += 1
        if calls <= harness.settings.max_delivery_attempts + 1:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    bus.subscribe("patient", "user.deleted", needs_redis)
    await harness.infra.start()
    before = _transient_retries("patient.user.deleted")
    await bus.publish([user_deleted()])
    await wait_for(lambda: calls == harness.settings.max_delivery_attempts + 1 + 1, timeout=30)
    assert _transient_retries("patient.user.deleted") - before == calls - 1
    assert await bus.dead_letter_counts(["patient.user.deleted"]) == {"patient.user.deleted": 0}


async def test_an_event_with_an_overlong_id_goes_to_the_dlq_at_once(harness):
    bus = harness.infra.bus
    calls = 0

    async def handler(env):
        nonlocal calls
        calls += 1

    bus.subscribe("strict", "user.deleted", handler)
    await harness.infra.start()
    overlong = user_deleted()
    overlong.id = "x" * 200
    await bus.publish([overlong])

    async def dead() -> bool:
        return (await bus.dead_letter_counts(["strict.user.deleted"]))["strict.user.deleted"] == 1

    await wait_for(dead, message="dead letter")
    [letter] = await bus.dead_letters("strict.user.deleted")
    assert letter.attempts == 1
    assert calls == 0


async def test_a_database_cut_for_longer_than_every_attempt_then_restored_applies_the_event_once(
    distributed_stack, harness_factory
):
    make_harness, open_harness = harness_factory
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    port = POSTGRES.rsplit(":", 1)[0]
    harness = make_harness(
        distributed_stack,
        database_url=f"{port}:{proxy.port}/{distributed_stack.namespace}_{{service}}",
    )
    await open_harness(harness)
    applied = harness.applied
    queue = "probe.user.deleted"

    async def apply(session, event, envelope):
        await session.execute(insert(applied).values(event_id=envelope.id))

    async def count() -> int:
        async with harness.db.sessions() as session:
            return await session.scalar(select(func.count()).select_from(applied))

    try:
        bus = harness.infra.bus
        bus.subscribe(
            "probe",
            "user.deleted",
            idempotent_handler(harness.db, harness.inbox, "probe", UserDeleted, apply),
        )
        await harness.infra.start()
        await proxy.cut()
        before = _transient_retries(queue)
        envelope = user_deleted()
        await bus.publish([envelope])
        # Five attempts' backoff is 0.05+0.1+0.2+0.4 s; six transient retries take longer.
        await wait_for(lambda: _transient_retries(queue) - before >= 6, timeout=10)
        await proxy.restore()
        await wait_for(lambda: count(), timeout=10, message="event applied after the outage")
        assert await count() == 1
        assert await bus.dead_letter_counts([queue]) == {queue: 0}
    finally:
        await harness.infra.close()
        await harness.db.dispose()
        await proxy.close()
        await distributed_stack.cleanup(["users"])


async def test_the_bus_reports_itself_down_while_rabbitmq_is_cut_and_up_once_it_is_back(
    distributed_stack, harness_factory
):
    make_harness, open_harness = harness_factory
    proxy = await TcpProxy("127.0.0.1", 5672).start()
    harness = make_harness(
        distributed_stack, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    )
    await open_harness(harness)
    bus = harness.infra.bus
    try:
        await harness.infra.start()
        assert await bus.ping()
        await proxy.cut()
        await wait_for(lambda: _not(bus.ping()), timeout=5, message="bus down")
        await proxy.restore()
        await wait_for(bus.ping, timeout=15, message="bus back")
    finally:
        await harness.infra.close()
        await harness.db.dispose()
        await proxy.close()
        await distributed_stack.cleanup(["users"])


async def _not(awaitable) -> bool:
    return not await awaitable


async def test_a_supervised_background_task_that_fails_is_restarted_until_it_runs():
    from streamia_kit.faults import Supervisor

    failures = 2
    calls = 0
    running = asyncio.Event()

    async def worker() -> None:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise redis.exceptions.ConnectionError("Connection refused")
        running.set()
        await asyncio.Event().wait()  # a worker's main loop: runs until cancelled

    before = REGISTRY.get_sample_value(
        "streamia_background_task_restarts_total", {"service": "kit", "task": "flaky-worker"}
    )
    supervisor = Supervisor("flaky-worker", worker, service="kit", first_delay=0.01)
    supervisor.start()
    try:
        await wait_for(running.is_set, timeout=5, message="the third start")
        assert supervisor.alive
        restarts = REGISTRY.get_sample_value(
            "streamia_background_task_restarts_total", {"service": "kit", "task": "flaky-worker"}
        )
        assert restarts - (before or 0.0) == failures
    finally:
        await supervisor.stop()
    assert not supervisor.alive
    assert calls == failures + 1


async def test_an_event_with_an_id_no_consumer_can_keep_goes_to_the_dlq_at_once(harness):
    """One schema per event for all its consumers: the kit's model refuses what any of them
    would (a 200-character user id), before a handler runs, as malformed: no retries."""
    bus = harness.infra.bus
    calls = 0

    async def apply(session, event, envelope):
        nonlocal calls
        calls += 1

    bus.subscribe(
        "notifications",
        "user.deleted",
        idempotent_handler(harness.db, harness.inbox, "notifications", UserDeleted, apply),
    )
    await harness.infra.start()
    overlong = Envelope.wrap(
        UserDeleted.model_construct(
            user_id="u" * 200, email="a@b.io", first_name="A", last_name="B", language=None
        ),
        "streamia/test",
    )
    await bus.publish([overlong])
    queue = "notifications.user.deleted"

    async def dead() -> bool:
        return (await bus.dead_letter_counts([queue]))[queue] == 1

    await wait_for(dead, message="dead letter")
    [letter] = await bus.dead_letters(queue)
    assert letter.attempts == 1 and "malformed" in (letter.error or "")
    assert calls == 0


@pytest.mark.parametrize("event_cls", sorted(EVENT_TYPES.values(), key=lambda c: c.type))
def test_every_id_in_every_event_is_bounded_as_its_consumers_store_it(event_cls):
    for name, field in event_cls.model_fields.items():
        if name.endswith("_id"):
            limits = [m.max_length for m in field.metadata if hasattr(m, "max_length")]
            assert limits == [64], f"{event_cls.__name__}.{name}"
