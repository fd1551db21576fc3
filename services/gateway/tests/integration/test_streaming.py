"""Request and response bodies stream through the gateway, never buffered whole."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import aiohttp

from gateway_harness import STREAM_SIZE, FakeUpstream, RunningGateway, stream_bytes

UPLOAD_SIZE = 50 * 1024 * 1024
CHUNK = 1024 * 1024


async def test_a_large_upload_arrives_intact_and_streams_while_it_is_sent(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    digest = hashlib.sha256()
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for i in range(UPLOAD_SIZE // CHUNK):
            chunk = bytes([i % 251]) * (CHUNK - 7) + i.to_bytes(7, "big")
            digest.update(chunk)
            sent += len(chunk)
            yield chunk
            if i == 0:
                # A gateway that buffered the body would never let the upstream see
                # this first chunk before the client sends the rest: it would hang here.
                await asyncio.wait_for(upstream.upload_started.wait(), 10)

    async with http.post(
        gateway.url + "/api/movies/upload",
        data=body(),
        headers={"Content-Type": "video/mp4"},
    ) as resp:
        assert resp.status == 201
        result = await resp.json()
    assert result["size"] == sent == UPLOAD_SIZE
    assert result["sha256"] == digest.hexdigest()


async def test_an_upload_slower_than_the_wait_for_an_answer_is_not_cut_short(
    start_gateway, http: aiohttp.ClientSession
) -> None:
    # The wait for the answer counts from the body's last progress, not from the request.
    gateway = await start_gateway(breaker_timeout_seconds=0.4)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b"x" * 1000
            await asyncio.sleep(0.2)  # the client's own pace: 1.2 s in all

    async with http.post(
        gateway.url + "/api/movies/upload", data=body(), headers={"Content-Type": "video/mp4"}
    ) as resp:
        assert resp.status == 201
        assert (await resp.json())["size"] == 6000


async def test_an_upload_with_a_content_length_keeps_it(
    upstream: FakeUpstream, start_gateway, http: aiohttp.ClientSession
) -> None:
    gateway = await start_gateway(max_json_body_bytes=1_000_000)
    data = b"x" * 300_000
    async with http.post(
        gateway.url + "/api/users/echo", data=data, headers={"Content-Type": "text/plain"}
    ) as resp:
        body = await resp.json()
    assert body["body_size"] == len(data)
    assert body["headers"]["content-length"] == str(len(data))
    assert body["headers"]["content-type"] == "text/plain"
    assert "transfer-encoding" not in body["headers"]


async def test_a_response_streams_chunk_by_chunk(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/movies/gated-stream") as resp:
        assert resp.status == 200
        first = await resp.content.readexactly(len(b"first-chunk;"))
        # The upstream sends the rest only after this: a buffering gateway would deadlock.
        upstream.client_got_first_chunk.set()
        rest = await resp.content.read()
    assert first + rest == b"first-chunk;second-chunk"


async def test_a_video_arrives_intact_with_its_length(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/movies/m1/stream") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(STREAM_SIZE)
        assert resp.headers["Accept-Ranges"] == "bytes"
        assert resp.headers["Content-Type"] == "video/mp4"
        data = await resp.read()
    assert hashlib.sha256(data).digest() == hashlib.sha256(stream_bytes()).digest()


async def test_range_requests_pass_through(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(
        gateway.url + "/api/movies/m1/stream", headers={"Range": "bytes=1000-1999999"}
    ) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 1000-1999999/{STREAM_SIZE}"
        assert resp.headers["Content-Length"] == "1999000"
        data = await resp.read()
    assert data == stream_bytes()[1000:2_000_000]


async def test_head_requests_get_headers_only(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.head(gateway.url + "/api/movies/m1/stream") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(STREAM_SIZE)
        assert await resp.read() == b""


async def test_compressed_bytes_pass_verbatim(
    upstream: FakeUpstream, gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(gateway.url + "/api/users/me", headers={"Accept-Encoding": "br"}) as r:
        body = await r.json()
    assert body["headers"]["accept-encoding"] == "br"
    async with http.get(gateway.url + "/api/users/me", skip_auto_headers=["Accept-Encoding"]) as r:
        body = await r.json()
    assert "accept-encoding" not in body["headers"]  # none added on the client's behalf
