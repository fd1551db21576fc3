"""One access line per answered request, off the hot path's general logging pipeline."""

from __future__ import annotations

import logging
from typing import Any

import structlog
from opentelemetry.trace import Span

from streamia_gateway.config import GatewaySettings
from streamia_gateway.exchange import Exchange
from streamia_kit.logging import LineBuffer, access_lines, span_ids


class AccessLog:
    """Writes `request` lines: method, path, status, duration, upstream, request id, client,
    trace and span id."""

    def __init__(self, logger: Any, lines: LineBuffer | None = None) -> None:
        self._logger = logger
        self._lines = lines

    @classmethod
    def for_settings(cls, settings: GatewaySettings) -> AccessLog | None:
        """The access log, or None when access lines are off or below the log level.

        JSON lines go to the process's `access_lines()` (the kit's `LineBuffer`: built off
        structlog's pipeline, 12 % of the gateway's main thread at saturation when they went
        through it, and the lines of one loop pass written together); console lines go
        through structlog.
        """
        level = logging.getLevelName(settings.log_level.upper())
        if not settings.access_log or level > logging.INFO:
            return None
        lines = access_lines()
        if lines is None:
            return cls(structlog.get_logger("streamia.access"))
        return cls(None, lines)

    def flush(self) -> None:
        """Write the lines still held (at shutdown)."""
        if self._lines is not None:
            self._lines.flush()

    def write(self, ex: Exchange, elapsed: float, span: Span) -> None:
        """Log one answered request (the gateway logs no probe or scrape); `span` is the
        request's, whose ids the line carries."""
        fields = {
            "method": ex.method,
            "path": ex.path,
            "status": ex.status,
            "duration_ms": round(elapsed * 1000, 2),
            "upstream": ex.upstream,
            "request_id": ex.request_id,
            "client_ip": ex.client_ip,
        }
        if self._lines is None:
            ids = span_ids(span)
            if ids is not None:
                fields["trace_id"], fields["span_id"] = ids
            self._logger.info("request", **fields)
            return
        self._lines.json("streamia.access", "request", fields, span)
