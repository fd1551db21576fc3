"""Structured logs, JSON by default (a person's coloured console lines on request); every
line carries the request id, trace id and span id of its request or consumed event."""

from __future__ import annotations

import asyncio
import atexit
import logging
import random
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson
import structlog
from opentelemetry import trace
from structlog.types import EventDict, Processor

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUEST_ID_HEADER = "x-request-id"

_configured = False
# Past this many bytes held, access lines go out at once.
_HOLD_LIMIT = 64 * 1024


class LineBuffer:
    """Where the access lines go: the lines of one pass of the event loop are written and
    flushed together at its end, not a write and a flush per line (structlog's BytesLogger:
    65 µs of the gateway's CPU per request at saturation, load average 8)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._held: list[bytes] = []
        self._size = 0

    def msg(self, message: bytes) -> None:
        if not self._held:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running: nothing would flush later
                self._held.append(message + b"\n")
                self.flush()
                return
        self._held.append(message + b"\n")
        self._size += len(message) + 1
        if self._size > _HOLD_LIMIT:
            self.flush()

    info = msg

    def flush(self) -> None:
        """Write what is held (the loop calls this; so does shutdown)."""
        if not self._held:
            return
        held, self._held, self._size = self._held, [], 0
        self._file.write(b"".join(held))
        self._file.flush()

    def json(self, logger: str, event: str, fields: dict[str, Any], span: trace.Span) -> None:
        """One INFO line as the JSON pipeline renders it (same keys, ISO UTC timestamp, the
        span's trace and span ids), built here: 6.4 -> 3.0 µs a line, where the pipeline
        (stdlib logging, structlog's processors) took ~40 µs on every request."""
        ids = span_ids(span)
        if ids is not None:
            fields["trace_id"], fields["span_id"] = ids
        fields["event"] = event
        fields["level"] = "info"
        fields["logger"] = logger
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.msg(orjson.dumps(fields))


# The process's access lines when its logs are JSON (`configure_logging`), else None.
_access_lines: LineBuffer | None = None


def access_lines() -> LineBuffer | None:
    """Where this process writes its JSON access lines; None when they go through structlog
    (console format, or logging not configured: tests capture those)."""
    return _access_lines


def _add_request_id(_: object, __: str, event: EventDict) -> EventDict:
    rid = request_id_var.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


def span_ids(span: trace.Span) -> tuple[str, str] | None:
    """(trace id, span id) of `span`, as W3C traceparent spells them; None for an invalid one."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, as W3C traceparent spells them; None outside one."""
    return span_ids(trace.get_current_span())


def add_trace_ids(_: object, __: str, event: EventDict) -> EventDict:
    """`trace_id` and `span_id` on every line logged inside a request's or an event's span."""
    ids = trace_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure structlog and the stdlib root logger once per process."""
    global _configured, _access_lines
    if _configured:
        return
    _configured = True
    if fmt == "json":
        _access_lines = LineBuffer(sys.stdout.buffer)
        atexit.register(_access_lines.flush)  # what the last loop pass held
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # Colours only for a person at a terminal; a file or a pipe gets plain text.
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
        add_trace_ids,
    ]
    structlog.configure(
        # Below the level an event is dropped before any processor runs: a disabled
        # `log.info` on a hot path costs a level check, not a timestamp and a render.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # `log.exception(...)` and `exc_info=True`: the traceback as `exception` (it
                # rendered as `"exc_info": true`, which left every 500 without its cause).
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosqlite's DEBUG lines quote SQL parameters (reset tokens in email jobs among them).
    for noisy in ("uvicorn.access", "aiormq", "aio_pika", "sqlalchemy.engine", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def new_request_id(incoming: str | None) -> str:
    """Keep a sane incoming request id, otherwise mint one."""
    if incoming and 0 < len(incoming) <= 128 and incoming.isprintable():
        return incoming
    # uuid4().hex without a UUID object or os.urandom's getrandom syscall (this runs on every
    # gateway request: 2 % of its CPU under load). A request id names a request, it guards
    # nothing, so the process's PRNG is enough, as it is for OpenTelemetry's trace ids.
    value = _random_bits(128) & _UUID4_CLEAR | _UUID4_SET
    return f"{value:032x}"


# The version (4) and RFC 4122 variant bits of a random UUID, as uuid.UUID(version=4) sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_random_bits = random.getrandbits
