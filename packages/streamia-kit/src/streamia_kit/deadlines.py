"""Request deadlines: a service stops working on a request its caller has given up on.

The gateway tells each upstream how long it will wait for the response headers
(`X-Streamia-Deadline-Ms`, milliseconds counted from the end of the request body; remaining
time rather than a clock reading, so the hosts' clocks need not agree). The service keeps a
margin below it, refuses to start work whose deadline has passed, cancels the work when the
deadline passes before the answer, and never begins a commit past it: when the gateway has
answered 504, nothing was committed.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session

from streamia_kit.errors import StreamiaError, send_error

log = structlog.get_logger("streamia.deadlines")

DEADLINE_HEADER = "X-Streamia-Deadline-Ms"
_DEADLINE_HEADER = DEADLINE_HEADER.lower().encode()
# Longer than any wait the gateway applies (its settings are capped at 300 s).
_MAX_DEADLINE_MS = 3_600_000

DEADLINES_EXCEEDED = Counter(
    "streamia_request_deadlines_exceeded_total",
    "Requests refused or cancelled because the caller's deadline passed",
    ["service", "stage"],
)


class DeadlineExceeded(StreamiaError):
    status, code = 504, "deadline_exceeded"


class Deadline:
    """When the current request's work must be over (`time.monotonic()` seconds)."""

    __slots__ = ("answered", "at", "service")

    def __init__(self, at: float | None, service: str) -> None:
        self.at = at  # None until the request body has arrived
        self.answered = False
        self.service = service

    def expired(self) -> bool:
        """Past the deadline with no answer started yet (work after the answer is free)."""
        return not self.answered and self.at is not None and time.monotonic() >= self.at


current_deadline: ContextVar[Deadline | None] = ContextVar("streamia_deadline", default=None)


def _refuse_late_commit(session: Session) -> None:
    """SQLAlchemy `before_commit`: a commit past the deadline becomes a rollback."""
    deadline = current_deadline.get()
    if deadline is not None and deadline.expired():
        DEADLINES_EXCEEDED.labels(deadline.service, "before_commit").inc()
        raise DeadlineExceeded("The request's deadline passed before its work was committed")


def refuse_late_commits() -> None:
    """Install the `before_commit` check on every session of the process (once)."""
    if not event.contains(Session, "before_commit", _refuse_late_commit):
        event.listen(Session, "before_commit", _refuse_late_commit)


def parse_deadline_ms(value: bytes) -> float:
    """Seconds left from the header's value; ValueError unless a whole number of ms."""
    text = value.decode("latin-1").strip()
    if not text.lstrip("-").isdigit() or len(text) > 10:
        raise ValueError(text)
    return min(int(text), _MAX_DEADLINE_MS) / 1000


Scope = dict[str, Any]


class DeadlineMiddleware:
    """Enforces `X-Streamia-Deadline-Ms` (requests without it run unbounded, as before)."""

    def __init__(self, app: Any, service: str, margin_seconds: float) -> None:
        self.app = app
        self.service = service
        self.margin = margin_seconds
        refuse_late_commits()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        streaming = False  # a body announced (a positive Content-Length, or chunked)
        for name, value in scope["headers"]:  # once, for both
            if name == _DEADLINE_HEADER:
                raw = value
            elif name == b"content-length":
                streaming = value.strip() not in (b"0", b"")
            elif name == b"transfer-encoding":
                streaming = True
        if raw is None:
            await self.app(scope, receive, send)
            return
        try:
            budget = parse_deadline_ms(raw) - self.margin
        except ValueError:
            await send_error(
                send, 400, f"Invalid {DEADLINE_HEADER} header", "invalid_deadline_header"
            )
            return
        if budget <= 0:
            DEADLINES_EXCEEDED.labels(self.service, "before_start").inc()
            await send_error(
                send, 504, "The request's deadline passed before it started", "deadline_exceeded"
            )
            return
        # The caller's clock runs from the end of the request body (an upload may stream
        # for minutes first); a request without a body starts it now.
        loop = asyncio.get_running_loop()
        deadline = Deadline(None if streaming else time.monotonic() + budget, self.service)
        timeout = asyncio.timeout_at(None if streaming else loop.time() + budget)
        started = False

        async def timed_receive() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if (
                deadline.at is None
                and message["type"] == "http.request"
                and not message.get("more_body", False)
            ):
                deadline.at = time.monotonic() + budget
                timeout.reschedule(loop.time() + budget)
            return message

        async def answer_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = deadline.answered = True
                # An expired timeout cannot be rescheduled (RuntimeError: a 500). It expired
                # and the answer still comes when code under it caught the cancellation and
                # went on (seen under load: a 200 being started with the cancellation
                # swallowed): that answer is what was done, so it is sent.
                if not timeout.expired():
                    timeout.reschedule(None)  # streaming the answer and background tasks
            await send(message)

        token = current_deadline.set(deadline)
        try:
            async with timeout:
                await self.app(scope, timed_receive, answer_send)
        except TimeoutError:
            if started or not timeout.expired():
                raise
            DEADLINES_EXCEEDED.labels(self.service, "cancelled").inc()
            log.warning("deadline_exceeded", path=scope["path"], method=scope["method"])
            await send_error(
                send, 504, "The request's deadline passed; nothing was done", "deadline_exceeded"
            )
        finally:
            current_deadline.reset(token)


def has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Does the ASGI request announce a body (a positive Content-Length, or chunked)?"""
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False
