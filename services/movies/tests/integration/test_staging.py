"""Upload staging files never outlive their request: a stalled upload gets 408 and loses its
file, and files a killed process left behind are swept at start (and hourly)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn

from streamia_kit.testing import free_port, serve_app, wait_for

# Staging behaves the same whatever the database and broker are.
pytestmark = pytest.mark.parametrize("stack_name", ["embedded"], indirect=True)

BOUNDARY = "streamia-stall"


@asynccontextmanager
async def listening(app) -> AsyncIterator[int]:
    """`app` under uvicorn on a real socket (a client can stall mid-body); its port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started or task.done(), message="uvicorn started")
    if task.done():
        task.result()  # surfaces a start-up failure
    try:
        yield port
    finally:
        server.should_exit = True
        await task


def _staged(app) -> list[str]:
    staging = app.state.movies.media.staging_dir
    return sorted(p.name for p in staging.glob(".upload-*")) if staging.exists() else []


async def test_an_upload_that_stalls_mid_body_gets_408_and_its_file_is_removed(app_factory, tokens):
    app = app_factory(upload_idle_timeout_seconds=0.5)
    head = (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="video"; filename="clip.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
        + b"\x00\x00\x00\x18ftypmp42"
        + b"\x00" * 4096
    )
    async with listening(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = (
            "POST /api/movies/upload HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: {tokens('admin')['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            "Content-Length: 10000000\r\n\r\n"
        ).encode()
        writer.write(request + head)  # ... and then nothing more
        await writer.drain()
        await wait_for(lambda: _staged(app), message="the upload's staging file")
        started = time.monotonic()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        waited = time.monotonic() - started
        status, *header_lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines if line)
        body = json.loads(await reader.readexactly(int(headers["content-length"])))
        writer.close()
        assert status.startswith("HTTP/1.1 408"), head
        assert body["code"] == "upload_timeout" and body["error"] == body["message"]
        assert waited < 5
        assert _staged(app) == []


async def test_staging_files_untouched_for_an_hour_are_swept_at_start(app_factory, tmp_path):
    app = app_factory()
    staging = app.state.movies.media.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    hour_ago = time.time() - 3601
    stale = [staging / ".upload-killed", staging / ".incoming-killed"]
    for path in stale:
        path.write_bytes(b"x" * 1024)
        os.utime(path, (hour_ago, hour_ago))
    fresh = staging / ".upload-in-progress"
    fresh.write_bytes(b"y")
    other = staging / "kept.txt"  # not a staging file of ours
    other.write_bytes(b"z")
    os.utime(other, (hour_ago, hour_ago))

    async with serve_app(app) as client:
        await wait_for(lambda: not any(p.exists() for p in stale), message="stale files swept")
        assert fresh.exists() and other.exists()
        ready = (await client.get("/ready")).json()
        assert ready["checks"]["staging_sweep"] is True
