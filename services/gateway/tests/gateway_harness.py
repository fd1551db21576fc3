"""Gateway test harness: a fake upstream on a real socket and the gateway under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from aiohttp import web

from streamia_gateway.app import Gateway, create_app
from streamia_gateway.config import GatewaySettings
from streamia_kit.auth import RevocationStore, SigningKey
from streamia_kit.http_protocol import CoalescingHttpToolsProtocol

LOGIN_PASSWORD = "Str0ng!Passw0rd"
FAKE_OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "fake", "version": "0"},
    "paths": {
        "/api/users/me": {"get": {"responses": {"200": {"description": "me"}}}},
        "/health": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {"schemas": {"User": {"type": "object"}}},
}
STREAM_SIZE = 3 * 1024 * 1024 + 17


def stream_bytes(size: int = STREAM_SIZE) -> bytes:
    """Deterministic, non-repeating-looking bytes for the fake video."""
    block = hashlib.sha256(b"streamia").digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def bind_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    sock.setblocking(False)
    return sock


def closed_port_url() -> str:
    """A URL where nothing listens (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@dataclass
class FakeUpstream:
    """Stands in for every service: echoes requests and offers a few special routes."""

    key: SigningKey
    url: str = ""
    failing: bool = False
    healthy: bool = True
    ready: bool = True
    ready_checks: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    upload_started: asyncio.Event = field(default_factory=asyncio.Event)
    client_got_first_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    password_checks: int = 0  # logins and password changes that reached the "users service"
    release_slow: asyncio.Event = field(default_factory=asyncio.Event)
    slow_seconds: float = 10.0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/.well-known/jwks.json":
            return web.json_response(self.key.jwks())
        if path == "/openapi.json":
            return web.json_response(FAKE_OPENAPI)
        if path == "/health":
            return web.json_response({"status": "ok"}, status=200 if self.healthy else 503)
        if path == "/ready":
            self.ready_checks += 1
            return web.json_response({"status": "ready"}, status=200 if self.ready else 503)
        if path == "/api/users/login" and request.method == "POST":
            body = await request.json()
            self.password_checks += 1
            email = str(body.get("email", ""))
            if email.startswith("busy"):
                return web.json_response(
                    {"error": "busy", "message": "busy", "code": "busy"},
                    status=503,
                    headers={"Retry-After": "1"},
                )
            if email.startswith("slow"):  # answers after `slow_seconds`, or when released
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.release_slow.wait(), self.slow_seconds)
            if body.get("password") == LOGIN_PASSWORD:
                return web.json_response({"message": "Login successful", "token": "t"})
            return web.json_response(
                {
                    "error": "Email or password incorrect",
                    "message": "Email or password incorrect",
                    "code": "invalid_credentials",
                },
                status=401,
            )
        if (path, request.method) in (
            ("/api/users/change-password", "PUT"),
            ("/api/users/me", "DELETE"),
        ):
            body = await request.json()
            self.password_checks += 1
            if body.get("currentPassword", body.get("password")) != LOGIN_PASSWORD:
                message = "Current password is incorrect"
                return web.json_response(
                    {"error": message, "message": message, "code": "invalid_credentials"},
                    status=400,
                )
            return web.json_response({"message": "Password changed successfully"})
        if path == "/api/movies/upload":
            return await self._upload(request)
        if path == "/api/movies/m1/stream":
            return await self._video(request)
        if path == "/api/movies/gated-stream":
            return await self._gated_stream(request)
        if path.startswith("/api/movies/templated/"):  # names its route, as the services do
            return web.json_response(
                {"id": path.rsplit("/", 1)[1]},
                headers={"X-Streamia-Route": "/api/movies/templated/{movie_id}"},
            )
        if path == "/api/movies/non-ascii-header":  # obs-text (RFC 9110 §5.5): UTF-8 bytes
            return web.json_response({}, headers={"X-Title": "Amélie", "X-Plain": "ok"})
        if path == "/api/movies/redirect":
            return web.Response(status=307, headers={"Location": request.query["to"]})
        if path == "/api/ratings/flaky":
            status = 500 if self.failing else 200
            return web.json_response({"failing": self.failing}, status=status)
        if path == "/api/comments/stalled-body":
            response = web.StreamResponse()
            response.content_length = 100
            await response.prepare(request)
            await response.write(b"{" * 10)
            await asyncio.Event().wait()  # the other 90 bytes never come
        if path == "/api/comments/slow":
            await asyncio.Event().wait()  # never answers; cancelled at teardown
        return await self._echo(request)

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        record = {
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path,
            "query": request.query_string,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "header_list": [[k.lower(), v] for k, v in request.headers.items()],
            "body_size": len(body),
        }
        self.seen.append(record)
        response = web.json_response(record)
        response.headers["Access-Control-Allow-Origin"] = "*"  # the gateway must drop it
        response.headers["X-Upstream"] = "fake"
        return response

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        size = 0
        chunks = 0
        async for chunk in request.content.iter_any():
            if size == 0:
                self.upload_started.set()
            digest.update(chunk)
            size += len(chunk)
            chunks += 1
        return web.json_response(
            {"size": size, "sha256": digest.hexdigest(), "chunks": chunks}, status=201
        )

    async def _video(self, request: web.Request) -> web.StreamResponse:
        data = stream_bytes()
        headers = {"Accept-Ranges": "bytes", "Content-Type": "video/mp4"}
        status = 200
        if request.http_range.start is not None or request.http_range.stop is not None:
            rng = request.http_range
            start = rng.start or 0
            stop = min(rng.stop or len(data), len(data))
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            data = data[start:stop]
            status = 206
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(data)
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        for offset in range(0, len(data), 256 * 1024):
            await response.write(data[offset : offset + 256 * 1024])
        await response.write_eof()
        return response

    async def _gated_stream(self, request: web.Request) -> web.StreamResponse:
        """Sends a first chunk and the rest only once the client has received the first."""
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        await response.write(b"first-chunk;")
        await asyncio.wait_for(self.client_got_first_chunk.wait(), 10)
        await response.write(b"second-chunk")
        await response.write_eof()
        return response


