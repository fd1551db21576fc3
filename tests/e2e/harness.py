"""Launch the real platform as subprocesses and look inside it: the e2e suite and
`bench/saga.py` share this module (pytest-free, so a plain script can use it too).

- embedded: one `streamia up` process (SQLite files and the in-process bus in a data dir);
- distributed: one `streamia serve <service>` process per service, on the machine's
  PostgreSQL, Redis and RabbitMQ, the broker reached through a `TcpProxy` the caller can cut
  (and, when asked, Redis and one service's PostgreSQL too: `Platform.proxies`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from streamia_kit.infra import random_namespace
from streamia_kit.testing import AMQP, POSTGRES, REDIS, TcpProxy, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVICES = ("users", "movies", "favorites", "ratings", "comments", "notifications", "playback")
ALL_SERVICES = (*SERVICES, "gateway")
PASSWORD = "Str0ng!Passw0rd"
EMBEDDED_PROCESS = "platform"
HEALTH_TIMEOUT = 90.0
FAULT_MODES = ("cut", "black_hole", "slow")
# A slow dependency: each chunk this late each way (a round trip 0.6 s longer), so a
# transaction of a few statements outlasts the gateway's 3 s timeout.
SLOW_DELAY = 0.3


class PlatformError(RuntimeError):
    """The platform (or one of its processes) did not start or stop as expected."""


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as an OTLP exporter sent it (ids in hex, as a traceparent spells them)."""

    service: str
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace id, span id) of each linked span


def traced_env(endpoint: str) -> dict[str, str]:
    """A platform's environment for exporting to `endpoint` only the traces its caller starts:
    no new trace is sampled, and the gateway continues a sampled traceparent from this machine
    (an internal caller), so every other request costs no export."""
    return {
        "STREAMIA_OTLP_ENDPOINT": endpoint,
        "STREAMIA_TRACE_SAMPLE_RATIO": "0",
        "STREAMIA_TRACE_PARENT_NETWORKS": "127.0.0.0/8",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms between exports (5 s by default)
    }


def new_traceparent() -> tuple[str, str, str]:
    """(traceparent, trace id, span id) of a sampled span of the caller's own."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on a local port: what the platform exports, decoded with
    opentelemetry-proto, kept in memory (`spans`, `trace(trace_id)`)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        receiver = self
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        kinds = {value: name.removeprefix("SPAN_KIND_") for name, value in Span.SpanKind.items()}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                received = []
                for resource_spans in request.resource_spans:
                    service = next(
                        (
                            a.value.string_value
                            for a in resource_spans.resource.attributes
                            if a.key == "service.name"
                        ),
                        "",
                    )
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            received.append(
                                ReceivedSpan(
                                    service=service,
                                    name=span.name,
                                    kind=kinds.get(span.kind, str(span.kind)),
                                    trace_id=span.trace_id.hex(),
                                    span_id=span.span_id.hex(),
                                    parent_id=span.parent_span_id.hex(),
                                    attributes={
                                        a.key: getattr(a.value, a.value.WhichOneof("value") or "")
                                        if a.value.WhichOneof("value")
                                        else None
                                        for a in span.attributes
                                    },
                                    links=tuple(
                                        (link.trace_id.hex(), link.span_id.hex())
                                        for link in span.links
                                    ),
                                )
                            )
                with receiver._lock:
                    receiver.spans.extend(received)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="otlp-receiver"
        )
        self._thread.start()

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.snapshot() if span.trace_id == trace_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class ThreadedProxy:
    """The kit's TcpProxy on its own event loop thread, so sync and async callers in any
    loop can cut, black-hole and restore a dependency's connections."""

    def __init__(self, target_host: str, target_port: int, name: str = "proxy") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name=f"{name}-proxy"
        )
        self._thread.start()
        self._proxy = self._call(self._make(target_host, target_port))
        self.port = self._proxy.port
        self.is_cut = False

    async def _make(self, host: str, port: int) -> TcpProxy:
        return TcpProxy(host, port)

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        self._call(self._proxy.start())

    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones."""
        self._call(self._proxy.cut())
        self.is_cut = True

    def black_hole(self) -> None:
        """Keep accepting connections, pass nothing either way: a dependency that hangs."""
        self._call(self._proxy.black_hole())
        self.is_cut = True

    def slow(self, delay: float = SLOW_DELAY) -> None:
        """Pass everything, each chunk `delay` seconds late either way."""
        self._call(self._proxy.slow(delay))

    @property
    def delayed_chunks(self) -> int:
        return int(self._proxy.delayed_chunks)

    def fault(self, mode: str) -> None:
        """`cut`, `black_hole` or `slow`."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        if mode == "slow":
            self.slow()
        else:
            self.cut() if mode == "cut" else self.black_hole()

    def restore(self) -> None:
        self._call(self._proxy.restore())
        self.is_cut = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def _via(url: str, port: int) -> str:
    """`url` with its host and port replaced by a local proxy's."""
    parts = urlparse(url)
    auth = parts.netloc.rpartition("@")[0]
    return parts._replace(
        netloc=f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
    ).geturl()


