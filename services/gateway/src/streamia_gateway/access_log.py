"""One access line per answered request, off the hot path's general logging pipeline."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from streamia_gateway.config import GatewaySettings
from streamia_gateway.exchange import Exchange
from streamia_kit.logging import trace_ids


class AccessLog:
    """Writes `request` lines: method, path, status, duration, upstream, request id, client,
    trace and span id."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    @classmethod
    def for_settings(cls, settings: GatewaySettings) -> AccessLog | None:
        """The access log, or None when access lines are off or below the log level.

        JSON lines go through a lean structlog pipeline (orjson, no stdlib logging): about 7 µs a
        line here against about 40 µs through the kit's general one, on every proxied request.
        """
        level = logging.getLevelName(settings.log_level.upper())
        if not settings.access_log or level > logging.INFO:
            return None
        if settings.log_format != "json":
            return cls(structlog.get_logger("streamia.access"))
        return cls(
            structlog.wrap_logger(
                structlog.BytesLogger(sys.stdout.buffer),
                processors=[
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(serializer=orjson.dumps),
                ],
            ).bind(logger="streamia.access")
        )

    def write(self, ex: Exchange, elapsed: float) -> None:
        """Log one answered request (the gateway logs no probe or scrape)."""
        ids = trace_ids()
        self._logger.info(
            "request",
            method=ex.method,
            path=ex.path,
            status=ex.status,
            duration_ms=round(elapsed * 1000, 2),
            upstream=ex.upstream,
            request_id=ex.request_id,
            client_ip=ex.client_ip,
            trace_id=ids[0] if ids else None,
            span_id=ids[1] if ids else None,
        )
