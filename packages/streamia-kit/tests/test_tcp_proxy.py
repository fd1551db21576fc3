"""The fault proxy's `slow` mode: latency added to each chunk, not to the chunks behind it."""

from __future__ import annotations

import asyncio
import time

from streamia_kit.testing import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_a_slow_proxy_delays_each_chunk_once_and_restore_ends_it() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await TcpProxy("127.0.0.1", port).start()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:

        async def round_trip(payload: bytes) -> float:
            began = time.monotonic()
            writer.write(payload)
            await writer.drain()
            assert await reader.readexactly(len(payload)) == payload
            return time.monotonic() - began

        fast = await round_trip(b"ping")
        await proxy.slow(0.5)
        slow = await round_trip(b"pong")
        assert slow >= 1.0, slow  # 0.5 s on the way there, 0.5 s on the way back
        # Two chunks 0.05 s apart: each comes back 1 s late (at ~1.05 s for the second), not
        # queued behind the first one's delay (which would make it ~1.5 s).
        began = time.monotonic()
        writer.write(b"a")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"b")
        await writer.drain()
        assert await reader.readexactly(1) == b"a"
        assert await reader.readexactly(1) == b"b"
        assert time.monotonic() - began < 1.3
        await proxy.restore()
        again = await round_trip(b"back")
        assert again < 0.2, (fast, again)
    finally:
        writer.close()
        await proxy.close()
        server.close()
        await server.wait_closed()
