"""One HTTP request/response over raw ASGI, with the headers every gateway answer carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

from streamia_kit.errors import error_body
from streamia_kit.middleware import NOSNIFF, UNMATCHED_ROUTE

Headers = list[tuple[bytes, bytes]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected before the gateway had read its request body."""


class Exchange:
    """The request as the gateway sees it and the response it is sending back."""

    __slots__ = (
        "scope",
        "receive",
        "send",
        "method",
        "path",
        "headers",
        "client_ip",
        "proxied",
        "request_id",
        "extra",
        "ratelimit",
        "status",
        "started",
        "upstream",
        "route",
        "upstream_route",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        # Last value wins for the few headers the gateway itself reads.
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        client = scope.get("client")
        self.client_ip: str = client[0] if client else "unknown"
        # Came from the public side, through a trusted proxy (the ingress controller).
        self.proxied = False
        self.request_id = ""
        self.extra: Headers = []  # request id and CORS: on every answer
        self.ratelimit: Headers = []  # RateLimit-* of the limit this route counts against
        self.status = 0
        self.started = False
        self.upstream = "gateway"
        self.route = UNMATCHED_ROUTE  # the metrics' label: a route template, never a raw path
        # The template of the upstream's route that answered (its X-Streamia-Route), if any:
        # the span's name and the metrics' `route` label when set.
        self.upstream_route: str | None = None

    async def start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.started = True
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, *self.extra, *self.ratelimit, NOSNIFF],
            }
        )

    async def body(self, chunk: bytes, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def whole(
        self,
        status: int,
        content_type: bytes,
        data: bytes,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """A whole response body in one message."""
        await self.start(
            status,
            [
                (b"content-type", content_type),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        )
        await self.body(data)

    async def json(
        self, status: int, payload: Any, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        await self.whole(status, JSON, orjson.dumps(payload), headers)

    async def error(
        self,
        status: int,
        message: str,
        code: str,
        headers: Iterable[tuple[bytes, bytes]] = (),
        details: Any = None,
    ) -> None:
        """An error in the API.md shape."""
        await self.json(status, error_body(message, code, details), headers)
