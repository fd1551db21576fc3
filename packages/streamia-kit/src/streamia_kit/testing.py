"""Test support, loaded as a pytest plugin: stack selection, required infrastructure, a TCP
proxy that can cut a connection, and a helper that runs an app with its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamia_kit.infra import random_namespace

POSTGRES = os.environ.get("STREAMIA_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
AMQP = os.environ.get("STREAMIA_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
REDIS = os.environ.get("STREAMIA_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_INFRA = os.environ.get("STREAMIA_REQUIRE_INFRA") == "1"

# Cheap password hashing keeps the suite fast; production keeps OWASP's argon2id minimum.
FAST_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}

_reachable: dict[str, bool] = {}


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def infrastructure_status() -> dict[str, bool]:
    if not _reachable:
        _reachable.update(
            postgresql=_port_open("127.0.0.1", 5432),
            rabbitmq=_port_open("127.0.0.1", 5672),
            redis=_port_open("127.0.0.1", 6379),
        )
    return _reachable


def require_infrastructure() -> None:
    """Skip when PostgreSQL/RabbitMQ/Redis are down — or fail, when CI requires them."""
    down = [name for name, ok in infrastructure_status().items() if not ok]
    if down:
        message = f"distributed tier unreachable: {', '.join(down)}"
        if REQUIRE_INFRA:
            pytest.fail(message + " (STREAMIA_REQUIRE_INFRA=1)", pytrace=False)
        pytest.skip(message)


def require_system_tool(name: str, package: str) -> str:
    """The path of a system program a test drives (`promtool`, `prometheus`): skipped when it
    is missing here, a failure in CI (`CI=true`), whose `.ci/run` installs it."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true)", pytrace=False)
        pytest.skip(message)
    return path


@dataclass
class Stack:
    """One of the two ways to run: embedded (SQLite, in-process bus) or distributed."""

    name: str
    tmp: Path
    namespace: str = field(default_factory=random_namespace)

    @property
    def distributed(self) -> bool:
        return self.name == "distributed"

    def overrides(self, **extra: Any) -> dict[str, Any]:
        """Settings for any service of this stack, isolated from every other test run."""
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": self.tmp,
            "retry_base_delay_seconds": 0.05,
            "outbox_poll_seconds": 0.2,
            "log_level": "WARNING",
            **FAST_HASHING,
        }
        if self.distributed:
            values.update(
                database_url=f"{POSTGRES}/{self.namespace}_{{service}}",
                amqp_url=AMQP,
                redis_url=REDIS,
                namespace=self.namespace,
            )
        values.update(extra)
        return values

    async def cleanup(self, services: list[str]) -> None:
        if not self.distributed:
            return
        from streamia_kit.db import drop_database

        for service in services:
            with contextlib.suppress(Exception):
                await drop_database(f"{POSTGRES}/{self.namespace}_{service}")
        await delete_namespace_queues(self.namespace)


async def delete_namespace_queues(namespace: str) -> None:
    """Remove the durable queues and exchanges a test run declared under its namespace."""
    import aio_pika

    from streamia_kit.events import EVENT_TYPES, EXCHANGES

    try:
        conn = await aio_pika.connect(AMQP, timeout=5)
    except Exception:
        return
    async with conn:
        channel = await conn.channel()
        consumers = {
            "users",
            "movies",
            "favorites",
            "ratings",
            "comments",
            "notifications",
            "playback",
            "probe",
            "probe2",
            "flaky",
            "picky",
            "steady",
        }
        for consumer in consumers:
            for event_type in EVENT_TYPES:
                base = f"{namespace}.{consumer}.{event_type}"
                names = [base, f"{base}.dlq", *(f"{base}.retry.{n}" for n in range(1, 10))]
                for name in names:
                    try:
                        await channel.queue_delete(name)
                    except Exception:
                        channel = await conn.channel()
        for exchange in EXCHANGES:
            with contextlib.suppress(Exception):
                await channel.exchange_delete(f"{namespace}.{exchange}")


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=pytest.mark.distributed)])
def stack_name(request: pytest.FixtureRequest) -> str:
    if request.param == "distributed":
        require_infrastructure()
    return request.param