@dataclass
class Platform:
    """One running platform: its processes, ports, data dir and (distributed) namespace.

    Distributed, the processes reach the broker through a proxy (`proxies["broker"]`); with
    `proxy_redis`, Redis too (`proxies["redis"]`), and with `proxy_database=<service>`, that
    one service's PostgreSQL (`proxies["database"]`; every other process, the CLI and the
    suite's own reads connect directly)."""

    mode: str  # "embedded" | "distributed"
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    namespace: str = field(default_factory=random_namespace)
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    proxy_redis: bool = False
    proxy_database: str | None = None
    proxies: dict[str, ThreadedProxy] = field(default_factory=dict)
    _admin: tuple[str, str] | None = None
    _admin_token: str | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def distributed(self) -> bool:
        return self.mode == "distributed"

    @property
    def proxy(self) -> ThreadedProxy | None:
        """The broker's proxy (distributed mode)."""
        return self.proxies.get("broker")

    def _proxied_urls(self) -> dict[str, str]:
        """Dependency name -> the real URL its proxy forwards to."""
        urls = {"broker": AMQP}
        if self.proxy_redis:
            urls["redis"] = REDIS
        if self.proxy_database is not None:
            if self.proxy_database not in SERVICES:
                raise ValueError(f"{self.proxy_database!r} has no database")
            urls["database"] = POSTGRES
        return urls

    def __post_init__(self) -> None:
        if self.mode not in ("embedded", "distributed"):
            raise ValueError(f"unknown mode {self.mode!r}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self.ports = {name: free_port() for name in ALL_SERVICES}
        if self.distributed:
            for name, url in self._proxied_urls().items():
                target = urlparse(url)
                self.proxies[name] = ThreadedProxy(
                    target.hostname or "127.0.0.1", target.port or 0, name
                )
        elif self.proxy_redis or self.proxy_database:
            raise ValueError("only a distributed platform has Redis and PostgreSQL to proxy")
        else:
            # Skip the demo catalogue: the suite makes its own movies.
            (self.data_dir / ".demo-seeded").write_text("skipped by tests\n")

    def url(self, name: str = "gateway") -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    def env(self, process: str | None = None) -> dict[str, str]:
        """The environment `process` of this platform runs with (its CLI calls: `None`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMIA_")}
        env.update(
            {
                "STREAMIA_ENVIRONMENT": "test",
                "STREAMIA_HOST": "127.0.0.1",
                "STREAMIA_DATA_DIR": str(self.data_dir),
                "STREAMIA_LOG_LEVEL": "WARNING",
                "STREAMIA_ACCESS_LOG": "false",
                "STREAMIA_ARGON2_TIME_COST": "1",
                "STREAMIA_ARGON2_MEMORY_KIB": "1024",
                "STREAMIA_ARGON2_PARALLELISM": "1",
                "STREAMIA_RETRY_BASE_DELAY_SECONDS": "0.05",
                "STREAMIA_OUTBOX_POLL_SECONDS": "0.2",
                # Everything comes from 127.0.0.1: keep the global per-IP limit out of the way;
                # the per-login limit stays at its normal value (5 failures per 10 minutes).
                "STREAMIA_RATE_LIMIT_GLOBAL": "1000000/minute",
                "STREAMIA_RATE_LIMIT_LOGIN_IP": "1000000/minute",
                "STREAMIA_CREDENTIAL_CONCURRENCY_PER_IP": "1000",
                # One account reports progress on dozens of movies at once (a player: every 10 s).
                "STREAMIA_PROGRESS_RATE_LIMIT": "1000/second",
                "STREAMIA_EMAIL_SENDER": "file",
                # Two or three distributed platforms (the session's, the fault suite's) share
                # one PostgreSQL and its 100 connections.
                "STREAMIA_DATABASE_POOL_SIZE": "4",
            }
        )
        for name, port in self.ports.items():
            env[f"STREAMIA_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
        if self.distributed:
            urls = {"broker": AMQP, "redis": REDIS}
            if process is not None and process == self.proxy_database:
                urls["database"] = POSTGRES
            for name, url in urls.items():
                if name in self.proxies:
                    urls[name] = _via(url, self.proxies[name].port)
            env.update(
                {
                    "STREAMIA_DATABASE_URL": f"{urls.get('database', POSTGRES)}"
                    f"/{self.namespace}_{{service}}",
                    "STREAMIA_REDIS_URL": urls["redis"],
                    "STREAMIA_AMQP_URL": urls["broker"],
                    "STREAMIA_NAMESPACE": self.namespace,
                }
            )
        env.update(self.extra_env)
        return env

    def process_names(self) -> tuple[str, ...]:
        return ALL_SERVICES if self.distributed else (EMBEDDED_PROCESS,)

    def _log(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def _spawn(self, name: str) -> None:
        streamia = BIN / "streamia"
        args = [str(streamia), "up"] if name == EMBEDDED_PROCESS else [str(streamia), "serve", name]
        with self._log(name).open("ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')} {' '.join(args[1:])}\n".encode())
            log.flush()
            self.procs[name] = subprocess.Popen(
                args,
                env=self.env(name),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _health_targets(self, name: str) -> list[str]:
        return list(ALL_SERVICES) if name == EMBEDDED_PROCESS else [name]

    def _wait_healthy(self, names: Iterable[str], timeout: float = HEALTH_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            for name in names:
                for target in self._health_targets(name):
                    while True:
                        proc = self.procs.get(name)
                        if proc is not None and proc.poll() is not None:
                            raise PlatformError(
                                f"{name} exited with code {proc.returncode} before {target}/health"
                                f" answered\n{self.log_tail(name)}"
                            )
                        with contextlib.suppress(httpx.HTTPError):
                            if client.get(self.url(target) + "/health").status_code == 200:
                                break
                        if time.monotonic() > deadline:
                            raise PlatformError(
                                f"{target} /health not 200 within {timeout:.0f}s\n"
                                f"{self.log_tail(name)}"
                            )
                        time.sleep(0.1)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self._log(name)
        if not path.exists():
            return f"(no log for {name})"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- last {len(text)} lines of {path} ---\n" + "\n".join(text)

    def start(self) -> Platform:
        """Start every process and wait for every /health, the gateway's included."""
        for proxy in self.proxies.values():
            proxy.start()
        try:
            if self.distributed:
                # users first: the others fetch its JWKS, and it owns the signing key file.
                self._spawn("users")
                self._wait_healthy(["users"])
                for name in ALL_SERVICES[1:]:
                    self._spawn(name)
                self._wait_healthy(ALL_SERVICES[1:])
            else:
                self._spawn(EMBEDDED_PROCESS)
                self._wait_healthy([EMBEDDED_PROCESS])
        except BaseException:
            self.close()
            raise
        return self

    def _process(self, service: str) -> str:
        """The process that runs `service`: its own (distributed) or the only one (embedded)."""
        if not self.distributed:
            return EMBEDDED_PROCESS
        if service not in ALL_SERVICES:
            raise ValueError(f"unknown service {service!r}")
        return service

    def stop(
        self, service: str = EMBEDDED_PROCESS, sig: int = signal.SIGTERM, timeout: float = 15.0
    ) -> None:
        """Stop the process running `service` (the whole platform when embedded)."""
        name = self._process(service)
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def kill(self, service: str = EMBEDDED_PROCESS) -> None:
        """SIGKILL, no goodbye: what an OOM kill or a node failure does."""
        self.stop(service, signal.SIGKILL)

    def start_service(
        self, service: str = EMBEDDED_PROCESS, timeout: float = HEALTH_TIMEOUT
    ) -> None:
        name = self._process(service)
        if name in self.procs and self.procs[name].poll() is None:
            return
        self._spawn(name)
        self._wait_healthy([name], timeout)
        if self.distributed and name != "gateway":
            self._wait_routed(name, timeout)

    def _wait_routed(self, name: str, timeout: float) -> None:
        """Wait until the gateway routes to `name` again: while it was down the gateway's
        breaker for it may have opened, and it closes only after its reset time and a probe."""
        gateway = self.procs.get("gateway")
        if gateway is None or gateway.poll() is not None:
            return
        deadline = time.monotonic() + timeout
        probe = f"{self.gateway}/api/{name}/routed-probe"
        with httpx.Client(timeout=5.0) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    resp = client.get(probe)
                    if resp.status_code not in (502, 503, 504):
                        return
                if time.monotonic() > deadline:
                    raise PlatformError(
                        f"the gateway did not route to {name} within {timeout:.0f}s"
                    )
                time.sleep(0.2)

    def restart(self, service: str = EMBEDDED_PROCESS, sig: int = signal.SIGTERM) -> None:
        self.stop(service, sig)
        self.start_service(service)

    def close(self) -> None:
        """Stop every process; drop the namespace's databases, queues and Redis keys."""
        for name in list(self.procs):
            self.stop(name, signal.SIGTERM, timeout=10)
        for proxy in self.proxies.values():
            proxy.close()
        self.proxies.clear()
        if self.distributed:
            with contextlib.suppress(Exception):
                asyncio.run(self._drop_namespace())

    async def _drop_namespace(self) -> None:
        from streamia_kit.db import drop_database
        from streamia_kit.testing import delete_namespace_queues

        for service in ALL_SERVICES:
            with contextlib.suppress(Exception):
                await drop_database(f"{POSTGRES}/{self.namespace}_{service}")
        with contextlib.suppress(Exception):
            await delete_namespace_queues(self.namespace)
        with contextlib.suppress(Exception):
            from redis.asyncio import Redis

            redis = Redis.from_url(REDIS)
            try:
                keys = [k async for k in redis.scan_iter(match=f"{self.namespace}*", count=1000)]
                for start in range(0, len(keys), 500):
                    await redis.delete(*keys[start : start + 500])
            finally:
                await redis.aclose()

    # -- command line ------------------------------------------------------------------

    def cli(
        self, *args: str, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `streamia <args>` with this platform's environment."""
        result = subprocess.run(
            [str(BIN / "streamia"), *args],
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise PlatformError(
                f"streamia {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}"
            )
        return result

    def dlq_counts(self) -> dict[str, int]:
        """`streamia dlq list`, parsed: dead-letter queue name (without namespace) -> count."""
        counts = {}
        for line in self.cli("dlq", "list").stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counts[parts[0]] = int(parts[1])
        return counts

    async def dead_letters(self) -> dict[str, int]:
        """Messages in each `<consumer>.<event type>.dlq` queue of this namespace, read straight
        from the broker (not through its proxy; no CLI process, which takes seconds to start)."""
        import aio_pika

        from streamia_kit.events import EVENT_TYPES

        counts = {}
        connection = await aio_pika.connect(AMQP, timeout=5)
        async with connection:
            channel = await connection.channel()
            for consumer in SERVICES:
                for event_type in EVENT_TYPES:
                    queue = f"{consumer}.{event_type}.dlq"
                    try:
                        declared = await channel.declare_queue(
                            f"{self.namespace}.{queue}", passive=True
                        )
                    except aio_pika.exceptions.ChannelClosed:  # no such queue: nobody consumes
                        channel = await connection.channel()
                        continue
                    counts[queue] = declared.declaration_result.message_count or 0
        if not counts:
            raise PlatformError(f"no dead-letter queue found in namespace {self.namespace}")
        return counts

    # -- accounts ----------------------------------------------------------------------

    def admin_credentials(self) -> tuple[str, str]:
        """An admin account made with `streamia users create-admin` (once per platform)."""
        if self._admin is None:
            email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
            self.cli("users", "create-admin", email, "--password", PASSWORD)
            self._admin = (email, PASSWORD)
        return self._admin

    async def admin_token(self, client: httpx.AsyncClient) -> str:
        if self._admin_token is None:
            email, password = self.admin_credentials()
            self._admin_token = await self.login(client, email, password)
        return self._admin_token

    async def register(self, client: httpx.AsyncClient, **fields: Any) -> Account:
        """A fresh user registered through the gateway."""
        body = new_user(**fields)
        resp = await client.post(self.gateway + "/api/users/register", json=body)
        if resp.status_code != 201:
            raise PlatformError(f"register -> {resp.status_code} {resp.text[:500]}")
        data = resp.json()
        return Account(
            data["user"]["id"],
            body["email"],
            body["password"],
            data["token"],
            body["firstName"],
            body["lastName"],
        )

    async def login(self, client: httpx.AsyncClient, email: str, password: str) -> str:
        resp = await client.post(
            self.gateway + "/api/users/login", json={"email": email, "password": password}
        )
        if resp.status_code != 200:
            raise PlatformError(f"login -> {resp.status_code} {resp.text[:500]}")
        return resp.json()["token"]

    # -- looking inside each service's database ------------------------------------------

    def sqlite_path(self, service: str) -> Path:
        return self.data_dir / f"{service}.sqlite"

    def postgres_dsn(self, service: str) -> str:
        return (
            POSTGRES.replace("postgresql+asyncpg://", "postgresql://")
            + f"/{self.namespace}_{service}"
        )

    @contextlib.asynccontextmanager
    async def databases(self) -> AsyncIterator[Databases]:
        """Read-only access to every service's own database, connections kept open."""
        dbs = Databases(self)
        try:
            yield dbs
        finally:
            await dbs.close()

    async def count(self, service: str, sql: str, *args: Any) -> int:
        """One `SELECT count(*) ...` (placeholders `?`) against `service`'s database."""
        async with self.databases() as dbs:
            return await dbs.count(service, sql, *args)

    async def fetch(self, service: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self.databases() as dbs:
            return await dbs.fetch(service, sql, *args)

    def media_root(self) -> Path:
        return self.data_dir / "media"


class Databases:
    """Lazily opened read-only connections: sqlite3 files (embedded) or asyncpg (PostgreSQL)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._conns: dict[str, Any] = {}

    async def _conn(self, service: str) -> Any:
        conn = self._conns.get(service)
        if conn is None:
            if self.platform.distributed:
                import asyncpg

                # The machine's PostgreSQL may be shared with other platforms (other runs):
                # wait a little for a free connection slot rather than fail at once.
                deadline = time.monotonic() + 15.0
                while True:
                    try:
                        conn = await asyncpg.connect(self.platform.postgres_dsn(service), timeout=5)
                        break
                    except asyncpg.TooManyConnectionsError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.5)
            else:
                path = self.platform.sqlite_path(service)
                if not path.exists():
                    raise PlatformError(f"{path} does not exist")
                conn = sqlite3.connect(
                    f"file:{path}?mode=ro",
                    uri=True,
                    timeout=5,
                    isolation_level=None,
                    check_same_thread=False,
                )
            self._conns[service] = conn
        return conn

    async def fetch(self, service: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = await self._conn(service)
        if self.platform.distributed:
            rows = await conn.fetch(_numbered(sql), *args)
            return [tuple(r) for r in rows]
        return conn.execute(sql, args).fetchall()

    async def count(self, service: str, sql: str, *args: Any) -> int:
        rows = await self.fetch(service, sql, *args)
        return int(rows[0][0])

    async def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                if self.platform.distributed:
                    await conn.close()
                else:
                    conn.close()
        self._conns.clear()


def _numbered(sql: str) -> str:
    """`?` placeholders -> asyncpg's `$1, $2, ...` (the suite's SQL has no literal `?`)."""
    parts = sql.split("?")
    return "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))


@dataclass
class Account:
    id: str
    email: str
    password: str
    token: str
    first_name: str = "Test"
    last_name: str = "User"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(**fields: Any) -> dict[str, Any]:
    """A valid registration body with a random email."""
    body: dict[str, Any] = {
        "firstName": "Test",
        "lastName": "User",
        "age": 30,
        "email": f"e2e-{uuid.uuid4().hex[:12]}@example.com",
        "password": PASSWORD,
        "confirmPassword": PASSWORD,
    }
    body.update(fields)
    return body


def new_movie(**fields: Any) -> dict[str, Any]:
    """A valid `POST /api/movies` body (video at an external URL)."""
    body: dict[str, Any] = {
        "title": f"E2E movie {uuid.uuid4().hex[:8]}",
        "videoUrl": f"https://videos.example.com/{uuid.uuid4().hex}.mp4",
        "description": "made by the e2e suite",
        "category": "Drama",
        "duration": 90.0,
    }
    body.update(fields)
    return body


async def wait_until(
    condition: Any, seconds: float, interval: float = 0.02, message: str = "condition"
) -> Any:
    """Poll an async condition until truthy; AssertionError (with its last value) after
    `seconds`."""
    deadline = time.monotonic() + seconds
    value = None
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {seconds}s waiting for {message} (last value {value!r})"
            )
        await asyncio.sleep(interval)


# -- saga helpers: build a user's or a movie's footprint, then look for what is left -------

USER_TABLES = {
    # service -> (table, column) rows that belong to a user
    "favorites": [("favorites", "user_id")],
    "ratings": [("ratings", "user_id")],
    "comments": [
        ("comments", "user_id"),
        ("comment_reports", "reporter_id"),
        ("authors", "user_id"),
    ],
    "playback": [("progress", "user_id"), ("viewers", "user_id")],
}
MOVIE_TABLES = {
    "movies": [("movies", "id"), ("subtitles", "movie_id")],
    "favorites": [("favorites", "movie_id")],
    "ratings": [("ratings", "movie_id"), ("movie_summaries", "movie_id")],
    "comments": [("comments", "movie_id")],
    "playback": [("progress", "movie_id"), ("viewers", "movie_id"), ("movie_stats", "movie_id")],
}


async def leftovers(
    dbs: Databases, tables: dict[str, list[tuple[str, str]]], subject_id: str
) -> dict[str, int]:
    """`service.table` -> rows still pointing at `subject_id` (only the non-zero ones)."""
    found = {}
    for service, pairs in tables.items():
        for table, column in pairs:
            n = await dbs.count(
                service, f"SELECT count(*) FROM {table} WHERE {column} = ?", subject_id
            )
            if n:
                found[f"{service}.{table}"] = n
    return found


async def create_movies(
    platform: Platform, client: httpx.AsyncClient, count: int, concurrency: int = 8, **fields: Any
) -> list[str]:
    """`count` movies made by the admin through `POST /api/movies`; their ids."""
    headers = bearer(await platform.admin_token(client))
    gate = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with gate:
            resp = await client.post(
                platform.gateway + "/api/movies", json=new_movie(**fields), headers=headers
            )
        if resp.status_code != 201:
            raise PlatformError(f"POST /api/movies -> {resp.status_code} {resp.text[:300]}")
        return resp.json()["data"]["id"]

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def add_activity(
    platform: Platform,
    client: httpx.AsyncClient,
    account: Account,
    movie_ids: list[str],
    stars: int = 4,
    favorites: bool = True,
    ratings: bool = True,
    comments: bool = True,
    playback: bool = True,
    concurrency: int = 8,
    direct: bool = False,
) -> None:
    """A favorite, a rating, a comment and watch progress by `account` on each movie, through
    the gateway (or straight at each service when `direct`)."""
    gate = asyncio.Semaphore(concurrency)

    def base(service: str) -> str:
        return platform.url(service) if direct else platform.gateway

    async def post(service: str, body: dict[str, Any]) -> None:
        async with gate:
            resp = await client.post(
                f"{base(service)}/api/{service}", json=body, headers=account.auth
            )
        if resp.status_code not in (200, 201):
            raise PlatformError(
                f"POST /api/{service} {body} -> {resp.status_code} {resp.text[:300]}"
            )

    async def watch(movie_id: str) -> None:
        async with gate:
            resp = await client.put(
                f"{base('playback')}/api/playback/progress/{movie_id}",
                json={"position": 60, "duration": 600},
                headers=account.auth,
            )
        if resp.status_code != 200:
            raise PlatformError(f"PUT progress {movie_id} -> {resp.status_code} {resp.text[:300]}")

    jobs = []
    for movie_id in movie_ids:
        if favorites:
            jobs.append(post("favorites", {"movieId": movie_id, "note": "e2e"}))
        if ratings:
            jobs.append(post("ratings", {"movieId": movie_id, "rating": stars}))
        if comments:
            jobs.append(post("comments", {"movieId": movie_id, "text": f"Nice film {movie_id}"}))
        if playback:
            jobs.append(watch(movie_id))
    await asyncio.gather(*jobs)


async def delete_account(platform: Platform, client: httpx.AsyncClient, account: Account) -> None:
    resp = await client.request(
        "DELETE",
        platform.gateway + "/api/users/me",
        headers=account.auth,
        json={"password": account.password},
    )
    if resp.status_code != 204:
        raise PlatformError(f"DELETE /api/users/me -> {resp.status_code} {resp.text[:300]}")


# -- fault scenarios (issue 12): tests/e2e/test_faults.py asserts, bench/faults.py prints ---

FAULT_TARGETS = ("broker", "database", "redis")
FAULT_DATABASE = "favorites"  # the one service whose PostgreSQL sits behind a proxy
EMAIL_KINDS = ("welcome", "password-reset", "farewell")
RECOVERY_PROBE_EVERY = 0.05
CLIENT_EVERY = 0.1  # a client request to the faulted path this often while the fault lasts
SETTLE_TIMEOUT = 60.0


@dataclass
class FaultOutcome:
    """What one fault scenario left behind, and how long the platform took to recover."""

    target: str
    mode: str
    seconds: float
    # Client operations issued while the fault lasted -> their HTTP status (0: no answer);
    # "browse": the requests of the recovery probe's kind, started every CLIENT_EVERY s.
    during: dict[str, list[int]] = field(default_factory=dict)
    # Seconds from the restore to the end of the first successful client request.
    recovery: float = float("inf")
    # Seconds from the restore until every cascade ended and every email was sent.
    settled: float = float("inf")
    leftovers: dict[str, dict[str, int]] = field(default_factory=dict)
    # address -> {kind: .eml files} wherever that is not the expected count.
    wrong_emails: dict[str, dict[str, int]] = field(default_factory=dict)
    # movie -> (rating_count, rating_average) where the deleted ratings did not come off once.
    wrong_ratings: dict[str, tuple[int, float]] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    # Operations a retry after the fault found already done although they had failed.
    late_commits: list[str] = field(default_factory=list)
    # Rows of deleted users still there as the fault ended: it did hold the cascades up (the
    # proxy is in the path).
    stalled: int = 0
    # `slow`: chunks the proxy passed late during the fault (the traffic did go through it).
    delayed: int = 0

    @property
    def name(self) -> str:
        return f"{self.target}-{self.mode}-{self.seconds:g}s"

    def summary(self) -> str:
        return (
            f"{self.name}: first success {self.recovery:.2f}s after restore, settled in "
            f"{self.settled:.1f}s; answers during the fault "
            + str({op: dict(Counter(codes)) for op, codes in self.during.items()})
        )


def sent_emails(platform: Platform) -> dict[str, dict[str, int]]:
    """The file sender's outbox: address -> {kind: emails}."""
    found: dict[str, dict[str, int]] = {}
    for path in (platform.data_dir / "outbox").glob("*.eml"):
        for kind in EMAIL_KINDS:
            _, sep, address = path.stem.partition(f"Z-{kind}-")
            if sep:
                per = found.setdefault(address, {})
                per[kind] = per.get(kind, 0) + 1
    return found


async def wait_ready(platform: Platform, seconds: float = HEALTH_TIMEOUT) -> None:
    """Every process's /ready is 200 (dependencies reachable, background work running)."""

    async def all_ready() -> bool:
        async with httpx.AsyncClient(timeout=2.0) as client:
            for name in ALL_SERVICES:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(platform.url(name) + "/ready")).status_code == 200:
                        continue
                return False
        return True

    await wait_until(all_ready, seconds, interval=0.2, message="every service's /ready")


async def _first_success(client: httpx.AsyncClient, request: Any, since: float) -> float:
    """Start a request every RECOVERY_PROBE_EVERY s; seconds from `since` to the end of the
    first one answered 2xx."""
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def one() -> None:
        with contextlib.suppress(httpx.HTTPError):
            resp = await request(client)
            if resp.status_code // 100 == 2 and not done.done():
                done.set_result(time.monotonic() - since)

    tasks: set[asyncio.Task[None]] = set()
    try:
        while not done.done():
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), RECOVERY_PROBE_EVERY)
        return done.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _keep_asking(client: httpx.AsyncClient, request: Any, every: float) -> list[int]:
    """Start `request` every `every` s until cancelled; the statuses of those that ended
    (0: no answer)."""
    statuses: list[int] = []

    async def one() -> None:
        try:
            statuses.append(int((await request(client)).status_code))
        except httpx.HTTPError:
            statuses.append(0)

    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(every)
    except asyncio.CancelledError:
        return statuses
    finally:
        for task in tasks:
            task.cancel()