@asynccontextmanager
async def run_upstream(key: SigningKey) -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream(key)
    app = web.Application(client_max_size=1024**3)
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    sock = bind_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@dataclass
class RunningGateway:
    app: Gateway
    url: str
    settings: GatewaySettings
    revocations: RevocationStore


def gateway_settings(upstream_url: str, **overrides: Any) -> GatewaySettings:
    """Settings pointing every upstream at `upstream_url`; env-independent where it matters."""
    values: dict[str, Any] = {
        "users_url": upstream_url,
        "movies_url": upstream_url,
        "favorites_url": upstream_url,
        "ratings_url": upstream_url,
        "comments_url": upstream_url,
        "playback_url": upstream_url,
        "redis_url": None,
        "namespace": f"test-{uuid.uuid4().hex[:8]}:",
        "rate_limits_enabled": True,
        "rate_limit_global": "10000/minute",
        "rate_limit_login": "5/10 minutes",
        "breaker_enabled": True,
        "breaker_volume_threshold": 10,
        "breaker_timeout_seconds": 3.0,
        "cors_origins": ["http://localhost:5173"],
        "log_level": "WARNING",
        # The tests stand in for the ingress: they say who the client is in X-Forwarded-For.
        "trusted_proxies": ["127.0.0.1/32"],
    }
    values.update(overrides)
    return GatewaySettings(**values)


@asynccontextmanager
async def run_gateway(
    settings: GatewaySettings, revocations: RevocationStore | None = None
) -> AsyncIterator[RunningGateway]:
    app = create_app(settings, revocations)
    sock = bind_socket()
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        http=CoalescingHttpToolsProtocol,  # as platform.py runs it
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # surfaces a startup failure
        await asyncio.sleep(0.01)
    try:
        yield RunningGateway(
            app, f"http://127.0.0.1:{sock.getsockname()[1]}", settings, app.revocations
        )
    finally:
        server.should_exit = True
        await task