@pytest.fixture
async def stack(stack_name: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Parametrises a test over both stacks; cleans up databases and queues afterwards."""
    value = Stack(stack_name, tmp_path)
    yield value
    from streamia_kit.config import DEFAULT_PORTS

    await value.cleanup(list(DEFAULT_PORTS))


@pytest.fixture
def distributed_stack(tmp_path: Path) -> Stack:
    require_infrastructure()
    return Stack("distributed", tmp_path)


@contextlib.asynccontextmanager
async def serve_app(
    app: Any, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """Run an ASGI app's lifespan and give an httpx client bound to it (no sockets)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


async def wait_for(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> Any:
    """Poll a (sync or async) condition until it is truthy; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


async def cancel_at_each_step(
    start: Callable[[], Awaitable[Any]], steps: int = 30, within: float = 0.25
) -> None:
    """Run `start()` as a task and cancel it after 0, 1, ... `steps` event-loop iterations,
    one run per count: fail unless every run ends cancelled within `within` seconds of its
    cancel. Up to the first network wait the iterations a call takes are fixed, so this
    lands a cancel on every step of it, including those where a library swallows one
    (redis-py #2028): that run goes on and returns instead."""
    loop = asyncio.get_running_loop()
    for step in range(steps + 1):
        task = asyncio.ensure_future(start())
        for _ in range(step):
            await asyncio.sleep(0)
        assert not task.done(), f"finished after {step} steps, before its cancel"
        task.cancel()
        cancelled_at = loop.time()
        await asyncio.wait({task}, timeout=within + 5.0)
        took = loop.time() - cancelled_at
        outcome = "still running" if not task.done() else "cancelled"
        if task.done() and not task.cancelled():
            outcome = f"returned {task.exception() or task.result()!r}"
        assert outcome == "cancelled" and took < within, (
            f"cancelled after {step} steps: {outcome} {took:.3f}s later"
        )


def stray_tasks(*keep: asyncio.Task[Any]) -> set[asyncio.Task[Any]]:
    """Tasks still running besides the current one, `keep` and a `TcpProxy`'s pumps."""
    return {
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task()
        and task not in keep
        and not getattr(task.get_coro(), "__qualname__", "").startswith("TcpProxy.")
    }


async def until_lock_waiters(db: Any, count: int, message: str) -> None:
    """Wait until `count` sessions of `db`'s PostgreSQL database wait for a lock: a test that
    lines concurrent transactions up behind a held row awaits this instead of sleeping."""
    from sqlalchemy import text

    async def enough() -> bool:
        async with db.engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        return int(waiting or 0) >= count

    await wait_for(enough, message=message)


def _ephemeral_ports() -> range:
    """The kernel's range for outgoing connections' local ports (Linux; the IANA range else)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 49152, 65535
    return range(low, high + 1)


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port for a server started later, chosen outside the ephemeral range.

    A port the kernel picked (`bind(0)`) comes from the ephemeral range, so any outgoing
    connection opened before the server binds (to PostgreSQL, Redis, another service) can take
    it, and the server then fails with "address already in use". Below that range only
    servers bind, and no port is handed out twice in one process.
    """
    ephemeral = _ephemeral_ports()
    candidates = [p for p in range(10000, 65536) if p not in ephemeral and p not in _handed_out]
    for port in random.sample(candidates, k=min(200, len(candidates))):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # every candidate busy: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """A loopback TCP proxy the test controls: `cut()` drops every connection and refuses
    new ones until `restore()` — a broker outage without touching the broker; `black_hole()`
    keeps accepting and passes nothing either way (a dependency that hangs); `slow(delay)`
    passes everything, each chunk `delay` seconds late in either direction (a congested
    network or an overloaded server), until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.base_events.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._holed = False
        self._delay = 0.0
        self.delayed_chunks = 0  # chunks that went through late: the proxy is in the path

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._holed:
            self._pipes.add(writer)
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(65536):
                    pass
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._pipes.update((writer, up_writer))

        loop = asyncio.get_running_loop()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            # Each chunk is due `delay` after it arrived: latency added, order kept, and the
            # chunks behind it are not delayed once more.
            due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

            async def deliver() -> None:
                while True:
                    at, data = await due.get()
                    if not data:
                        return
                    if (wait := at - loop.time()) > 0:
                        await asyncio.sleep(wait)
                    if self._holed:
                        continue
                    dst.write(data)
                    await dst.drain()

            sender = asyncio.create_task(deliver())
            try:
                while data := await src.read(65536):
                    if sender.done():
                        break
                    if self._delay:
                        self.delayed_chunks += 1
                    due.put_nowait((loop.time() + self._delay, data))
                due.put_nowait((loop.time() + self._delay, b""))
                await sender
            except (ConnectionError, OSError):
                pass
            finally:
                sender.cancel()
                dst.close()
                self._pipes.discard(dst)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.transport.abort()
        self._pipes.clear()

    async def black_hole(self) -> None:
        self._holed = True

    async def slow(self, delay: float) -> None:
        self._delay = delay

    async def restore(self) -> None:
        self._delay = 0.0
        if self._holed:
            self._holed = False
            for pipe in list(self._pipes):  # what it swallowed is gone: those connections too
                pipe.transport.abort()
            self._pipes.clear()
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()


# -- fixtures shared by service test suites ----------------------------------------------
# A service's conftest provides `app` (and `published_events`); these build on it.


def new_test_id() -> str:
    import uuid

    return uuid.uuid4().hex


@pytest.fixture
def signing_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from streamia_kit.auth import SigningKey

    return SigningKey(Ed25519PrivateKey.generate())


@dataclass
class Caller:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def caller(signing_key: Any) -> Callable[..., Caller]:
    """Mint a token for a fresh user (or an admin)."""

    def make(role: str = "user", user_id: str | None = None) -> Caller:
        user_id = user_id or new_test_id()
        return Caller(user_id, signing_key.issue(user_id, f"{user_id[:8]}@example.com", role, 3600))

    return make


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(app) as c:
        yield c


@pytest.fixture
def published_events() -> tuple[str, ...]:
    return ()


@pytest.fixture
def probe(app: Any, published_events: tuple[str, ...]) -> list[Any]:
    """Every event the service publishes, in arrival order (request it before `client`)."""
    seen: list[Any] = []

    async def record(envelope: Any) -> None:
        seen.append(envelope)

    for event_type in published_events:
        app.state.service.infra.bus.subscribe("probe", event_type, record)
    return seen


@pytest.fixture
def publish(app: Any) -> Callable[..., Any]:
    """Deliver an event to the service through its bus (as another service would)."""
    from streamia_kit.events import Envelope

    async def send(event: Any) -> Any:
        envelope = event if isinstance(event, Envelope) else Envelope.wrap(event, "streamia/test")
        await app.state.service.infra.bus.publish([envelope])
        return envelope

    return send


@pytest.fixture
def processed(app: Any) -> Callable[..., Any]:
    """How many times the service's inbox recorded this event (0 until it is consumed)."""
    from sqlalchemy import func, select

    inbox = app.state.service.inbox.table

    async def count(envelope: Any) -> int:
        async with app.state.service.db.sessions() as session:
            return await session.scalar(
                select(func.count()).select_from(inbox).where(inbox.c.event_id == envelope.id)
            )

    return count


def check_error(resp: Any, status: int, message: str | None = None) -> dict[str, Any]:
    """Assert API.md's error shape, status and (optionally) message; return the body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == body["message"] and body["code"]
    if message is not None:
        assert body["message"] == message
    return body


@pytest.fixture
def assert_error() -> Callable[..., dict[str, Any]]:
    return check_error


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    """A `TcpProxy` in front of the local Redis: point an app's `redis_url` at its port."""
    proxy = await TcpProxy("127.0.0.1", 6379).start()
    yield proxy
    await proxy.close()