async def fault_scenario(
    platform: Platform,
    client: httpx.AsyncClient,
    target: str,
    mode: str,
    seconds: float,
    deletions: int = 4,
    registrations: int = 3,
    resets: int = 3,
) -> FaultOutcome:
    """Fault `target` ("broker", "database": `FAULT_DATABASE`'s PostgreSQL, "redis") in `mode`
    (`cut`, `black_hole`) for `seconds` while accounts with favorites, ratings and comments
    are deleted, users register and ask for password resets; restore it, measure the first
    successful client request, retry (as a client would) what failed, wait for every cascade
    and email, and report what is left, doubled or dead-lettered."""
    async with platform.databases() as dbs:
        return await _fault_scenario(
            platform, client, dbs, target, mode, seconds, deletions, registrations, resets
        )


async def _fault_scenario(
    platform: Platform,
    client: httpx.AsyncClient,
    dbs: Databases,
    target: str,
    mode: str,
    seconds: float,
    deletions: int = 4,
    registrations: int = 3,
    resets: int = 3,
) -> FaultOutcome:
    if target not in platform.proxies:
        raise ValueError(f"this platform has no proxy in front of {target!r}")
    proxy = platform.proxies[target]
    outcome = FaultOutcome(target, mode, seconds)
    await wait_ready(platform)

    # Before: the accounts to delete (with activity on two movies of their own), the accounts
    # that will forget their password, and a watcher whose favorites are the recovery probe.
    movies = await create_movies(platform, client, 2)
    doomed = [await platform.register(client) for _ in range(deletions)]
    forgetful = [await platform.register(client) for _ in range(resets)]
    watcher = await platform.register(client)
    for account in doomed:
        await add_activity(platform, client, account, movies, playback=False)
    await add_activity(platform, client, watcher, movies[:1], ratings=False, comments=False)
    dlq_before = await platform.dead_letters()
    newcomers = [new_user() for _ in range(registrations)]

    async def delete(account: Account) -> httpx.Response:
        return await client.request(
            "DELETE",
            platform.gateway + "/api/users/me",
            headers=account.auth,
            json={"password": account.password},
        )

    async def register(body: dict[str, Any]) -> httpx.Response:
        return await client.post(platform.gateway + "/api/users/register", json=body)

    async def forgot(account: Account) -> httpx.Response:
        return await client.post(
            platform.gateway + "/api/users/forgot-password", json={"email": account.email}
        )

    async def probe(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get(platform.gateway + "/api/favorites", headers=watcher.auth)

    async def status(call: Any) -> int:
        try:
            return int((await call).status_code)
        except httpx.HTTPError:
            return 0

    # During: every operation once, while the dependency is away.
    delayed_before = proxy.delayed_chunks
    await asyncio.to_thread(proxy.fault, mode)
    faulted_at = time.monotonic()
    # Clients keep using the faulted path meanwhile (what opens the gateway's breakers).
    browsing = asyncio.create_task(_keep_asking(client, probe, CLIENT_EVERY))
    # The operations run while the fault lasts; one still waiting at the restore ends after.
    operations = asyncio.gather(
        asyncio.gather(*(status(delete(a)) for a in doomed)),
        asyncio.gather(*(status(register(b)) for b in newcomers)),
        asyncio.gather(*(status(forgot(a)) for a in forgetful)),
    )
    try:
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - faulted_at)))
        for account in doomed:
            outcome.stalled += sum((await leftovers(dbs, USER_TABLES, account.id)).values())
    finally:
        outcome.delayed = proxy.delayed_chunks - delayed_before
        await asyncio.to_thread(proxy.restore)
        restored_at = time.monotonic()
        browsing.cancel()
        answers = (await asyncio.gather(browsing, return_exceptions=True))[0]
    # Clients ask again from the restore on, while the operations caught in the fault end.
    recovering = asyncio.create_task(_first_success(client, probe, restored_at))
    codes = await operations
    outcome.during = dict(zip(("delete", "register", "forgot"), map(list, codes), strict=True))
    if isinstance(answers, list):
        outcome.during["browse"] = answers
    outcome.recovery = await recovering

    # After: a client retries what failed; a retry that finds it done reveals a late commit.
    for account, code in zip(doomed, outcome.during["delete"], strict=True):
        if code != 204:
            resp = await _retry(lambda a=account: delete(a), (204, 401))
            if resp.status_code == 401:
                outcome.late_commits.append(f"DELETE /me of {account.email} answered {code}")
    for body, code in zip(newcomers, outcome.during["register"], strict=True):
        if code != 201:
            resp = await _retry(lambda b=body: register(b), (201, 409))
            if resp.status_code == 409:
                outcome.late_commits.append(f"register {body['email']} answered {code}")
    for account, code in zip(forgetful, outcome.during["forgot"], strict=True):
        if code != 200:
            await _retry(lambda a=account: forgot(a), (200,))

    expected: dict[str, dict[str, int]] = {}
    for email in [a.email for a in (*doomed, *forgetful, watcher)] + [
        b["email"] for b in newcomers
    ]:
        expected[email] = {"welcome": 1}
    for account in forgetful:
        expected[account.email]["password-reset"] = 1
    for account in doomed:
        expected[account.email]["farewell"] = 1

    def emails_differ() -> dict[str, dict[str, int]]:
        sent = sent_emails(platform)
        return {
            address: sent.get(address, {})
            for address, kinds in expected.items()
            if sent.get(address, {}) != kinds
        }

    async def left() -> dict[str, dict[str, int]]:
        found = {}
        for account in doomed:
            rows = await leftovers(dbs, {"users": [("users", "id")], **USER_TABLES}, account.id)
            if rows:
                found[account.id] = rows
        return found

    async def ratings_wrong() -> dict[str, tuple[int, float]]:
        rows = await dbs.fetch(
            "movies",
            "SELECT id, rating_count, rating_average FROM movies WHERE id IN (?, ?)",
            *movies,
        )
        return {m: (int(n), float(avg)) for m, n, avg in rows if n != 0 or avg != 0}

    async def settled() -> bool:
        return not (await left() or emails_differ() or await ratings_wrong())

    with contextlib.suppress(AssertionError):
        await wait_until(settled, SETTLE_TIMEOUT, interval=0.1, message="the cascades")
        outcome.settled = time.monotonic() - restored_at
    # A duplicate delivery, if any, would land within the relay's and consumers' next polls.
    await asyncio.sleep(1.0)
    outcome.leftovers = await left()
    outcome.wrong_emails = emails_differ()
    outcome.wrong_ratings = await ratings_wrong()
    after = await platform.dead_letters()
    outcome.dead_letters = {
        queue: n - dlq_before.get(queue, 0)
        for queue, n in after.items()
        if n > dlq_before.get(queue, 0)
    }
    return outcome


async def _retry(
    call: Any, accept: tuple[int, ...], seconds: float = SETTLE_TIMEOUT
) -> httpx.Response:
    """Call until the answer's status is in `accept` (a client retrying after an outage)."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            resp = await call()
            if resp.status_code in accept:
                return resp
        if time.monotonic() > deadline:
            raise PlatformError(f"no answer in {accept} within {seconds:.0f}s after the fault")
        await asyncio.sleep(0.2)
