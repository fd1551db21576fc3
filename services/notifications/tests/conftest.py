"""A real SMTP server in the test process, settings for either stack, and the platform slice
(users + notifications on one Infrastructure) that forgot-password needs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY

from streamia_kit.events import Envelope, Event
from streamia_kit.infra import Infrastructure
from streamia_kit.logging import configure_logging
from streamia_kit.testing import REDIS, Stack, free_port, serve_app
from streamia_notifications.app import create_app
from streamia_notifications.config import NotificationsSettings

FRONTEND = "https://streamia.test"
PASSWORD = "Str0ng!Passw0rd"


class MailServer:
    """aiosmtpd on a fixed free port, in its own thread; it can go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.rcpt_attempts: dict[str, int] = {}
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 5.1.1 No such user"
        self.fail_data = 0  # answer the next N DATA commands with 451
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # aiosmtpd handler hooks (run in the server's thread)
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
            if address in self.refuse:
                return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail_data > 0:
                self.fail_data -= 1
                return "451 4.3.0 Temporary failure, try again later"
            self.messages.append(BytesParser(policy=policy.default).parsebytes(envelope.content))
        return "250 Message accepted for delivery"

    def _start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def _stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop)

    def find(
        self, event_id: str | None = None, to: str | None = None, kind: str | None = None
    ) -> list[EmailMessage]:
        with self._lock:
            found = list(self.messages)
        if event_id is not None:
            found = [m for m in found if m["X-Streamia-Event-Id"] == event_id]
        if to is not None:
            found = [m for m in found if m["To"] == to]
        if kind is not None:
            found = [m for m in found if m["X-Streamia-Email-Kind"] == kind]
        return found


@pytest.fixture
async def mail() -> AsyncIterator[MailServer]:
    server = MailServer()
    await server.start()
    yield server
    await server.stop()


def fast_settings(port: int) -> dict[str, Any]:
    """SMTP to the test server, and retries quick enough for a test."""
    return {
        "email_sender": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout_seconds": 5,
        "email_retry_base_seconds": 0.1,
        "email_retry_max_seconds": 1.0,
        "email_poll_seconds": 0.05,
        "frontend_url": FRONTEND,
    }


@pytest.fixture
def settings_factory(stack: Stack, mail: MailServer) -> Callable[..., NotificationsSettings]:
    def make(**extra: Any) -> NotificationsSettings:
        return NotificationsSettings(**stack.overrides(**{**fast_settings(mail.port), **extra}))

    return make


@pytest.fixture
async def arq_cleanup(stack: Stack) -> AsyncIterator[None]:
    """Remove this run's arq keys (queue, health check, jobs) from Redis afterwards."""
    yield
    if not stack.distributed:
        return
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS)
    try:
        async for key in redis.scan_iter(match=f"*{stack.namespace}:streamia:notifications*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


@pytest.fixture
def publish() -> Callable[..., Any]:
    """publish(app, event) -> the envelope, as the users service's relay would send it."""

    async def send(app: Any, event: Event, envelope: Envelope | None = None) -> Envelope:
        envelope = envelope or Envelope.wrap(event, "streamia/users")
        await app.state.service.infra.bus.publish([envelope])
        return envelope

    return send


def emails_total(kind: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "streamia_emails_total",
            {"service": "notifications", "kind": kind, "outcome": outcome},
        )
        or 0.0
    )


@pytest.fixture
def counter() -> Callable[[str, str], float]:
    return emails_total


def address(prefix: str = "ana") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def new_address() -> Callable[..., str]:
    return address


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


@pytest.fixture
def parts() -> tuple[Callable[[EmailMessage], str], Callable[[EmailMessage], str]]:
    """(text_of, html_of) of a parsed email."""
    return text_of, html_of


@pytest.fixture
def platform(stack: Stack, settings_factory, arq_cleanup):
    """users + notifications apps on one Infrastructure, as `streamia up` runs them."""
    from streamia_users.app import create_app as users_app
    from streamia_users.config import UsersSettings

    @contextlib.asynccontextmanager
    async def run(**extra: Any) -> AsyncIterator[tuple[Any, Any]]:
        settings = settings_factory(**extra)
        infra = Infrastructure.from_settings(settings)
        users = users_app(UsersSettings(**stack.overrides(frontend_url=FRONTEND)), infra=infra)
        notifications = create_app(settings, infra=infra)
        async with contextlib.AsyncExitStack() as stack_:
            stack_.push_async_callback(infra.close)  # last: after both services stopped
            client = await stack_.enter_async_context(serve_app(users))
            await stack_.enter_async_context(serve_app(notifications))
            await infra.start()
            yield client, notifications

    return run


class CapturedLogs(logging.Handler):
    """Every log line of the process, rendered as JSON the way production prints it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ],
                foreign_pre_chain=[structlog.stdlib.add_log_level],
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("mail.log"):
            return  # the test's own SMTP server (aiosmtpd) logs the message it receives
        line = self.format(record)
        if record.exc_info:
            line += logging.Formatter().formatException(record.exc_info)
        self.lines.append(line)


@pytest.fixture
def captured_logs() -> Any:
    configure_logging()  # once per process; after it, handlers added here stay
    handler = CapturedLogs()
    root = logging.getLogger()
    old_level = root.level
    loggers = [logging.getLogger(n) for n in ("arq", "arq.worker", "arq.jobs", "streamia")]
    old = [lg.level for lg in loggers]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
    for lg, level in zip(loggers, old, strict=True):
        lg.setLevel(level)


class SendGridStub:
    """A local stand-in for api.sendgrid.com that checks what it receives."""

    API_KEY = "SG.test-key"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []
        self.script: dict[str, list[int]] = {}  # recipient -> statuses to answer, in order
        self._runner: Any = None

    async def _mail_send(self, request: Any) -> Any:
        from aiohttp import web

        if request.headers.get("Authorization") != f"Bearer {self.API_KEY}":
            return web.json_response({"errors": [{"message": "bad key"}]}, status=401)
        if request.content_type != "application/json":
            return web.json_response({"errors": [{"message": "not json"}]}, status=415)
        body = await request.json()
        self.requests.append(body)
        to = body["personalizations"][0]["to"][0]["email"]
        statuses = self.script.get(to)
        status = statuses.pop(0) if statuses else 202
        if status == 202:
            return web.Response(status=202, headers={"X-Message-Id": f"sg-{len(self.requests)}"})
        return web.json_response({"errors": [{"message": f"status {status}"}]}, status=status)

    def to(self, address: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["personalizations"][0]["to"][0]["email"] == address]

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v3/mail/send", self._mail_send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def sendgrid() -> AsyncIterator[SendGridStub]:
    stub = SendGridStub()
    await stub.start()
    yield stub
    await stub.stop()
